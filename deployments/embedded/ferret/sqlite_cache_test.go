package ferret

import (
	"database/sql"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// FerretDB opens each database file with the directory URI plus
// "<database>.sqlite" and its own pragmas appended; the driver is the one
// FerretDB uses, so what it answers here is what FerretDB's connections run
// with. A connection's page cache stays at 256 KiB, whatever SQLite's default.
func TestSQLiteConnectionsKeepASmallPageCache(t *testing.T) {
	file := strings.Replace(sqliteURL(t.TempDir()), "/?", "/gb.sqlite?", 1)
	db, err := sql.Open("sqlite", file+"&_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pages int
	if err := db.QueryRow("PRAGMA cache_size").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if pages != -256 {
		t.Fatalf("PRAGMA cache_size = %d on %s, want -256 (256 KiB)", pages, file)
	}
}
