package logstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/klauspost/compress/s2"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Request logs are stored in buckets (request_log_buckets): one document per
// bus message and minute, holding that message's rows of the minute as one
// S2-compressed BSON value. A document costs FerretDB a statement, a JSON
// encoding with a type schema per field and its index entries, whatever its
// size; one per row was the largest cost of the all-in-one per request
// (BenchmarkDocumentShapes). MongoDB's own advice for event data is the same
// bucket pattern.
//
//   - The bucket's _id is "<part>@<minute>": the message's rollup part (a
//     hash of its event ids, logstore.PartID) and the minute. A redelivered
//     message writes the same buckets, a duplicate-key error each, so it is
//     stored once and its part counts it once. De-duplication is per
//     message: edge keeps a batch in one message across publish retries and
//     never regroups events, so an event id in two different messages is a
//     producer's bug, stored and counted twice.
//   - Beside the rows a bucket keeps their time span (t, te), minute (m),
//     ids and the key, model and token ids they name, so MongoDB serves
//     filtered reads and id deletes from multikey indexes; FerretDB, which
//     reads no secondary index, filters what it reads, and logd decodes only
//     the buckets that pass.
//   - Deletes and retention rewrite a bucket in place (one replace of the
//     same _id, atomic on every backend) or delete it when no row is left.
//   - request_logs holds the rows of earlier versions, one document each;
//     every read and delete covers both until retention empties it.

// CollRequestBuckets holds the request-log buckets.
const CollRequestBuckets = "request_log_buckets"

// requestBucket is one request_log_buckets document.
type requestBucket struct {
	ID     string    `bson:"_id"`
	Minute string    `bson:"m"`
	From   time.Time `bson:"t"`  // the oldest row's time
	To     time.Time `bson:"te"` // the newest row's time
	N      int       `bson:"n"`
	IDs    []string  `bson:"ids"`
	Keys   []string  `bson:"k"`
	Models []string  `bson:"mo"`
	Tokens []string  `bson:"tk"`
	Rows   []byte    `bson:"rb"` // S2 of the BSON of bucketRows
}

type bucketRows struct {
	Rows []RequestLog `bson:"r"`
}

// bucketID names the bucket of a part's rows in one minute.
func bucketID(part, minute string) string { return part + "@" + minute }

// bucketsOf groups rows into buckets by part tag and minute, in the order
// the rows come, each row once per bucket. A write batch is whole messages,
// one part each, in time order, so a bucket's rows nearly always sit next
// to each other: the bucket's rows are then a window of reqs, not a copy
// (copying them was a third of logd's allocation under load).
func bucketsOf(reqs []RequestLog) ([]*requestBucket, [][]RequestLog, error) {
	type row struct{ bucket, id string }
	type span struct{ from, to int } // a group's first and last row
	idx := map[string]int{}
	var spans []span
	var ids []string
	seen := make(map[row]struct{}, len(reqs))
	of := make([]int, len(reqs)) // each row's group; -1 for a repeat
	adjacent := true             // every group's rows are one run
	var id, part string
	var minute time.Time
	for i := range reqs {
		r := &reqs[i]
		// Neighbouring rows nearly always share a bucket: name it again only
		// when the part or the minute changes.
		if m := r.Time.Truncate(time.Minute); id == "" || r.Batch != part || !m.Equal(minute) {
			id, part, minute = bucketID(r.Batch, MinuteBucket(r.Time)), r.Batch, m
		}
		if _, dup := seen[row{id, r.ID}]; dup {
			of[i], adjacent = -1, false
			continue
		}
		seen[row{id, r.ID}] = struct{}{}
		g, ok := idx[id]
		if !ok {
			g = len(spans)
			idx[id] = g
			spans = append(spans, span{i, i})
			ids = append(ids, id)
		} else {
			adjacent = adjacent && spans[g].to == i-1
			spans[g].to = i
		}
		of[i] = g
	}
	groups := make([][]RequestLog, len(spans))
	if adjacent {
		for g, sp := range spans {
			groups[g] = reqs[sp.from : sp.to+1 : sp.to+1]
		}
	} else {
		n := make([]int, len(spans))
		for _, g := range of {
			if g >= 0 {
				n[g]++
			}
		}
		for g := range groups {
			groups[g] = make([]RequestLog, 0, n[g])
		}
		for i, g := range of {
			if g >= 0 {
				groups[g] = append(groups[g], reqs[i])
			}
		}
	}
	out := make([]*requestBucket, len(groups))
	for i, rows := range groups {
		b, err := newBucket(ids[i], rows)
		if err != nil {
			return nil, nil, err
		}
		out[i] = b
	}
	return out, groups, nil
}

// newBucket encodes rows (one part's, one minute's) as bucket id.
func newBucket(id string, rows []RequestLog) (*requestBucket, error) {
	rb, err := encodeRows(rows)
	if err != nil {
		return nil, fmt.Errorf("encode request log bucket: %w", err)
	}
	b := &requestBucket{ID: id, Minute: MinuteBucket(rows[0].Time), From: rows[0].Time, To: rows[0].Time, N: len(rows), Rows: rb}
	b.IDs = make([]string, len(rows))
	for i := range rows {
		r := &rows[i]
		b.IDs[i] = r.ID
		if r.Time.Before(b.From) {
			b.From = r.Time
		}
		if r.Time.After(b.To) {
			b.To = r.Time
		}
		b.Keys = appendNew(b.Keys, r.KeyID)
		b.Models = appendNew(b.Models, r.Model)
		b.Tokens = appendNew(b.Tokens, r.TokenID)
	}
	// BSON keeps milliseconds: the span is what the stored rows say.
	b.From, b.To = b.From.UTC().Truncate(time.Millisecond), b.To.UTC().Truncate(time.Millisecond)
	return b, nil
}

// rowEncoders keeps a few encoders of bucket rows with their buffers grown:
// bson.Marshal grew a buffer for every bucket and copied the document out
// of it, a tenth of logd's allocation under load. A channel rather than a
// sync.Pool, which the collector empties many times a second under load.
var rowEncoders = make(chan *rowEncoder, 4)

// maxKeptRowBuffer bounds the buffers an encoder keeps (a full message's
// bucket is about 150 KB of BSON).
const maxKeptRowBuffer = 1 << 20

type rowEncoder struct {
	buf bytes.Buffer
	enc *bson.Encoder // writes each document into buf
	// z is room for S2's worst case (the BSON's size and a little more);
	// the compressed rows, several times smaller, are copied out of it.
	z []byte
}

// encodeRows returns rows as a bucket's rb: S2 of the BSON of bucketRows.
func encodeRows(rows []RequestLog) ([]byte, error) {
	var e *rowEncoder
	select {
	case e = <-rowEncoders:
	default:
		e = &rowEncoder{}
		e.enc = bson.NewEncoder(bson.NewDocumentWriter(&e.buf))
	}
	e.buf.Reset()
	if err := e.enc.Encode(bucketRows{Rows: rows}); err != nil {
		return nil, err // e is dropped: its writer may hold half a document
	}
	if n := s2.MaxEncodedLen(e.buf.Len()); cap(e.z) < n {
		e.z = make([]byte, n)
	}
	rb := bytes.Clone(s2.Encode(e.z[:cap(e.z)], e.buf.Bytes()))
	if e.buf.Cap() <= maxKeptRowBuffer {
		select {
		case rowEncoders <- e:
		default:
		}
	}
	return rb, nil
}

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

func (b *requestBucket) rows() ([]RequestLog, error) { return decodeRows(b.ID, b.Rows) }

// decodeRows decodes a bucket's rows (rb), the request-log bucket's and the
// recent copy's alike.
func decodeRows(id string, rb []byte) ([]RequestLog, error) {
	raw, err := s2.Decode(nil, rb)
	if err != nil {
		return nil, fmt.Errorf("decode request log bucket %s: %w", id, err)
	}
	var br bucketRows
	if err := bson.Unmarshal(raw, &br); err != nil {
		return nil, fmt.Errorf("decode request log bucket %s: %w", id, err)
	}
	return br.Rows, nil
}

// insertBuckets stores a batch's request logs as buckets. It returns the
// number of rows in buckets inserted now and in buckets stored before, and
// the parts that had a bucket stored before (a redelivery: the part may be
// written or folded already).
func (s *Store) insertBuckets(ctx context.Context, reqs []RequestLog) (buckets []*requestBucket, inserted, dups int, dupParts map[string]bool, err error) {
	buckets, groups, err := bucketsOf(reqs)
	if err != nil {
		return nil, 0, 0, nil, err
	}
	docs := make([]any, len(buckets))
	for i := range buckets {
		docs[i] = buckets[i]
	}
	_, dupIdx, err := insertUnordered(ctx, s.buckets, docs)
	if err != nil {
		return nil, 0, 0, nil, fmt.Errorf("insert request logs: %w", err)
	}
	dupParts = map[string]bool{}
	isDup := make(map[int]bool, len(dupIdx))
	for _, i := range dupIdx {
		isDup[i] = true
		dupParts[groups[i][0].Batch] = true
	}
	for i, g := range groups {
		if isDup[i] {
			dups += len(g)
		} else {
			inserted += len(g)
		}
	}
	return buckets, inserted, dups, dupParts, nil
}

// rowQuery selects request logs: a time range [From, To) and equalities,
// any of them unset.
type rowQuery struct {
	From, To                     time.Time
	KeyID, Model, TokenID, Route string
	Minute                       string
	Status                       int
	Success                      *bool
	IDs                          []string
}

// rowFilter is q as a filter on request_logs rows (earlier versions).
func (q rowQuery) rowFilter() bson.M {
	f := bson.M{}
	timeRange(f, q.From, q.To)
	for k, v := range map[string]string{"key_id": q.KeyID, "model": q.Model, "token_id": q.TokenID, "route": q.Route, "m": q.Minute} {
		if v != "" {
			f[k] = v
		}
	}
	if q.Status != 0 {
		f["status"] = q.Status
	}
	if q.Success != nil {
		f["success"] = *q.Success
	}
	if len(q.IDs) > 0 {
		f["_id"] = bson.M{"$in": q.IDs}
	}
	return f
}

// bucketFilter is what of q a bucket's own fields can decide: the buckets
// that may hold a matching row.
func (q rowQuery) bucketFilter() bson.M {
	f := bson.M{}
	if !q.From.IsZero() {
		f["te"] = bson.M{"$gte": q.From.UTC()}
	}
	if !q.To.IsZero() {
		f["t"] = bson.M{"$lt": q.To.UTC()}
	}
	for k, v := range map[string]string{"k": q.KeyID, "mo": q.Model, "tk": q.TokenID, "m": q.Minute} {
		if v != "" {
			f[k] = v
		}
	}
	if len(q.IDs) > 0 {
		f["ids"] = bson.M{"$in": q.IDs}
	}
	return f
}

// byTimeOnly reports whether q selects by time alone, so a bucket inside
// the range matches whole.
func (q rowQuery) byTimeOnly() bool {
	return q.KeyID == "" && q.Model == "" && q.TokenID == "" && q.Route == "" && q.Minute == "" &&
		q.Status == 0 && q.Success == nil && len(q.IDs) == 0
}

// inside reports whether every row of b is in q's time range.
func (q rowQuery) inside(b *requestBucket) bool {
	return (q.From.IsZero() || !b.From.Before(q.From)) && (q.To.IsZero() || b.To.Before(q.To))
}

func (q rowQuery) match(r *RequestLog) bool {
	if (!q.From.IsZero() && r.Time.Before(q.From)) || (!q.To.IsZero() && !r.Time.Before(q.To)) {
		return false
	}
	if q.Minute != "" && MinuteBucket(r.Time) != q.Minute {
		return false
	}
	if len(q.IDs) > 0 && !slices.Contains(q.IDs, r.ID) {
		return false
	}
	return (q.KeyID == "" || r.KeyID == q.KeyID) && (q.Model == "" || r.Model == q.Model) &&
		(q.TokenID == "" || r.TokenID == q.TokenID) && (q.Route == "" || r.Route == q.Route) &&
		(q.Status == 0 || r.Status == q.Status) && (q.Success == nil || r.Success == *q.Success)
}

// eachRequestLog calls fn with every stored request log q selects, rows of
// earlier versions first, in no particular order.
func (s *Store) eachRequestLog(ctx context.Context, q rowQuery, fn func(*RequestLog) error) error {
	cur, err := s.requests.Find(ctx, q.rowFilter())
	if err != nil {
		return fmt.Errorf("find request logs: %w", err)
	}
	for cur.Next(ctx) {
		var r RequestLog
		if err := cur.Decode(&r); err != nil {
			_ = cur.Close(ctx)
			return fmt.Errorf("read request logs: %w", err)
		}
		if err := fn(&r); err != nil {
			_ = cur.Close(ctx)
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read request logs: %w", err)
	}
	_ = cur.Close(ctx)
	return s.eachBucket(ctx, q.bucketFilter(), nil, func(b *requestBucket) error {
		rows, err := b.rows()
		if err != nil {
			return err
		}
		for i := range rows {
			if q.match(&rows[i]) {
				if err := fn(&rows[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// eachBucket calls fn with every bucket f selects (projected by proj when
// set).
func (s *Store) eachBucket(ctx context.Context, f bson.M, proj bson.M, fn func(*requestBucket) error) error {
	opts := options.Find()
	if proj != nil {
		opts.SetProjection(proj)
	}
	cur, err := s.buckets.Find(ctx, f, opts)
	if err != nil {
		return fmt.Errorf("find request log buckets: %w", err)
	}
	defer func() { _ = cur.Close(ctx) }()
	for cur.Next(ctx) {
		var b requestBucket
		if err := cur.Decode(&b); err != nil {
			return fmt.Errorf("read request log buckets: %w", err)
		}
		if err := fn(&b); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read request log buckets: %w", err)
	}
	return nil
}

// countRequestLogs counts the request logs q selects. A bucket wholly inside
// a time-only query counts without being decoded.
func (s *Store) countRequestLogs(ctx context.Context, q rowQuery) (int64, error) {
	n, err := s.requests.CountDocuments(ctx, q.rowFilter())
	if err != nil {
		return 0, fmt.Errorf("count request logs: %w", err)
	}
	timeOnly := q.byTimeOnly()
	err = s.eachBucket(ctx, q.bucketFilter(), nil, func(b *requestBucket) error {
		if timeOnly && q.inside(b) {
			n += int64(b.N)
			return nil
		}
		rows, err := b.rows()
		if err != nil {
			return err
		}
		for i := range rows {
			if q.match(&rows[i]) {
				n++
			}
		}
		return nil
	})
	return n, err
}

// sortedRequestLogs returns the request logs q selects from offset on, at
// most limit of them, sorted by field (RequestLog bson name) in order (1 or
// -1), ties broken by id. It reads every selected row, keeping only the
// first offset+limit in memory.
func (s *Store) sortedRequestLogs(ctx context.Context, q rowQuery, field string, order, offset, limit int) ([]RequestLog, error) {
	less := rowOrder(field, order)
	keep := offset + limit
	var rows []RequestLog
	trim := func() {
		slices.SortFunc(rows, less)
		if len(rows) > keep {
			rows = slices.Clip(rows[:keep])
		}
	}
	err := s.eachRequestLog(ctx, q, func(r *RequestLog) error {
		rows = append(rows, *r)
		if len(rows) >= 2*keep+1024 {
			trim()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	trim()
	return rows[min(offset, len(rows)):], nil
}

// rowOrder compares rows by field in order, then by id in the same order.
func rowOrder(field string, order int) func(a, b RequestLog) int {
	return func(a, b RequestLog) int {
		var c int
		switch field {
		case "latency_ms":
			c = cmp.Compare(a.LatencyMS, b.LatencyMS)
		case "status":
			c = cmp.Compare(a.Status, b.Status)
		case "model":
			c = cmp.Compare(a.Model, b.Model)
		default:
			c = a.Time.Compare(b.Time)
		}
		return order * cmp.Or(c, cmp.Compare(a.ID, b.ID))
	}
}

// deleteRequestLogs deletes the request logs q selects and returns how many
// it deleted. A bucket wholly selected is deleted; one partly selected is
// replaced by one of its other rows under the same _id.
func (s *Store) deleteRequestLogs(ctx context.Context, q rowQuery) (int64, error) {
	res, err := s.requests.DeleteMany(ctx, q.rowFilter())
	if err != nil {
		return 0, fmt.Errorf("delete request logs: %w", err)
	}
	n := res.DeletedCount
	timeOnly := q.byTimeOnly()
	var whole []string
	err = s.eachBucket(ctx, q.bucketFilter(), nil, func(b *requestBucket) error {
		if timeOnly && q.inside(b) {
			whole = append(whole, b.ID)
			n += int64(b.N)
			return nil
		}
		rows, err := b.rows()
		if err != nil {
			return err
		}
		kept := slices.DeleteFunc(slices.Clone(rows), func(r RequestLog) bool { return q.match(&r) })
		switch {
		case len(kept) == len(rows):
			return nil
		case len(kept) == 0:
			whole = append(whole, b.ID)
		default:
			nb, err := newBucket(b.ID, kept)
			if err != nil {
				return err
			}
			if _, err := s.buckets.ReplaceOne(ctx, bson.M{"_id": b.ID}, nb); err != nil {
				return fmt.Errorf("rewrite request log bucket: %w", err)
			}
		}
		n += int64(len(rows) - len(kept))
		return nil
	})
	if err != nil {
		return n, err
	}
	// One _id delete each: FerretDB answers $in by scanning the collection.
	err = parallelLimit(len(whole), lookupConcurrency, func(i int) error {
		if _, err := s.buckets.DeleteOne(ctx, bson.M{"_id": whole[i]}); err != nil {
			return fmt.Errorf("delete request log bucket: %w", err)
		}
		return nil
	})
	return n, err
}

// ReadRequestLogs returns every stored request log, buckets and rows of
// earlier versions alike, in no particular order: a scan, for tests and
// tools.
func ReadRequestLogs(ctx context.Context, db *mongo.Database) ([]RequestLog, error) {
	var out []RequestLog
	err := New(db).eachRequestLog(ctx, rowQuery{}, func(r *RequestLog) error {
		out = append(out, *r)
		return nil
	})
	return out, err
}
