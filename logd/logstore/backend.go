package logstore

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// readsNoSecondaryIndex reports whether db is served by FerretDB (1.24),
// which reads no secondary index on either backend: on SQLite it sends the
// backend only a filter that is a lone _id equality and runs every other
// filter and sort in Go over every row; on PostgreSQL it pushes an equality
// down as `_jsonb->'f' @> value`, which no B-tree index serves (the plan is a
// sequential scan, _id included), and sorts in Go. An index there only costs
// writes: on SQLite a parse of each written document's JSON per index (about
// half of ingest's CPU), on PostgreSQL an index entry per row and index.
// TestFerretDBOnPostgresReadsNoSecondaryIndex checks the plan. MongoDB
// answers false.
func readsNoSecondaryIndex(ctx context.Context, db *mongo.Database) (bool, error) {
	var info bson.M
	if err := db.Client().Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, fmt.Errorf("ask the store what it is: %w", err)
	}
	_, ferret := info["ferretdbVersion"]
	return ferret, nil
}

// guardByLookup reports whether the fold checks a document's round by
// reading it (FerretDB on SQLite, see applyGuarded) rather than in the
// update's filter. It asks the store once it can tell.
func (s *Store) guardByLookup(ctx context.Context) (bool, error) {
	switch s.backend.Load() {
	case backendSQLite:
		return true, nil
	case backendOther:
		return false, nil
	}
	sqlite, known, err := ferretOnSQLite(ctx, s.db)
	if err != nil {
		return false, err
	}
	if known {
		b := int32(backendOther)
		if sqlite {
			b = backendSQLite
		}
		s.backend.Store(b)
	}
	return sqlite, nil
}

const (
	backendUnknown = iota
	backendSQLite  // FerretDB on SQLite
	backendOther   // MongoDB, or FerretDB on PostgreSQL
)

// ferretOnSQLite reports whether db is FerretDB on SQLite. FerretDB names
// its backend only in its startup warning ("Powered by FerretDB v1.24.2 and
// SQLite 3.46.1."), once it has opened a database; known is false before.
func ferretOnSQLite(ctx context.Context, db *mongo.Database) (sqlite, known bool, err error) {
	ferret, err := readsNoSecondaryIndex(ctx, db)
	if err != nil || !ferret {
		return false, err == nil, err
	}
	var res struct {
		Log []string `bson:"log"`
	}
	if err := db.Client().Database("admin").RunCommand(ctx, bson.D{{Key: "getLog", Value: "startupWarnings"}}).Decode(&res); err != nil {
		return false, false, fmt.Errorf("ask the store for its backend: %w", err)
	}
	for _, l := range res.Log {
		if _, rest, ok := strings.Cut(l, "Powered by FerretDB "); ok {
			return strings.Contains(rest, " and SQLite "), strings.Contains(rest, " and "), nil
		}
	}
	return false, false, nil
}

// dropSecondaryIndexes drops every index of coll but _id's.
func dropSecondaryIndexes(ctx context.Context, coll *mongo.Collection, specs []mongo.IndexSpecification) error {
	for _, sp := range specs {
		if sp.Name == "_id_" {
			continue
		}
		if err := coll.Indexes().DropOne(ctx, sp.Name); err != nil {
			return fmt.Errorf("drop unused index %s on %s: %w", sp.Name, coll.Name(), err)
		}
	}
	return nil
}
