package logstore

import (
	"context"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// RollupSeeder sums rows into rollups in memory and inserts them at once, as
// if the rows had been ingested, for benchmarks that need millions of rows.
type RollupSeeder struct {
	hourly, minutely, secondly map[string]*delta
}

// Add counts rows.
func (r *RollupSeeder) Add(rows []RequestLog) {
	ptrs := make([]*RequestLog, len(rows))
	for i := range rows {
		ptrs[i] = &rows[i]
	}
	h, m, sec := deltasOf(ptrs)
	if r.hourly == nil {
		r.hourly, r.minutely, r.secondly = map[string]*delta{}, map[string]*delta{}, map[string]*delta{}
	}
	merge := func(into, from map[string]*delta) {
		for id, d := range from {
			if cur := into[id]; cur != nil {
				cur.c.Add(d.c)
				for code, n := range d.codes {
					if cur.codes == nil {
						cur.codes = map[string]int64{}
					}
					cur.codes[code] += n
				}
				continue
			}
			into[id] = d
		}
	}
	merge(r.hourly, h)
	merge(r.minutely, m)
	merge(r.secondly, sec)
}

// AddAttempts counts failed upstream attempts into the key-level rollups,
// as Settle does for ingested error logs.
func (r *RollupSeeder) AddAttempts(errs []ErrorLog) {
	if r.hourly == nil {
		r.hourly, r.minutely, r.secondly = map[string]*delta{}, map[string]*delta{}, map[string]*delta{}
	}
	ptrs := make([]*ErrorLog, len(errs))
	for i := range errs {
		ptrs[i] = &errs[i]
	}
	addAttempts(r.hourly, ptrs)
}

// Insert writes the rollups.
func (r *RollupSeeder) Insert(ctx context.Context, s *Store) error {
	docs := func(m map[string]*delta) []any {
		out := make([]any, 0, len(m))
		for id, d := range m {
			out = append(out, Rollup{ID: id, Hour: d.hour, Day: d.hour[:10], Month: d.hour[:7], Key: d.key, Model: d.model, Token: d.token, Counters: d.c, Codes: d.codes, Attempts: d.acodes})
		}
		return out
	}
	if _, err := s.rollups.InsertMany(ctx, docs(r.hourly), options.InsertMany().SetOrdered(false)); err != nil {
		return err
	}
	if _, err := s.minutes.InsertMany(ctx, docs(r.minutely), options.InsertMany().SetOrdered(false)); err != nil {
		return err
	}
	secs := map[string][]any{}
	for id, d := range r.secondly {
		secs[SecondsColl(id)] = append(secs[SecondsColl(id)], bson.M{"_id": id, "m": d.minute, "req": d.c.Requests, "ok": d.c.Successes, "fail": d.c.Failures,
			"f4xx": d.c.Fail4xx, "f5xx": d.c.Fail5xx, "fother": d.c.FailOther, "pt": d.c.Prompt, "ct": d.c.Completion,
			"tt": d.c.Thoughts, "tok": d.c.Tokens, "lat": d.c.LatencySum})
	}
	for c, docs := range secs {
		if _, err := s.db.Collection(c).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
			return err
		}
	}
	return nil
}

// SetRecentFrom moves the recent copy's watermark to from, as if the copy
// had started then (tests and benchmarks seed rows before it).
func (s *Store) SetRecentFrom(ctx context.Context, from time.Time) error {
	_, err := s.recentState.UpdateOne(ctx, bson.M{"_id": "w"}, bson.M{"$set": bson.M{"from": from.UTC()}})
	if err == nil {
		s.recent.from.Store(from.UnixMilli())
	}
	return err
}

// RecentFrom is the watermark.
func (s *Store) RecentFrom(ctx context.Context) (time.Time, error) { return s.recentFrom(ctx) }

// SetFoldHook stops fold rounds between steps in tests (see Store.foldStep).
func (s *Store) SetFoldHook(f func(step string) error) { s.foldHook = f }

// SettleParts writes the rollup parts of rows (each counted by the part of
// its Batch tag) without inserting the rows, as if they had been inserted:
// benchmarks that need parts pending and a store they can restore.
func (s *Store) SettleParts(ctx context.Context, rows []RequestLog) error {
	return s.Settle(ctx, &Pending{Batch: "parts", reqs: rows, errOwner: map[string]string{}})
}

// InsertRequestBuckets stores rows as one message's buckets, without the
// recent copy or rollup parts (benchmarks that seed those themselves).
func (s *Store) InsertRequestBuckets(ctx context.Context, rows []RequestLog) error {
	_, _, _, _, err := s.insertBuckets(ctx, rows)
	return err
}

// SetErrorCopyWholeHour changes the largest hour read from its copies whole
// (tests of the minute-by-minute read); it returns a func that restores it.
func SetErrorCopyWholeHour(n int64) (restore func()) {
	old := errorCopyWholeHour
	errorCopyWholeHour = n
	return func() { errorCopyWholeHour = old }
}

// RecentCopyRows counts the distinct rows of the recent copy's minute
// collections, buckets and single rows alike.
func RecentCopyRows(ctx context.Context, db *mongo.Database) (int, error) {
	names, err := db.ListCollectionNames(ctx, bson.M{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range names {
		if strings.HasPrefix(c, CollRecentPrefix) {
			rows, err := readRecent(ctx, db.Collection(c))
			if err != nil {
				return 0, err
			}
			n += len(rows)
		}
	}
	return n, nil
}

// GuardByLookup reports whether the fold checks rounds by reading (tests).
func (s *Store) GuardByLookup(ctx context.Context) (bool, error) { return s.guardByLookup(ctx) }
