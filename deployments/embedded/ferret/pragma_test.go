package ferret

import (
	"database/sql"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// The pragmas ride on the URL FerretDB opens each database file with (the
// directory URI plus "<database>.sqlite"); the driver is the one FerretDB
// uses, so what it answers here is what FerretDB's connections run with.
func TestSQLiteConnectionsCommitWithoutWaitingForAnFsync(t *testing.T) {
	file := strings.Replace(sqliteURL(t.TempDir()), "/?", "/gb.sqlite?", 1)
	db, err := sql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sync int
	if err := db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if sync != 1 {
		t.Fatalf("PRAGMA synchronous = %d on %s, want 1 (NORMAL)", sync, file)
	}
}
