package logstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/shared/mongox"
)

// Store reads and writes logd's collections.
type Store struct {
	db       *mongo.Database
	requests *mongo.Collection
	errors   *mongo.Collection
	rollups  *mongo.Collection
	batches  *mongo.Collection
	minutes  *mongo.Collection
	seconds  *mongo.Collection
	now      func() time.Time
}

// New returns a Store on db. Call EnsureIndexes once at start.
func New(db *mongo.Database) *Store {
	return &Store{
		db:       db,
		requests: db.Collection(CollRequests),
		errors:   db.Collection(CollErrors),
		rollups:  db.Collection(CollRollups),
		batches:  db.Collection(CollBatches),
		minutes:  db.Collection(CollMinutes),
		seconds:  db.Collection(CollSeconds),
		now:      time.Now,
	}
}

// SetClock replaces the clock used by time-relative queries (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// EnsureIndexes creates the indexes every query below relies on.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	idx := map[*mongo.Collection][]bson.D{
		s.requests: {
			{{Key: "t", Value: -1}},
			{{Key: "key_id", Value: 1}, {Key: "t", Value: -1}},
			{{Key: "model", Value: 1}, {Key: "t", Value: -1}},
			{{Key: "token_id", Value: 1}, {Key: "t", Value: -1}},
			{{Key: "status", Value: 1}, {Key: "t", Value: -1}},
			{{Key: "route", Value: 1}, {Key: "t", Value: -1}},
			{{Key: "m", Value: 1}},
		},
		s.errors: {
			{{Key: "t", Value: -1}},
			{{Key: "key_id", Value: 1}, {Key: "t", Value: -1}},
			{{Key: "code", Value: 1}, {Key: "t", Value: -1}},
			{{Key: "model", Value: 1}, {Key: "t", Value: -1}},
			{{Key: "request_id", Value: 1}},
		},
		s.rollups: {
			// Every rollup query names the level (k, mo, tk, "*" for all) and an hour range or month.
			{{Key: "k", Value: 1}, {Key: "mo", Value: 1}, {Key: "tk", Value: 1}, {Key: "d", Value: 1}, {Key: "h", Value: 1}},
			{{Key: "mon", Value: 1}},
			{{Key: "h", Value: 1}},
		},
		s.batches: {
			{{Key: "t", Value: 1}},
		},
		s.minutes: {
			{{Key: "h", Value: 1}},
		},
		s.seconds: {
			{{Key: "m", Value: 1}},
		},
	}
	for coll, keys := range idx {
		// One at a time, and only the missing ones: FerretDB 1.24 panics on a
		// createIndexes command naming indexes that already exist.
		existing := map[string]bool{}
		specs, err := coll.Indexes().ListSpecifications(ctx)
		if err != nil {
			return fmt.Errorf("list indexes on %s: %w", coll.Name(), err)
		}
		for _, sp := range specs {
			existing[sp.Name] = true
		}
		for _, k := range keys {
			if existing[indexName(k)] {
				continue
			}
			if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: k}); err != nil {
				return fmt.Errorf("create index %s on %s: %w", indexName(k), coll.Name(), err)
			}
		}
	}
	return nil
}

// indexName is the server's default name of an index: field_dir joined by "_".
func indexName(keys bson.D) string {
	parts := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		parts = append(parts, k.Key, fmt.Sprint(k.Value))
	}
	return strings.Join(parts, "_")
}

// WriteResult says what a Write changed.
type WriteResult struct {
	Inserted   int // request logs inserted now
	Duplicates int // request logs that already existed
	Rolled     int // request logs counted into rollups by this write
	Errors     int // error logs inserted now
}

// Write stores one batch. It is idempotent and safe to retry with the same
// batch id until it succeeds:
//
//   - logs are inserted unordered with the event id as _id, so a redelivered
//     event is a duplicate-key error, not a second row;
//   - rollups are incremented only for rows this batch inserted, plus rows an
//     earlier batch inserted but never finished rolling up (its journal entry
//     in ingest_batches is missing: a crash or outage between the two steps);
//   - each rollup upsert is guarded by the batch id (lb), so retrying a batch
//     whose rollup write half-succeeded does not count twice;
//   - the journal entry is written last; once present, the batch's rows are
//     never counted again.
//
// What remains: a crash after the rollup write and before the journal entry,
// followed by redelivery to a different batch, counts that batch's rollups
// twice (the rows themselves stay exact). Without transactions this is the
// narrowest window available.
func (s *Store) Write(ctx context.Context, batch string, reqs []RequestLog, errs []ErrorLog) (WriteResult, error) {
	var res WriteResult
	if len(errs) > 0 {
		errs = dedupe(errs, func(e ErrorLog) string { return e.ID })
		docs := make([]any, len(errs))
		for i := range errs {
			docs[i] = &errs[i]
		}
		n, _, err := insertUnordered(ctx, s.errors, docs)
		if err != nil {
			return res, fmt.Errorf("insert error logs: %w", err)
		}
		res.Errors = n
	}
	if len(reqs) == 0 {
		return res, nil
	}
	reqs = dedupe(reqs, func(r RequestLog) string { return r.ID })
	docs := make([]any, len(reqs))
	for i := range reqs {
		reqs[i].Batch = batch
		docs[i] = &reqs[i]
	}
	n, dupIdx, err := insertUnordered(ctx, s.requests, docs)
	if err != nil {
		return res, fmt.Errorf("insert request logs: %w", err)
	}
	res.Inserted, res.Duplicates = n, len(dupIdx)

	roll := make([]*RequestLog, 0, len(reqs))
	isDup := make(map[int]bool, len(dupIdx))
	for _, i := range dupIdx {
		isDup[i] = true
	}
	for i := range reqs {
		if !isDup[i] {
			roll = append(roll, &reqs[i])
		}
	}
	if len(dupIdx) > 0 {
		pending, err := s.unrolled(ctx, batch, reqs, dupIdx)
		if err != nil {
			return res, err
		}
		roll = append(roll, pending...)
	}
	if err := s.incRollups(ctx, batch, roll); err != nil {
		return res, err
	}
	res.Rolled = len(roll)
	_, err = s.batches.InsertOne(ctx, bson.D{{Key: "_id", Value: batch}, {Key: "t", Value: s.now().UTC()}})
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return res, fmt.Errorf("journal batch %s: %w", batch, err)
	}
	return res, nil
}

// unrolled returns the duplicates whose rollup never completed, re-tagging
// them with the current batch so its journal entry covers them.
func (s *Store) unrolled(ctx context.Context, batch string, reqs []RequestLog, dupIdx []int) ([]*RequestLog, error) {
	ids := make([]string, len(dupIdx))
	byID := make(map[string]*RequestLog, len(dupIdx))
	for i, di := range dupIdx {
		ids[i] = reqs[di].ID
		byID[reqs[di].ID] = &reqs[di]
	}
	// One _id lookup per duplicate: FerretDB pushes an _id equality down to
	// its backend but answers $in by scanning the whole collection.
	type row struct {
		ID    string `bson:"_id"`
		Batch string `bson:"b"`
	}
	rows := make([]row, 0, len(ids))
	for _, id := range ids {
		var r row
		err := s.requests.FindOne(ctx, bson.M{"_id": id}, options.FindOne().SetProjection(bson.M{"b": 1})).Decode(&r)
		if err != nil {
			return nil, fmt.Errorf("look up duplicate row %s: %w", id, err)
		}
		rows = append(rows, r)
	}
	batchSet := map[string]bool{}
	for _, r := range rows {
		batchSet[r.Batch] = true
	}
	done := map[string]bool{}
	if len(batchSet) > 0 {
		bs := make([]string, 0, len(batchSet))
		for b := range batchSet {
			bs = append(bs, b)
		}
		cur, err := s.batches.Find(ctx, bson.M{"_id": bson.M{"$in": bs}}, options.Find().SetProjection(bson.M{"_id": 1}))
		if err != nil {
			return nil, fmt.Errorf("look up batch journal: %w", err)
		}
		var js []struct {
			ID string `bson:"_id"`
		}
		if err := cur.All(ctx, &js); err != nil {
			return nil, fmt.Errorf("read batch journal: %w", err)
		}
		for _, j := range js {
			done[j.ID] = true
		}
	}
	var out []*RequestLog
	var retag []string
	for _, r := range rows {
		if done[r.Batch] {
			continue
		}
		out = append(out, byID[r.ID])
		if r.Batch != batch {
			retag = append(retag, r.ID)
		}
	}
	if len(retag) > 0 {
		if _, err := s.requests.UpdateMany(ctx, bson.M{"_id": bson.M{"$in": retag}}, bson.M{"$set": bson.M{"b": batch}}); err != nil {
			return nil, fmt.Errorf("re-tag unrolled rows: %w", err)
		}
	}
	return out, nil
}

type delta struct {
	hour, key, model, token string
	minute                  string // second rollups only
	c                       Counters
	codes                   map[string]int64
}

// incRollups applies the batch's counters to every hourly rollup level, and
// to the overall minute rollups, with guarded $inc upserts.
func (s *Store) incRollups(ctx context.Context, batch string, rows []*RequestLog) error {
	if len(rows) == 0 {
		return nil
	}
	hourly, minutely, secondly := deltasOf(rows)
	if err := bulkInc(ctx, s.rollups, batch, hourly, func(d *delta) bson.D {
		return bson.D{
			{Key: "h", Value: d.hour}, {Key: "d", Value: d.hour[:10]}, {Key: "mon", Value: d.hour[:7]},
			{Key: "k", Value: d.key}, {Key: "mo", Value: d.model}, {Key: "tk", Value: d.token},
		}
	}); err != nil {
		return fmt.Errorf("update hourly rollups: %w", err)
	}
	if err := bulkInc(ctx, s.minutes, batch, minutely, func(d *delta) bson.D {
		return bson.D{{Key: "h", Value: d.hour}}
	}); err != nil {
		return fmt.Errorf("update minute rollups: %w", err)
	}
	if err := bulkInc(ctx, s.seconds, batch, secondly, func(d *delta) bson.D {
		return bson.D{{Key: "m", Value: d.minute}}
	}); err != nil {
		return fmt.Errorf("update second rollups: %w", err)
	}
	return nil
}

// deltasOf sums rows into their hourly rollups (every level) and overall
// minute rollups, keyed by _id.
func deltasOf(rows []*RequestLog) (hourly, minutely, secondly map[string]*delta) {
	hourly = map[string]*delta{}
	minutely = map[string]*delta{}
	secondly = map[string]*delta{}
	add := func(into map[string]*delta, id, hour, key, model, token string, c Counters, code string) {
		d := into[id]
		if d == nil {
			d = &delta{hour: hour, key: key, model: model, token: token}
			into[id] = d
		}
		d.c.Add(c)
		if code != "" {
			if d.codes == nil {
				d.codes = map[string]int64{}
			}
			d.codes[code]++
		}
	}
	for _, r := range rows {
		c, code := countersOf(r)
		h, k, m, t := r.Hour, dim(r.KeyID), dim(r.Model), dim(r.TokenID)
		if h == "" {
			h = mongox.HourBucket(r.Time)
		}
		for _, lvl := range [][3]string{{k, m, t}, {Any, Any, Any}, {k, Any, Any}, {Any, m, Any}, {Any, Any, t}} {
			add(hourly, RollupID(h, lvl[0], lvl[1], lvl[2]), h, lvl[0], lvl[1], lvl[2], c, code)
		}
		add(minutely, MinuteBucket(r.Time), h, Any, Any, Any, c, code)
		sec := SecondBucket(r.Time)
		add(secondly, sec, h, Any, Any, Any, c, code)
		secondly[sec].minute = MinuteBucket(r.Time)
	}
	return hourly, minutely, secondly
}

// bulkInc runs one unordered bulk of guarded $inc upserts.
func bulkInc(ctx context.Context, coll *mongo.Collection, batch string, deltas map[string]*delta, onInsert func(*delta) bson.D) error {
	models := make([]mongo.WriteModel, 0, len(deltas))
	for id, d := range deltas {
		inc := bson.D{}
		for _, f := range []struct {
			name string
			v    int64
		}{
			{"req", d.c.Requests}, {"ok", d.c.Successes}, {"fail", d.c.Failures},
			{"f4xx", d.c.Fail4xx}, {"f5xx", d.c.Fail5xx}, {"fother", d.c.FailOther},
			{"pt", d.c.Prompt}, {"ct", d.c.Completion}, {"tt", d.c.Thoughts}, {"tok", d.c.Tokens},
		} {
			if f.v != 0 {
				inc = append(inc, bson.E{Key: f.name, Value: f.v})
			}
		}
		if d.c.LatencySum != 0 {
			inc = append(inc, bson.E{Key: "lat", Value: d.c.LatencySum})
		}
		for code, n := range d.codes {
			inc = append(inc, bson.E{Key: "codes." + code, Value: n})
		}
		update := bson.D{
			{Key: "$inc", Value: inc},
			{Key: "$set", Value: bson.D{{Key: "lb", Value: batch}}},
			{Key: "$setOnInsert", Value: onInsert(d)},
		}
		// The lb guard makes a retried batch a no-op on documents it already
		// counted: the filter misses, the upsert collides on _id, and the
		// duplicate-key error is ignored below.
		filter := bson.D{{Key: "_id", Value: id}, {Key: "lb", Value: bson.D{{Key: "$ne", Value: batch}}}}
		models = append(models, mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(update).SetUpsert(true))
	}
	for len(models) > 0 {
		n := min(len(models), maxUpdatesPerCommand)
		_, err := coll.BulkWrite(ctx, models[:n], options.BulkWrite().SetOrdered(false))
		if err != nil && !onlyDuplicates(err) {
			return err
		}
		models = models[n:]
	}
	return nil
}

// maxUpdatesPerCommand bounds the updates sent in one command. FerretDB 1.24
// on PostgreSQL holds a pool connection per update of an existing document
// until the whole command ends, and hangs once a command has more such
// updates than its pool has connections; MongoDB does not care.
const maxUpdatesPerCommand = 20

// insertUnordered inserts docs, treating duplicate keys as already stored.
// It returns how many were inserted and the indexes of the duplicates.
func insertUnordered(ctx context.Context, coll *mongo.Collection, docs []any) (int, []int, error) {
	_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return len(docs), nil, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return 0, nil, err
	}
	var dups []int
	for _, we := range bwe.WriteErrors {
		if !isDupCode(we.Code) {
			return 0, nil, err
		}
		dups = append(dups, we.Index)
	}
	return len(docs) - len(dups), dups, nil
}

func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if !isDupCode(we.Code) {
			return false
		}
	}
	return true
}

func isDupCode(code int) bool { return code == 11000 || code == 11001 || code == 12582 }

func dedupe[T any](in []T, id func(T) string) []T {
	seen := make(map[string]bool, len(in))
	out := in[:0:0]
	for _, v := range in {
		k := id(v)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, v)
	}
	return out
}
