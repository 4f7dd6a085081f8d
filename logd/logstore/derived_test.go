package logstore_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/mongox"
)

var derivedNow = time.Date(2026, 12, 1, 0, 10, 30, 0, time.UTC)

// derivedBatch is one message's rows and failed attempts over the 26 hours
// before derivedNow (and a little after it), on keys whose ids need escaping
// as field names too.
func derivedBatch(name string, n int, seed int) ([]logstore.RequestLog, []logstore.ErrorLog) {
	keys := []string{"k0", "k1", "k.dot", "$k", "k%25", ""}
	statuses := []int{200, 200, 429, 500, 400, 200, 429}
	var rows []logstore.RequestLog
	var errs []logstore.ErrorLog
	for i := 0; i < n; i++ {
		x := seed*7919 + i*104729
		at := derivedNow.Add(-26 * time.Hour).Add(time.Duration(x%(26*3600+40)) * time.Second)
		if i%9 == 0 { // some in the last minutes, at the window edges
			at = derivedNow.Add(-time.Duration(x%200) * time.Second)
		}
		if i%11 == 0 {
			at = derivedNow.Add(-24 * time.Hour).Add(time.Duration(x%5-2) * time.Second)
		}
		key := keys[x%len(keys)]
		status := statuses[(x/7)%len(statuses)]
		r := req(fmt.Sprintf("%s-%d", name, i), at, key, []string{"m", "m.2"}[(i/6)%2], []string{"t", "t.b", ""}[x%3], status, 1+x%4)
		rows = append(rows, r)
		if !r.Success && key != "" {
			errs = append(errs, failedAttempt("a-"+r.ID, at, key, status))
		}
		if i%5 == 0 { // a 429 that failover hid behind the request's outcome
			errs = append(errs, failedAttempt("h-"+r.ID, at, keys[(x+1)%(len(keys)-1)], 429))
		}
	}
	return rows, errs
}

// bruteAttention counts the stored failed attempts of code per key over the
// 24 whole hours up to now, as attention's answer prints.
func bruteAttention(t *testing.T, db *mongo.Database, code int, now time.Time) string {
	t.Helper()
	from := mongox.HourBucket(now.Add(-23 * time.Hour))
	to := mongox.HourBucket(now)
	cur, err := db.Collection(logstore.CollErrors).Find(context.Background(), bson.M{"code": code})
	if err != nil {
		t.Fatal(err)
	}
	var errs []logstore.ErrorLog
	if err := cur.All(context.Background(), &errs); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, e := range errs {
		if h := mongox.HourBucket(e.Time); e.KeyID != "" && h >= from && h <= to {
			counts[e.KeyID]++
		}
	}
	keys := []logapi.AttentionKey{}
	for k, n := range counts {
		keys = append(keys, logapi.AttentionKey{KeyID: k, Count: n})
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Count != keys[j].Count {
			return keys[i].Count > keys[j].Count
		}
		return keys[i].KeyID < keys[j].KeyID
	})
	return fmt.Sprint(keys)
}

// bruteWindow counts the stored requests and failures in [from, now], to
// the second, as the overview's windows count them.
func bruteWindow(t *testing.T, db *mongo.Database, from, now time.Time) [2]int64 {
	t.Helper()
	lo := from.Truncate(time.Second)
	if lo.Before(from) {
		lo = lo.Add(time.Second)
	}
	hi := now.Truncate(time.Second).Add(time.Second)
	rows := storedRows(t, db)
	var out [2]int64
	for _, r := range rows {
		if !r.Time.Before(lo) && r.Time.Before(hi) {
			out[0]++
			if !r.Success {
				out[1]++
			}
		}
	}
	return out
}

// checkDerived compares attention and the overview's windows with brute
// force counts of the stored rows.
func checkDerived(t *testing.T, what string, st *logstore.Store, db *mongo.Database) {
	t.Helper()
	ctx := context.Background()
	for _, code := range []int{429, 500, 400} {
		a, err := st.Attention(ctx, logapi.AttentionQuery{Code: code, Limit: 100, Now: derivedNow})
		if err != nil {
			t.Fatalf("%s: attention %d: %v", what, code, err)
		}
		if got, want := fmt.Sprint(a.Keys), bruteAttention(t, db, code, derivedNow); got != want {
			t.Fatalf("%s: attention %d = %s, the error logs say %s", what, code, got, want)
		}
	}
	o, err := st.Overview(ctx, logapi.OverviewQuery{Now: derivedNow})
	if err != nil {
		t.Fatalf("%s: overview: %v", what, err)
	}
	for _, w := range []struct {
		name string
		got  logapi.Totals
		d    time.Duration
	}{{"minute", o.Minute, time.Minute}, {"hour", o.Hour, time.Hour}, {"day", o.Day, 24 * time.Hour}} {
		want := bruteWindow(t, db, derivedNow.Add(-w.d), derivedNow)
		if w.got.Requests != want[0] || w.got.Failures != want[1] {
			t.Fatalf("%s: overview %s = %d requests, %d failures; the rows say %d, %d", what, w.name,
				w.got.Requests, w.got.Failures, want[0], want[1])
		}
	}
	// The month (the month-day rollups): every row of derivedNow's month;
	// the logs page's estimated total: every row (none deleted here).
	var month, all, failed int64
	for _, r := range storedRows(t, db) {
		all++
		if r.Time.UTC().Format("2006-01") == derivedNow.Format("2006-01") {
			month++
			if !r.Success {
				failed++
			}
		}
	}
	if o.Month.Requests != month || o.Month.Failures != failed || month == 0 || month == all {
		t.Fatalf("%s: overview month = %d requests, %d failures; the rows say %d, %d (of %d)", what,
			o.Month.Requests, o.Month.Failures, month, failed, all)
	}
	p, err := st.RequestLogs(ctx, logapi.RequestLogQuery{Limit: 1})
	if err != nil || p.Total == nil || *p.Total != all {
		t.Fatalf("%s: logs page total = %v (%v), the rows say %d", what, p.Total, err, all)
	}
	// Token usage (the token rollups): the rows of the last 24 whole hours
	// and 30 days by hour bucket, per token ("-" for none).
	tu, err := st.TokenUsage(ctx, logapi.TokenUsageQuery{Now: derivedNow})
	if err != nil {
		t.Fatalf("%s: token usage: %v", what, err)
	}
	want := map[string]logapi.TokenUsage{}
	nowHour := derivedNow.Truncate(time.Hour)
	for _, r := range storedRows(t, db) {
		h := r.Time.UTC().Truncate(time.Hour)
		if h.After(nowHour) || h.Before(nowHour.Add(-(30*24-1)*time.Hour)) {
			continue
		}
		tok := r.TokenID
		if tok == "" {
			tok = "-"
		}
		u := want[tok]
		u.Requests30d++
		u.Tokens30d += int64(r.Tokens)
		if !h.Before(nowHour.Add(-23 * time.Hour)) {
			u.Requests24h++
			u.Tokens24h += int64(r.Tokens)
			if !r.Success {
				u.Failures24h++
			}
		}
		if u.LastUsed == nil || h.After(*u.LastUsed) {
			u.LastUsed = &h
		}
		want[tok] = u
	}
	if len(want) != 3 {
		t.Fatalf("%s: the rows name %d tokens, want 3 (the test proves less)", what, len(want))
	}
	for tok, w := range want {
		g := tu.Tokens[tok]
		if g.Requests30d != w.Requests30d || g.Tokens30d != w.Tokens30d || g.Requests24h != w.Requests24h ||
			g.Failures24h != w.Failures24h || g.Tokens24h != w.Tokens24h || g.LastUsed == nil || !g.LastUsed.Equal(*w.LastUsed) {
			t.Fatalf("%s: token %s usage = %+v (last %v); the rows say %+v (last %v)", what, tok, g, g.LastUsed, w, *w.LastUsed)
		}
	}
	if len(tu.Tokens) != len(want) {
		t.Fatalf("%s: token usage names %d tokens, the rows %d", what, len(tu.Tokens), len(want))
	}
	// Key usage (the key-model rollups): a key's rows of the last 24 hour
	// buckets, by model.
	for _, key := range []string{"k0", "k.dot", "$k"} {
		ku, err := st.KeyUsage(ctx, logapi.KeyUsageQuery{KeyID: key, Now: derivedNow})
		if err != nil {
			t.Fatalf("%s: key usage %s: %v", what, key, err)
		}
		byModel := map[string][2]int64{}
		for _, r := range storedRows(t, db) {
			h := r.Time.UTC().Truncate(time.Hour)
			if r.KeyID != key || h.After(nowHour) || h.Before(nowHour.Add(-23*time.Hour)) {
				continue
			}
			c := byModel[r.Model]
			c[0]++
			c[1] += int64(r.Tokens)
			byModel[r.Model] = c
		}
		if len(byModel) != 2 {
			t.Fatalf("%s: key %s has rows of %d models, want 2 (the test proves less)", what, key, len(byModel))
		}
		for m, c := range byModel {
			if g := ku.Models[m]; g.Requests != c[0] || g.Tokens != c[1] {
				t.Fatalf("%s: key %s model %s = %d requests, %d tokens; the rows say %d, %d", what, key, m, g.Requests, g.Tokens, c[0], c[1])
			}
		}
		if len(ku.Models) != len(byModel) {
			t.Fatalf("%s: key %s usage names %d models, the rows %d", what, key, len(ku.Models), len(byModel))
		}
	}
}

func writeBatch(t *testing.T, st *logstore.Store, name string, rows []logstore.RequestLog, errs []logstore.ErrorLog) {
	t.Helper()
	if _, err := st.Write(context.Background(), name, rows, errs); err != nil {
		t.Fatal(err)
	}
}

// Attention and the overview, read from the derived rollups and the parts
// not yet folded, equal a count of the stored rows: with every part
// pending, some folded, all folded, and after a message is redelivered.
func TestDerivedRollupsEqualABruteForceCount(t *testing.T) {
	st, db := newStore(t)
	st.SetClock(func() time.Time { return derivedNow })
	var batches [][2]any
	for i := 0; i < 4; i++ {
		rows, errs := derivedBatch(fmt.Sprint("b", i), 30, i)
		batches = append(batches, [2]any{rows, errs})
		writeBatch(t, st, fmt.Sprint("b", i), rows, errs)
	}
	checkDerived(t, "all pending", st, db)
	foldAll(t, st)
	checkDerived(t, "all folded", st, db)
	rows, errs := derivedBatch("late", 20, 9)
	writeBatch(t, st, "late", rows, errs)
	checkDerived(t, "folded and pending", st, db)
	foldAll(t, st)
	checkDerived(t, "folded again", st, db)
	// A redelivered message, after its part was folded.
	b := batches[1]
	writeBatch(t, st, "b1", b[0].([]logstore.RequestLog), b[1].([]logstore.ErrorLog))
	checkDerived(t, "redelivered", st, db)
	foldAll(t, st)
	checkDerived(t, "redelivered and folded", st, db)
	if got, want := bruteAttention(t, db, 429, derivedNow), "[]"; got == want {
		t.Fatal("the data set has no 429s: the test proves nothing")
	}
}

// A fold round that stops after any step (the derived rollups are written
// with the rollups, before "rollups") is finished by another replica and
// by the first one again; the derived rollups count it once.
func TestFoldStoppedAtAnyStepKeepsDerivedRollupsExact(t *testing.T) {
	for _, step := range []string{"hourly", "rollups", "journaled", "deleted"} {
		t.Run(step, func(t *testing.T) {
			a, db := newStore(t)
			ctx := context.Background()
			rows, errs := derivedBatch("first", 25, 1)
			writeBatch(t, a, "first", rows, errs)
			foldAll(t, a)
			rows, errs = derivedBatch("second", 25, 2)
			writeBatch(t, a, "second", rows, errs)
			crashAt(t, a, step, func() error { _, err := a.Fold(ctx); return err })
			checkDerived(t, "after the crash", a, db)
			b := logstore.New(db)
			b.SetClock(func() time.Time { return time.Now().Add(time.Minute) })
			foldAll(t, b)
			checkDerived(t, "finished by another replica", b, db)
			a.SetFoldHook(nil)
			foldAll(t, a)
			checkDerived(t, "finished again", a, db)
		})
	}
}

// earlierStore rewrites a folded store as a version before the derived
// rollups left it: no derived rollups, the second rollups split between the
// single collection (folded before the hourly split) and the hourly ones,
// one second in both.
func earlierStore(t *testing.T, db *mongo.Database) {
	t.Helper()
	ctx := context.Background()
	var moved int
	for _, c := range []string{logstore.CollMinuteSeconds} {
		cur, err := db.Collection(c).Find(ctx, bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		var mins []bson.M
		if err := cur.All(ctx, &mins); err != nil {
			t.Fatal(err)
		}
		for _, m := range mins {
			minute := m["_id"].(string)
			for f, v := range m {
				if len(f) != 3 || f[0] != 's' {
					continue
				}
				sec := minute + ":" + f[1:]
				doc := bson.M{"_id": sec, "m": minute}
				for _, e := range v.(bson.D) {
					doc[e.Key] = e.Value
				}
				coll := logstore.SecondsColl(sec)
				if moved%3 == 0 {
					coll = logstore.CollSeconds
				}
				if _, err := db.Collection(coll).InsertOne(ctx, doc); err != nil {
					t.Fatal(err)
				}
				moved++
			}
		}
	}
	if moved < 10 {
		t.Fatalf("only %d second rollups to move", moved)
	}
	for _, c := range []string{logstore.CollAttention, logstore.CollMinuteSeconds, logstore.CollMonthDays, logstore.CollTokenHours, logstore.CollTokenDays, logstore.CollKeyModels} {
		if err := db.Collection(c).Drop(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// A store written by a version before the derived rollups (rollups, second
// rollups in the hourly and single collections, no derived documents) is
// backfilled at start, even when the backfill stops half-way and another
// replica finishes it; folds after it count on.
func TestBackfillDerivesTheRollupsOfAnEarlierStore(t *testing.T) {
	for _, step := range []string{"", "backfill-attention", "backfilled"} {
		t.Run("stopped at "+step, func(t *testing.T) {
			st, db := newStore(t)
			ctx := context.Background()
			for i := 0; i < 3; i++ {
				rows, errs := derivedBatch(fmt.Sprint("b", i), 30, i)
				writeBatch(t, st, fmt.Sprint("b", i), rows, errs)
			}
			foldAll(t, st)
			earlierStore(t, db)
			rows, errs := derivedBatch("pending", 15, 7) // a message not folded before the upgrade
			writeBatch(t, st, "pending", rows, errs)

			a := logstore.New(db)
			a.SetClock(func() time.Time { return derivedNow })
			if step != "" {
				crashAt(t, a, step, func() error { return a.Backfill(ctx) })
				a.SetFoldHook(nil)
				// Another replica takes the backfill round over.
				b := logstore.New(db)
				b.SetClock(func() time.Time { return derivedNow.Add(time.Minute) })
				if err := b.Backfill(ctx); err != nil {
					t.Fatal(err)
				}
				foldAll(t, b)
			}
			if err := a.Backfill(ctx); err != nil {
				t.Fatal(err)
			}
			checkDerived(t, "backfilled", a, db)
			foldAll(t, a)
			checkDerived(t, "folded after the backfill", a, db)
			rows, errs = derivedBatch("after", 15, 8)
			writeBatch(t, a, "after", rows, errs)
			foldAll(t, a)
			checkDerived(t, "new messages folded", a, db)
		})
	}
}

// Retention deletes derived rollups as they age out (attention documents
// after AttentionRollupAge, or ROLLUP_RETENTION_DAYS when shorter; minute
// documents after SecondRollupAge) and never the backfill marker.
func TestRetentionDeletesDerivedRollupsWithTheirAge(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	rows, errs := derivedBatch("b", 50, 3)
	writeBatch(t, st, "b", rows, errs)
	foldAll(t, st)
	hours := func() (oldest string, n int64) {
		t.Helper()
		cur, err := db.Collection(logstore.CollAttention).Find(ctx, bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		var docs []bson.M
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatal(err)
		}
		oldest = "~"
		for _, d := range docs {
			if h, ok := d["h"].(string); ok && h < oldest {
				oldest = h
			}
		}
		return oldest, int64(len(docs))
	}
	minutes := func() string {
		t.Helper()
		cur, err := db.Collection(logstore.CollMinuteSeconds).Find(ctx, bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		var docs []bson.M
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatal(err)
		}
		if len(docs) == 0 {
			return "none"
		}
		oldest := "~"
		for _, d := range docs {
			oldest = min(oldest, d["_id"].(string))
		}
		return oldest
	}
	if h, _ := hours(); h > mongox.HourBucket(derivedNow.Add(-25*time.Hour)) {
		t.Fatalf("oldest attention hour %s: the data set is too short", h)
	}
	// Now: what the queries read stays, older minutes go.
	if _, err := st.Retain(ctx, &config.Settings{}, derivedNow); err != nil {
		t.Fatal(err)
	}
	if m := minutes(); m < logstore.MinuteBucket(derivedNow.Add(-logstore.SecondRollupAge)) {
		t.Errorf("minute document %s kept past %s", m, logstore.SecondRollupAge)
	}
	checkDerived(t, "after retention", st, db)
	// A day later with no rollup retention: each keeps its age.
	later := derivedNow.Add(24 * time.Hour)
	if _, err := st.Retain(ctx, &config.Settings{}, later); err != nil {
		t.Fatal(err)
	}
	if h, _ := hours(); h < mongox.HourBucket(later.Add(-logstore.AttentionRollupAge)) {
		t.Errorf("attention hour %s kept past %s", h, logstore.AttentionRollupAge)
	}
	if m := minutes(); m < logstore.MinuteBucket(later.Add(-logstore.SecondRollupAge)) {
		t.Errorf("minute document %s kept past %s", m, logstore.SecondRollupAge)
	}
	months := func() int64 { return countColl(t, db, logstore.CollMonthDays, bson.M{}) }
	if n := months(); n != 2 {
		t.Fatalf("%d month-day documents with rows in November and December, want 2", n)
	}
	// Rollups kept one day: attention documents go with them, and November
	// (ended before the cut) goes.
	if _, err := st.Retain(ctx, &config.Settings{RollupRetentionDays: 1}, later); err != nil {
		t.Fatal(err)
	}
	if n := countColl(t, db, logstore.CollMonthDays, bson.M{"_id": "2026-12"}); n != 1 || months() != 1 {
		t.Errorf("month-day documents after a one-day rollup retention: %d, want December only", months())
	}
	if h, _ := hours(); h < mongox.HourBucket(later.AddDate(0, 0, -1)) {
		t.Errorf("attention hour %s kept past ROLLUP_RETENTION_DAYS=1", h)
	}
	for _, c := range []string{logstore.CollTokenHours, logstore.CollTokenDays, logstore.CollKeyModels} {
		if n := countColl(t, db, c, bson.M{}); n == 0 {
			t.Fatalf("no %s documents before they age out: the test proves nothing", c)
		}
	}
	// Everything aged out: only the marker is left, and a restart does not
	// backfill again.
	if _, err := st.Retain(ctx, &config.Settings{RollupRetentionDays: 1}, later.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, n := hours(); n != 1 {
		t.Errorf("%d attention documents left, want the marker only", n)
	}
	if m := minutes(); m != "none" {
		t.Errorf("minute document %s left", m)
	}
	// The token and key-model rollups go with their ages too.
	for _, c := range []string{logstore.CollTokenHours, logstore.CollTokenDays, logstore.CollKeyModels} {
		if n := countColl(t, db, c, bson.M{}); n != 0 {
			t.Errorf("%d %s documents left", n, c)
		}
	}
}
