package logstore_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/logapi"
)

// After an upgrade the second rollups folded before it are still in the one
// rollups_second collection, the newer ones in their hours' collections: the
// 24-hour window's far edge counts both, to the second, and retention drops
// the hours that age out.
func TestOverviewEdgeSecondsCountRollupsFoldedBeforeAndAfterTheHourlySplit(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	now := at("2026-12-01T00:10:30Z")
	st.SetClock(func() time.Time { return now })
	// Before the upgrade: one request at 00:10:45 yesterday, folded into
	// the single collection (and its minute and hour).
	old := req("old", at("2026-11-30T00:10:45Z"), "k1", "m", "t", 200, 1)
	write(t, st, "b0", old)
	foldAll(t, st)
	sec := logstore.SecondsColl("2026-11-30T00:10:45")
	var moved bson.M
	if err := db.Collection(sec).FindOneAndDelete(ctx, bson.M{"_id": "2026-11-30T00:10:45"}).Decode(&moved); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection(logstore.CollSeconds).InsertOne(ctx, moved); err != nil {
		t.Fatal(err)
	}
	// After it: one more in the same second, one before the edge, one after.
	write(t, st, "b1",
		req("same", at("2026-11-30T00:10:45Z"), "k1", "m", "t", 200, 1),
		req("before", at("2026-11-30T00:10:29Z"), "k1", "m", "t", 200, 1),
		req("after", at("2026-11-30T00:10:59Z"), "k1", "m", "t", 200, 1))
	foldAll(t, st)
	o, err := st.Overview(ctx, logapi.OverviewQuery{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if o.Day.Requests != 3 { // old, same, after
		t.Fatalf("day = %d requests, want 3", o.Day.Requests)
	}
	// Retention keeps the seconds of the last SecondRollupAge only.
	if _, err := st.Retain(ctx, &config.Settings{}, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	names, err := db.ListCollectionNames(ctx, bson.M{"name": sec})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("%s kept after retention", sec)
	}
}
