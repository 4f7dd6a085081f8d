package ferret

import (
	"database/sql"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// FerretDB opens each database file with the directory URI plus
// "<database>.sqlite" and appends its own pragmas; the driver is the one
// FerretDB uses, so what it answers here is what FerretDB's connections run
// with:
//   - synchronous 1 (NORMAL): a commit does not wait for an fsync;
//   - cache_size -256: a connection's page cache stays at 256 KiB, whatever
//     SQLite's default.
func TestSQLiteConnectionsRunWithTheStorePragmas(t *testing.T) {
	file := strings.Replace(sqliteURL(t.TempDir()), "/?", "/gb.sqlite?", 1)
	db, err := sql.Open("sqlite", file+"&_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for pragma, want := range map[string]int{"synchronous": 1, "cache_size": -256} {
		var got int
		if err := db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %d on %s, want %d", pragma, got, file, want)
		}
	}
}
