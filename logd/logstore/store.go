package logstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
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
	// errMinutes and errHours index error logs by time (see errindex.go).
	errMinutes *mongo.Collection
	errHours   *mongo.Collection
	// recentState holds the watermark of the newest request logs' copy
	// (see recent.go).
	recentState *mongo.Collection
	recent      recent
	now         func() time.Time
}

// New returns a Store on db. Call EnsureIndexes once at start.
func New(db *mongo.Database) *Store {
	return &Store{
		db:          db,
		requests:    db.Collection(CollRequests),
		errors:      db.Collection(CollErrors),
		rollups:     db.Collection(CollRollups),
		batches:     db.Collection(CollBatches),
		minutes:     db.Collection(CollMinutes),
		seconds:     db.Collection(CollSeconds),
		errMinutes:  db.Collection(CollErrorMinutes),
		errHours:    db.Collection(CollErrorHours),
		recentState: db.Collection(CollRecentState),
		recent:      recent{rows: RecentRows},
		now:         time.Now,
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
			{{Key: "m", Value: 1}},
		},
		s.errMinutes: {
			{{Key: "h", Value: 1}},
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
		// Attention reads its cached hour summaries by day.
		s.db.Collection(CollQueryCache): {
			{{Key: "kind", Value: 1}, {Key: "d", Value: 1}},
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
	if err := s.initRecent(ctx); err != nil {
		return err
	}
	return s.backfillErrorIndex(ctx)
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

// Pending is a batch whose logs are stored and whose rollups are not yet
// applied: the result of InsertLogs, settled by Settle.
type Pending struct {
	Batch  string
	Result WriteResult
	fresh  []*RequestLog // inserted by this batch
	dups   []*RequestLog // stored before: counted only if their batch never finished
	// freshErrs are the error logs this batch inserted: their upstream
	// status counts as a failed attempt of the key (attention keys). A
	// redelivered error log is never counted again; one whose batch died
	// before its round is not counted at all (an undercount, never double).
	freshErrs []*ErrorLog
}

// Write stores one batch and its rollups: InsertLogs then Settle, with the
// batch id as the round id. It is idempotent and safe to retry with the same
// batch id until it succeeds.
func (s *Store) Write(ctx context.Context, batch string, reqs []RequestLog, errs []ErrorLog) (WriteResult, error) {
	p, err := s.InsertLogs(ctx, batch, reqs, errs)
	if err != nil {
		return WriteResult{}, err
	}
	if err := s.Settle(ctx, batch, []*Pending{p}, nil); err != nil {
		return p.Result, err
	}
	return p.Result, nil
}

// InsertLogs inserts a batch's logs, unordered, with the event id as _id, so
// a redelivered event is a duplicate-key error, not a second row. Request
// logs are tagged with the batch id. Several batches may be inserted at once;
// retry with the same batch id until it succeeds.
func (s *Store) InsertLogs(ctx context.Context, batch string, reqs []RequestLog, errs []ErrorLog) (*Pending, error) {
	p := &Pending{Batch: batch}
	if len(errs) > 0 {
		errs = dedupe(errs, func(e ErrorLog) string { return e.ID })
		docs := make([]any, len(errs))
		for i := range errs {
			if errs[i].Minute == "" {
				errs[i].Minute = MinuteBucket(errs[i].Time)
			}
			docs[i] = &errs[i]
		}
		n, dupIdx, err := insertUnordered(ctx, s.errors, docs)
		if err != nil {
			return nil, fmt.Errorf("insert error logs: %w", err)
		}
		p.Result.Errors = n
		if err := s.indexErrors(ctx, errs, dupIdx); err != nil {
			return nil, err
		}
		isDup := make(map[int]bool, len(dupIdx))
		for _, i := range dupIdx {
			isDup[i] = true
		}
		for i := range errs {
			if !isDup[i] {
				p.freshErrs = append(p.freshErrs, &errs[i])
			}
		}
	}
	if len(reqs) == 0 {
		return p, nil
	}
	reqs = dedupe(reqs, func(r RequestLog) string { return r.ID })
	docs := make([]any, len(reqs))
	for i := range reqs {
		reqs[i].Batch = batch
		docs[i] = &reqs[i]
	}
	n, dupIdx, err := insertUnordered(ctx, s.requests, docs)
	if err != nil {
		return nil, fmt.Errorf("insert request logs: %w", err)
	}
	p.Result.Inserted, p.Result.Duplicates = n, len(dupIdx)
	// Duplicates too: a retried batch repairs a copy its first attempt missed.
	if err := s.copyRecent(ctx, reqs); err != nil {
		return nil, err
	}
	isDup := make(map[int]bool, len(dupIdx))
	for _, i := range dupIdx {
		isDup[i] = true
		p.dups = append(p.dups, &reqs[i])
	}
	p.fresh = make([]*RequestLog, 0, n)
	for i := range reqs {
		if !isDup[i] {
			p.fresh = append(p.fresh, &reqs[i])
		}
	}
	return p, nil
}

// Settle applies the rollups of inserted batches as one round, then journals
// the batches. Rounds must run one at a time; retry a failed round with the
// same round id and the same batches until it succeeds:
//
//   - rollups count the rows each batch inserted, plus duplicates whose row
//     belongs to a batch that never finished (no journal entry in
//     ingest_batches, and not inFlight: a crash or outage between the two
//     steps); such a row is re-tagged with the batch that now counts it;
//   - a duplicate whose batch is still in flight in this process (inFlight
//     says so) is left to that batch, which counts it when it settles;
//   - each rollup upsert is guarded by the round id (lb), so retrying a round
//     whose rollup write half-succeeded does not count twice;
//   - the journal entries are written last; once present, a batch's rows are
//     never counted again.
//
// What remains: a crash after the rollup write and before the journal entry,
// followed by redelivery, counts those batches' rollups twice (the rows
// themselves stay exact); so does one event inserted by one logd replica and
// redelivered to another while the first has not settled it. Without
// transactions this is the narrowest window available.
func (s *Store) Settle(ctx context.Context, round string, ps []*Pending, inFlight func(batch string) bool) error {
	roll := make([]*RequestLog, 0, 1024)
	claimed := map[string]bool{}
	var withRows []string
	var attempts []*ErrorLog
	for _, p := range ps {
		attempts = append(attempts, p.freshErrs...)
		for _, r := range p.fresh {
			roll = append(roll, r)
			claimed[r.ID] = true
		}
		p.Result.Rolled = len(p.fresh)
		if len(p.fresh)+len(p.dups) > 0 {
			withRows = append(withRows, p.Batch)
		}
	}
	var lookup []string
	for _, p := range ps {
		for _, r := range p.dups {
			if !claimed[r.ID] {
				lookup = append(lookup, r.ID)
			}
		}
	}
	owners, err := s.rowBatches(ctx, lookup)
	if err != nil {
		return err
	}
	journaled := map[string]bool{}
	for _, p := range ps {
		for _, r := range p.dups {
			if claimed[r.ID] {
				continue
			}
			count, err := s.ownsUnrolled(ctx, p.Batch, r.ID, owners[r.ID], inFlight, journaled)
			if err != nil {
				return err
			}
			if count {
				owners[r.ID] = p.Batch
				roll = append(roll, r)
				claimed[r.ID] = true
				p.Result.Rolled++
			}
		}
	}
	if err := s.incRollups(ctx, round, roll, attempts); err != nil {
		return err
	}
	if len(withRows) == 0 {
		return nil
	}
	now := s.now().UTC()
	docs := make([]any, len(withRows))
	for i, b := range withRows {
		docs[i] = bson.D{{Key: "_id", Value: b}, {Key: "t", Value: now}}
	}
	if _, _, err := insertUnordered(ctx, s.batches, docs); err != nil {
		return fmt.Errorf("journal batches: %w", err)
	}
	return nil
}

// lookupConcurrency bounds the duplicate-row lookups sent at once: each is
// an _id lookup, cheap alone but many after a redelivery.
const lookupConcurrency = 8

// rowBatches returns the batch tag of each stored request log in ids.
func (s *Store) rowBatches(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		next     = make(chan string)
	)
	for w := 0; w < min(lookupConcurrency, len(ids)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				// One _id lookup per duplicate: FerretDB pushes an _id
				// equality down to its backend but answers $in by scanning
				// the whole collection.
				var row struct {
					Batch string `bson:"b"`
				}
				err := s.requests.FindOne(ctx, bson.M{"_id": id}, options.FindOne().SetProjection(bson.M{"b": 1})).Decode(&row)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("look up duplicate row %s: %w", id, err)
				}
				out[id] = row.Batch
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- id
	}
	close(next)
	wg.Wait()
	return out, firstErr
}

// ownsUnrolled reports whether batch must count the stored row id, tagged
// with owner: owner is batch itself (an earlier attempt of the same batch
// inserted it), or a batch that is neither in flight nor journaled; the
// latter row is re-tagged with batch so batch's journal entry covers it.
func (s *Store) ownsUnrolled(ctx context.Context, batch, id, owner string, inFlight func(string) bool, journaled map[string]bool) (bool, error) {
	if owner == batch {
		return true, nil
	}
	if inFlight != nil && inFlight(owner) {
		return false, nil
	}
	done, known := journaled[owner]
	if !known {
		err := s.batches.FindOne(ctx, bson.M{"_id": owner}, options.FindOne().SetProjection(bson.M{"_id": 1})).Err()
		switch {
		case err == nil:
			done = true
		case errors.Is(err, mongo.ErrNoDocuments):
		default:
			return false, fmt.Errorf("look up batch journal %s: %w", owner, err)
		}
		journaled[owner] = done
	}
	if done {
		return false, nil
	}
	if _, err := s.requests.UpdateOne(ctx, bson.M{"_id": id}, bson.M{"$set": bson.M{"b": batch}}); err != nil {
		return false, fmt.Errorf("re-tag unrolled row %s: %w", id, err)
	}
	return true, nil
}

type delta struct {
	hour, key, model, token string
	minute                  string // second rollups only
	c                       Counters
	codes                   map[string]int64
	acodes                  map[string]int64 // failed upstream attempts by status (key level)
}

// incRollups applies the round's counters to every hourly rollup level, and
// to the overall minute and second rollups, with $inc upserts guarded by the
// round id.
func (s *Store) incRollups(ctx context.Context, batch string, rows []*RequestLog, attempts []*ErrorLog) error {
	if len(rows) == 0 && len(attempts) == 0 {
		return nil
	}
	hourly, minutely, secondly := deltasOf(rows)
	addAttempts(hourly, attempts)
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

// addAttempts counts failed upstream attempts into the key-level hourly
// rollups (acodes.<status>): with failover, a key's 429 is usually retried on
// another key, so the request's own status would never show it.
func addAttempts(hourly map[string]*delta, attempts []*ErrorLog) {
	for _, e := range attempts {
		if e.KeyID == "" || e.Code == 0 {
			continue // a local failure before any key was used
		}
		h := mongox.HourBucket(e.Time)
		// The overall hour counts them too, so a summary of the hour can
		// tell whether attempts arrived since it was taken.
		for _, key := range []string{e.KeyID, Any} {
			id := RollupID(h, key, Any, Any)
			d := hourly[id]
			if d == nil {
				d = &delta{hour: h, key: key, model: Any, token: Any}
				hourly[id] = d
			}
			if d.acodes == nil {
				d.acodes = map[string]int64{}
			}
			d.acodes[strconv.Itoa(e.Code)]++
		}
	}
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
		for code, n := range d.acodes {
			inc = append(inc, bson.E{Key: "acodes." + code, Value: n})
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
