// One concern, kept whole: the Store, its collections and the batch write
// path (rows, error index, recent copies, rollup parts) that Write and Settle
// share.

package logstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/shared/mongox"
)

// Store reads and writes logd's collections.
type Store struct {
	db       *mongo.Database
	requests *mongo.Collection // rows of earlier versions (buckets.go)
	buckets  *mongo.Collection
	errors   *mongo.Collection
	rollups  *mongo.Collection
	// parts holds the rollup parts not yet folded and the fold state hint;
	// folded journals the folded ones; roundsColl holds the fold rounds
	// (see parts.go).
	parts      *mongo.Collection
	folded     *mongo.Collection
	roundsColl *mongo.Collection
	minutes    *mongo.Collection
	seconds    *mongo.Collection
	// errMinutes and errHours index error logs by time (see errindex.go).
	errMinutes *mongo.Collection
	errHours   *mongo.Collection
	// errCopyTrimmed is the hour (Unix s) this Store last dropped old error-log copies.
	errCopyTrimmed atomic.Int64
	// derivedOK is set once the derived rollups are known complete (derived.go).
	derivedOK atomic.Bool
	// recentState holds the watermark of the newest request logs' copy
	// (see recent.go).
	recentState *mongo.Collection
	recent      recent
	now         func() time.Time

	// backend is what guardByLookup found out (backendUnknown until then).
	backend atomic.Int32

	folding sync.Mutex // held by the Store's one running Fold
	mu      sync.Mutex
	rounds  map[int64]bool // fold rounds this Store started and has not finished
	// foldHook, when set (tests), runs after each step of a fold round; an
	// error stops the round there.
	foldHook func(step string) error
}

// New returns a Store on db. Call EnsureIndexes once at start.
func New(db *mongo.Database) *Store {
	return &Store{
		db:          db,
		requests:    db.Collection(CollRequests),
		buckets:     db.Collection(CollRequestBuckets),
		errors:      db.Collection(CollErrors),
		rollups:     db.Collection(CollRollups),
		parts:       db.Collection(CollParts),
		folded:      db.Collection(CollFolded),
		roundsColl:  db.Collection(CollRounds),
		minutes:     db.Collection(CollMinutes),
		seconds:     db.Collection(CollSeconds),
		errMinutes:  db.Collection(CollErrorMinutes),
		errHours:    db.Collection(CollErrorHours),
		recentState: db.Collection(CollRecentState),
		recent:      recent{rows: RecentRows},
		now:         time.Now,
		rounds:      map[int64]bool{},
	}
}

// SetClock replaces the clock used by time-relative queries (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// EnsureIndexes creates the indexes every query below relies on, where the
// store can use them: on FerretDB, which reads no secondary index, it drops
// them instead (see readsNoSecondaryIndex).
func (s *Store) EnsureIndexes(ctx context.Context) error {
	if err := s.initRecent(ctx); err != nil {
		return err
	}
	noIndexReads, err := readsNoSecondaryIndex(ctx, s.db)
	if err != nil {
		return err
	}
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
		// Bucket reads select by time span, minute, a key, model or token
		// they name, or an id they hold (buckets.go).
		s.buckets: {
			{{Key: "te", Value: -1}},
			{{Key: "k", Value: 1}, {Key: "te", Value: -1}},
			{{Key: "mo", Value: 1}, {Key: "te", Value: -1}},
			{{Key: "tk", Value: 1}, {Key: "te", Value: -1}},
			{{Key: "m", Value: 1}},
			{{Key: "ids", Value: 1}},
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
		s.folded: {
			{{Key: "t", Value: 1}},
		},
		s.roundsColl: {
			{{Key: "at", Value: 1}},
		},
		s.minutes: {
			{{Key: "h", Value: 1}},
		},
		s.db.Collection(CollKeyModels): {
			{{Key: "k", Value: 1}},
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
		if noIndexReads {
			if err := dropSecondaryIndexes(ctx, coll, specs); err != nil {
				return err
			}
			continue
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
	// The query caches of earlier versions, replaced by the derived rollups.
	if err := s.db.Collection(legacyQueryCache).Drop(ctx); err != nil {
		return fmt.Errorf("drop %s: %w", legacyQueryCache, err)
	}
	return s.backfillErrorIndex(ctx)
}

// legacyQueryCache is the collection of query caches earlier versions kept.
const legacyQueryCache = "rollups_cache"

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

// Pending is a batch whose logs are stored and whose rollup parts are not
// yet written: the result of InsertLogs, settled by Settle (parts.go).
type Pending struct {
	Batch  string
	Result WriteResult
	// reqs and errs are every row of the batch as given, each tagged with
	// the part (message) it came in; an event in two messages is in both.
	reqs []RequestLog
	errs []ErrorLog
	// errOwner gives the tag each error log was stored with, for the rows
	// this batch inserted; errDups are the ids stored before, whose tags
	// Settle looks up. reqDupParts are the parts with a request-log bucket
	// stored before (buckets.go).
	errOwner    map[string]string
	errDups     []string
	reqDupParts map[string]bool
}

// Write stores one batch and its rollups: InsertLogs then Settle. Rows not
// tagged with a part are tagged with the batch id, so the batch is one part.
// It is idempotent and safe to retry with the same rows until it succeeds.
func (s *Store) Write(ctx context.Context, batch string, reqs []RequestLog, errs []ErrorLog) (WriteResult, error) {
	p, err := s.InsertLogs(ctx, batch, reqs, errs)
	if err != nil {
		return WriteResult{}, err
	}
	if err := s.Settle(ctx, p); err != nil {
		return p.Result, err
	}
	return p.Result, nil
}

// InsertLogs inserts a batch's logs, unordered: error logs with the event id
// as _id, request logs in buckets named by their part and minute
// (buckets.go), so a redelivered message is duplicate-key errors, not second
// rows. Each row keeps the part tag (b) it is given (ingest tags a message's
// rows with its PartID), or gets batch. Several batches may be inserted at
// once; retry with the same rows until it succeeds.
func (s *Store) InsertLogs(ctx context.Context, batch string, reqs []RequestLog, errs []ErrorLog) (*Pending, error) {
	p := &Pending{Batch: batch, errOwner: map[string]string{}}
	if len(errs) > 0 {
		for i := range errs {
			if errs[i].Batch == "" {
				errs[i].Batch = batch
			}
			if errs[i].Minute == "" {
				errs[i].Minute = MinuteBucket(errs[i].Time)
			}
		}
		p.errs = errs
		errs = dedupe(errs, func(e ErrorLog) string { return e.ID })
		docs := make([]any, len(errs))
		for i := range errs {
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
		p.errDups = ownersOf(errs, dupIdx, p.errOwner, func(e *ErrorLog) (string, string) { return e.ID, e.Batch })
	}
	if len(reqs) == 0 {
		return p, nil
	}
	for i := range reqs {
		if reqs[i].Batch == "" {
			reqs[i].Batch = batch
		}
	}
	p.reqs = reqs
	buckets, n, dups, dupParts, err := s.insertBuckets(ctx, reqs)
	if err != nil {
		return nil, err
	}
	p.Result.Inserted, p.Result.Duplicates, p.reqDupParts = n, dups, dupParts
	// Duplicates too: a retried batch repairs a copy its first attempt missed.
	if err := s.copyRecent(ctx, buckets); err != nil {
		return nil, err
	}
	return p, nil
}

// ownersOf notes the tag of each row inserted now in owner and returns the
// ids of the duplicates.
func ownersOf[T any](rows []T, dupIdx []int, owner map[string]string, idTag func(*T) (string, string)) []string {
	isDup := make(map[int]bool, len(dupIdx))
	var dups []string
	for _, i := range dupIdx {
		isDup[i] = true
		id, _ := idTag(&rows[i])
		dups = append(dups, id)
	}
	for i := range rows {
		if !isDup[i] {
			id, tag := idTag(&rows[i])
			owner[id] = tag
		}
	}
	return dups
}

// lookupConcurrency bounds the duplicate-row lookups sent at once: each is
// an _id lookup, cheap alone but many after a redelivery.
const lookupConcurrency = 8

// rowBatches returns the part tag of each stored log in ids.
func (s *Store) rowBatches(ctx context.Context, coll *mongo.Collection, ids []string) (map[string]string, error) {
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
				err := coll.FindOne(ctx, bson.M{"_id": id}, options.FindOne().SetProjection(bson.M{"b": 1})).Decode(&row)
				if errors.Is(err, mongo.ErrNoDocuments) {
					err = nil // deleted since it was found a duplicate: no part counts it here
				}
				mu.Lock()
				switch {
				case err == nil:
					out[id] = row.Batch // only what was read: a retry looks up the rest
				case firstErr == nil:
					firstErr = fmt.Errorf("look up duplicate row %s: %w", id, err)
				}
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

type delta struct {
	hour, key, model, token string
	minute                  string // second rollups only
	c                       Counters
	codes                   map[string]int64
	acodes                  map[string]int64 // failed upstream attempts by status (key level)
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

// bulkInc applies fold round's deltas as guarded $inc upserts (applyGuarded).
func (s *Store) bulkInc(ctx context.Context, coll *mongo.Collection, round int64, deltas map[string]*delta, onInsert func(*delta) bson.D) error {
	ws := make([]roundWrite, 0, len(deltas))
	for id, d := range deltas {
		inc := counterIncs("", d.c)
		for code, n := range d.codes {
			inc = append(inc, bson.E{Key: "codes." + code, Value: n})
		}
		for code, n := range d.acodes {
			inc = append(inc, bson.E{Key: "acodes." + code, Value: n})
		}
		ws = append(ws, roundWrite{id: id, update: bson.D{
			{Key: "$inc", Value: inc},
			{Key: "$set", Value: bson.D{{Key: "fr", Value: round}}},
			{Key: "$setOnInsert", Value: onInsert(d)},
		}})
	}
	return s.applyGuarded(ctx, coll, round, ws)
}

// roundWrite is one document's update of a fold round; it sets fr to the round.
type roundWrite struct {
	id     string
	update bson.D
}

// applyGuarded applies a round's updates to the documents the round has not
// reached (fr below it), as upserts in unordered bulks.
//
// On MongoDB and FerretDB/PostgreSQL the guard is the filter (roundGuard).
// FerretDB on SQLite sends SQLite only a filter that is a lone _id equality
// and evaluates any other over every document of the collection in Go, so
// the guarded filter made each update a scan of its collection: 1.6 s per
// update at 10,000 hourly rollups, which retention lets grow for 400 days
// (BenchmarkFoldRoundByRollupSize). There the fold reads each document's fr
// by _id and updates by _id alone (under a millisecond each, at any size).
// That read and write are two commands, but FerretDB applies the guarded
// filter by reading and writing back the document anyway, so neither form
// is atomic there; one Fold runs per Store, and another replica finishes a
// round only once it is foldTakeover old (see Fold).
func (s *Store) applyGuarded(ctx context.Context, coll *mongo.Collection, round int64, ws []roundWrite) error {
	lookup, err := s.guardByLookup(ctx)
	if err != nil {
		return err
	}
	if lookup {
		if ws, err = notReached(ctx, coll, round, ws); err != nil {
			return err
		}
	}
	models := make([]mongo.WriteModel, 0, len(ws))
	for _, w := range ws {
		filter := roundGuard(w.id, round)
		if lookup {
			filter = bson.D{{Key: "_id", Value: w.id}}
		}
		models = append(models, mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(w.update).SetUpsert(true))
	}
	return writeGuarded(ctx, coll, models)
}

// notReached keeps the writes whose document does not exist or has an fr
// below round, reading each by _id.
func notReached(ctx context.Context, coll *mongo.Collection, round int64, ws []roundWrite) ([]roundWrite, error) {
	reached := make([]bool, len(ws))
	err := parallelLimit(len(ws), lookupConcurrency, func(i int) error {
		var d struct {
			Round int64 `bson:"fr"`
		}
		err := coll.FindOne(ctx, bson.M{"_id": ws[i].id}, options.FindOne().SetProjection(bson.M{"fr": 1})).Decode(&d)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return nil
		case err != nil:
			return fmt.Errorf("read fold round of %s %s: %w", coll.Name(), ws[i].id, err)
		}
		reached[i] = d.Round >= round
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := ws[:0:0]
	for i, w := range ws {
		if !reached[i] {
			out = append(out, w)
		}
	}
	return out, nil
}

// counterIncs are the $inc fields of c's non-zero counters, named prefix+field.
func counterIncs(prefix string, c Counters) bson.D {
	inc := bson.D{}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"req", c.Requests}, {"ok", c.Successes}, {"fail", c.Failures},
		{"f4xx", c.Fail4xx}, {"f5xx", c.Fail5xx}, {"fother", c.FailOther},
		{"pt", c.Prompt}, {"ct", c.Completion}, {"tt", c.Thoughts}, {"tok", c.Tokens},
	} {
		if f.v != 0 {
			inc = append(inc, bson.E{Key: prefix + f.name, Value: f.v})
		}
	}
	if c.LatencySum != 0 {
		inc = append(inc, bson.E{Key: prefix + "lat", Value: c.LatencySum})
	}
	return inc
}

// roundGuard selects document id only while fold round has not reached it.
// The fr guard makes a round a no-op on documents it (or a later round)
// already counted: the filter misses, the upsert collides on _id, and the
// duplicate-key error is ignored (writeGuarded). (On FerretDB/SQLite the
// fold checks fr by a read instead, see applyGuarded.) Rounds run one after
// another, so fr only grows.
func roundGuard(id string, round int64) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "fr", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gte", Value: round}}}}}}
}

// writeGuarded runs upserts filtered by roundGuard as unordered bulks.
func writeGuarded(ctx context.Context, coll *mongo.Collection, models []mongo.WriteModel) error {
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
