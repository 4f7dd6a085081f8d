package ferret

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the driver FerretDB itself uses
)

// FerretDB 1.24 on SQLite updates and deletes one document with
// `WHERE _ferretdb_sjson->'$._id' = ?`, but indexes _id on
// `_ferretdb_sjson->"_id"`. SQLite sees two expressions, so every update and
// delete by _id scans the whole table: 60–90 ms per update at 20,000
// documents, against 1–3 ms once an index on the very expression the
// statement uses exists. idIndexes keeps that index on every collection's
// table (FerretDB creates tables on first write, so it looks again each
// interval). FerretDB never reads its own metadata for it, and dropping a
// collection drops the table with its indexes.

// idIndexSuffix names the index on a table; FerretDB's own index names are
// "<table>_<hash>", so the suffix cannot collide with them.
const idIndexSuffix = "_gb_id_where"

// idIndexEvery is how often new tables get the index: a new collection is
// small, so the seconds it goes without are cheap.
const idIndexEvery = 2 * time.Second

func keepIDIndexes(ctx context.Context, dir string, skip func(collection string) bool, log *slog.Logger) {
	t := time.NewTicker(idIndexEvery)
	defer t.Stop()
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
		for _, f := range files {
			if err := ensureIDIndexes(ctx, f, skip); err != nil && ctx.Err() == nil {
				log.Debug("ferret: _id lookup indexes", "db", filepath.Base(f), "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ensureIDIndexes adds the index to every table of one database file that
// lacks it. The file is opened per pass, never created, and closed again, so
// a database FerretDB drops and recreates is seen anew.
func ensureIDIndexes(ctx context.Context, file string, skip func(string) bool) error {
	db, err := sql.Open("sqlite", "file:"+file+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT c.name, c.table_name FROM _ferretdb_collections c
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'index' AND m.name = c.table_name || ?)`, idIndexSuffix)
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	var tables []string
	for rows.Next() {
		var name, table string
		if err := rows.Scan(&name, &table); err != nil {
			rows.Close()
			return err
		}
		if skip == nil || !skip(name) {
			tables = append(tables, table)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, table := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, table+idIndexSuffix, table)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("index %s: %w", table, err)
		}
	}
	return nil
}
