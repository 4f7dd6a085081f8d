package ferret_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gemini-balance-go/deployments/embedded/ferret"
)

// Updates and deletes by _id on SQLite find their row through an index
// (SQLite's own query plan for the statement FerretDB runs says so), on every
// collection but the ones the caller leaves out, and documents stay right.
func TestUpdatesAndDeletesByIDSearchAnIndexOnSQLite(t *testing.T) {
	dir := t.TempDir()
	st, err := ferret.Start(context.Background(), ferret.Options{DataDir: dir,
		NoIDIndex: func(c string) bool { return c == "appendonly" }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := connect(t, st.URI).Database("gb")
	for _, c := range []string{"rollups", "appendonly"} {
		if _, err := db.Collection(c).InsertMany(ctx, []any{bson.M{"_id": "a", "n": 1}, bson.M{"_id": "b", "n": 1}}); err != nil {
			t.Fatal(err)
		}
	}
	sdb, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "gb.sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	table := func(coll string) string {
		var tb string
		if err := sdb.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, coll).Scan(&tb); err != nil {
			t.Fatalf("table of %s: %v", coll, err)
		}
		return tb
	}
	// FerretDB's statements (backends/sqlite/collection.go UpdateAll, DeleteAll).
	plan := func(coll string) string {
		var out []string
		for _, q := range []string{`UPDATE %q SET _ferretdb_sjson = ? WHERE _ferretdb_sjson->'$._id' = ?`, `DELETE FROM %q WHERE _ferretdb_sjson->'$._id' IN (?)`} {
			rows, err := sdb.QueryContext(ctx, "EXPLAIN QUERY PLAN "+fmt.Sprintf(q, table(coll)), "x", "y")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id, parent, notused int
				var detail string
				_ = rows.Scan(&id, &parent, &notused, &detail)
				out = append(out, detail)
			}
			rows.Close()
		}
		return strings.Join(out, "; ")
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(plan("rollups"), "USING INDEX") {
		if time.Now().After(deadline) {
			t.Fatalf("updates by _id still scan: %s", plan("rollups"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if p := plan("rollups"); strings.Contains(p, "SCAN") {
		t.Errorf("an update or delete by _id scans: %s", p)
	}
	if p := plan("appendonly"); strings.Contains(p, "USING INDEX") {
		t.Errorf("a collection left out got the index: %s", p)
	}
	c := db.Collection("rollups")
	if _, err := c.UpdateOne(ctx, bson.M{"_id": "a"}, bson.M{"$inc": bson.M{"n": 41}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteOne(ctx, bson.M{"_id": "b"}); err != nil {
		t.Fatal(err)
	}
	var got []bson.M
	cur, err := c.Find(ctx, bson.M{})
	if err != nil || cur.All(ctx, &got) != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0]["_id"] != "a" || fmt.Sprint(got[0]["n"]) != "42" {
		t.Errorf("documents after an update and a delete by _id: %v", got)
	}
}
