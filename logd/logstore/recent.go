package logstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/mongox"
)

// The recent request logs. FerretDB 1.24 on PostgreSQL scans the whole
// table for every query (~600 ms at a million rows, whatever the filter) and
// sorts in Go; on SQLite it pushes down only a lone _id equality, so every
// other query reads and decodes every row. No query on request_logs can
// answer the logs page in time. So the newest request logs are copied, one
// small collection per minute of their time (request_logs_recent_
// <yyyymmddhhmm>), and newest-first pages read those minute by minute: a
// read costs the rows of the minutes it reads, on every backend.
//
//   - InsertLogs copies each batch's rows into their minutes' collections,
//     one bucket document per batch and minute (the name follows from the
//     row, so a retry or another replica writes the same place), skipping
//     rows older than the watermark (request_logs_watermark, _id "w") it
//     knows;
//   - every recentTrimEvery copied rows, the store keeps the newest minutes
//     holding about RecentRows requests (counted from the minute rollups; at
//     most recentMinutes of them), raises the watermark to the oldest kept
//     minute and drops the older collections: a drop, not row deletes;
//   - the copy holds every request log at or after the watermark; deletes
//     and retention delete the copies too; a copy older than the watermark
//     (written by a writer that had not seen it move) is ignored by readers
//     and dropped by the next trim;
//   - readers take only copies at or after the watermark and read it again
//     after the walk: a page that needs rows before it, or that a trim
//     overtook, is read from request_logs.
//
// On MongoDB the same path runs (a small collection needs no index).
//
// A bucket holds its rows as one S2-compressed BSON value (rb): it is the
// request-log bucket (buckets.go), _id and rows, copied as stored, so a
// message's rows are encoded once. A document costs FerretDB a statement
// and a JSON encoding with a type schema per field, so one per message
// instead of one per row is most of the copy's cost gone
// (BenchmarkDocumentShapes). Nothing filters on a row
// inside the store: a reader decodes a minute's buckets and filters in Go, as
// FerretDB would have done anyway. A retry that groups rows differently may
// copy a row twice; readers keep one. A delete rewrites the buckets it
// touches (the rest first, then the old bucket goes), so a crash between
// leaves a duplicate, never a lost row. Copies written one document per row
// (earlier versions) are still read and deleted.

// Recent-log collections: the minute collections are named
// CollRecentPrefix + "200601021504" (UTC).
const (
	CollRecentPrefix = "request_logs_recent_"
	CollRecentState  = "request_logs_watermark"
)

// RecentRows is about how many request logs the copy keeps: enough for a
// filtered first page of a busy filter, and for page 1..k.
const RecentRows = 20_000

// recentMinutes bounds the minute collections kept (a quiet store).
const recentMinutes = 240

// recentTrimEvery is how many copied rows one store lets pass between trims.
const recentTrimEvery = 2_000

const recentNameLayout = "200601021504"

// RecentColl is the copy collection of the minute holding t.
func RecentColl(t time.Time) string { return CollRecentPrefix + t.UTC().Format(recentNameLayout) }

type recentState struct {
	ID   string    `bson:"_id"`
	From time.Time `bson:"from"`
}

// recent is the Store's view of its recent-log copy.
type recent struct {
	from      atomic.Int64 // the watermark last seen, Unix ms
	sinceTrim atomic.Int64
	trimming  sync.Mutex
	rows      int // RecentRows, smaller in tests
}

// SetRecentRows replaces RecentRows (tests).
func (s *Store) SetRecentRows(n int) { s.recent.rows = n }

// initRecent starts the copy when there is none: the watermark is now, so
// rows stored before stay readable through request_logs.
func (s *Store) initRecent(ctx context.Context) error {
	_, _, err := insertUnordered(ctx, s.recentState, []any{recentState{ID: "w", From: s.now().UTC().Truncate(time.Millisecond)}})
	if err != nil {
		return fmt.Errorf("start recent request logs: %w", err)
	}
	_, err = s.recentFrom(ctx)
	return err
}

// recentFrom reads the watermark (zero: no copy yet).
func (s *Store) recentFrom(ctx context.Context) (time.Time, error) {
	var st recentState
	err := s.recentState.FindOne(ctx, bson.M{"_id": "w"}).Decode(&st)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read recent request log watermark: %w", err)
	}
	s.recent.from.Store(st.From.UnixMilli())
	return st.From.UTC(), nil
}

// raiseRecentFrom moves the watermark to t unless it is past it already.
func (s *Store) raiseRecentFrom(ctx context.Context, t time.Time) error {
	if _, err := s.recentState.UpdateOne(ctx, bson.M{"_id": "w"}, bson.M{"$max": bson.M{"from": t.UTC()}}); err != nil {
		return fmt.Errorf("raise recent request log watermark: %w", err)
	}
	_, err := s.recentFrom(ctx)
	return err
}

// recentMinutesStored lists the minutes with a copy collection, newest first.
func (s *Store) recentMinutesStored(ctx context.Context) ([]time.Time, error) {
	names, err := s.db.ListCollectionNames(ctx, bson.M{})
	if err != nil {
		return nil, fmt.Errorf("list recent request log collections: %w", err)
	}
	var out []time.Time
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, CollRecentPrefix)
		if !ok {
			continue
		}
		if t, err := time.Parse(recentNameLayout, rest); err == nil {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return b.Compare(a) })
	return out, nil
}

// copyRecent copies a batch's buckets, inserted or redelivered, into their
// minutes' collections (the same _id and rows: a bucket holds one minute),
// and trims the copy now and then. A bucket of the watermark's minute may
// bring rows just before it; readers skip those.
func (s *Store) copyRecent(ctx context.Context, buckets []*requestBucket) error {
	w := s.recent.from.Load()
	n := 0
	for _, b := range buckets {
		if b.To.UnixMilli() < w {
			continue
		}
		n += b.N
		if _, _, err := insertUnordered(ctx, s.db.Collection(RecentColl(b.From)), []any{recentBucket{ID: b.ID, N: b.N, Rows: b.Rows}}); err != nil {
			return fmt.Errorf("copy recent request logs: %w", err)
		}
	}
	if n == 0 || s.recent.sinceTrim.Add(int64(n)) < recentTrimEvery || !s.recent.trimming.TryLock() {
		return nil
	}
	defer s.recent.trimming.Unlock()
	s.recent.sinceTrim.Store(0)
	// A failed trim leaves more rows than planned, never a wrong page: the
	// batch is stored, so it is not failed for it.
	if err := s.TrimRecent(ctx); err != nil {
		slog.Warn("trim recent request logs", "err", err)
	}
	return nil
}

// TrimRecent keeps the newest minutes holding about RecentRows requests
// (at most recentMinutes minutes), raises the watermark to the oldest kept
// one and drops the collections before it.
func (s *Store) TrimRecent(ctx context.Context) error {
	w, err := s.recentFrom(ctx)
	if err != nil || w.IsZero() {
		return err
	}
	mins, err := s.recentMinutesStored(ctx)
	if err != nil {
		return err
	}
	counts := map[string]int64{}
	read := map[string]bool{}
	var seen int64
	cut := w
	for i, m := range mins {
		if m.Before(w.Truncate(time.Minute)) {
			break
		}
		if h := mongox.HourBucket(m); !read[h] {
			read[h] = true
			docs, err := s.minuteRollups(ctx, h, mins[i:])
			if err != nil {
				return err
			}
			for _, d := range docs {
				counts[d.ID] = d.Requests
			}
		}
		if seen += counts[MinuteBucket(m)]; seen >= int64(s.recent.rows) || i+1 >= recentMinutes {
			cut = m
			break
		}
	}
	if cut.After(w) {
		if err := s.raiseRecentFrom(ctx, cut); err != nil {
			return err
		}
	}
	return s.dropRecentBefore(ctx, mins, cut)
}

// minuteRollups reads the minute rollups of hour h (the view's pending
// parts added). On the embedded store it looks up only the minutes of h in
// mins (newest first), those with a copy: under load a trim runs every
// couple of seconds and one or two minutes hold RecentRows, where reading
// all 60 of the hour was most of a trim's cost.
func (s *Store) minuteRollups(ctx context.Context, h string, mins []time.Time) ([]Rollup, error) {
	byID, err := s.guardByLookup(ctx)
	if err != nil {
		return nil, err
	}
	if !byID {
		return s.rollupDocsIn(ctx, s.minutes, bson.M{"h": h})
	}
	var ids []string
	for _, m := range mins {
		if mongox.HourBucket(m) == h {
			ids = append(ids, MinuteBucket(m))
		}
	}
	v, err := s.loadView(ctx)
	if err != nil {
		return nil, err
	}
	docs, err := s.rollupsByID(ctx, s.minutes, ids)
	if err != nil {
		return nil, err
	}
	return v.merge(CollMinutes, bson.M{"h": h}, docs)
}

// dropRecentBefore drops the copy collections of the minutes (from mins)
// before cut's minute.
func (s *Store) dropRecentBefore(ctx context.Context, mins []time.Time, cut time.Time) error {
	for _, m := range mins {
		if m.Before(cut.Truncate(time.Minute)) {
			if err := s.db.Collection(RecentColl(m)).Drop(ctx); err != nil {
				return fmt.Errorf("drop recent request logs of %s: %w", MinuteBucket(m), err)
			}
		}
	}
	return nil
}

// deleteRecent deletes the copies of deleted request logs.
func (s *Store) deleteRecent(ctx context.Context, ids []string, all bool, before time.Time) error {
	mins, err := s.recentMinutesStored(ctx)
	if err != nil {
		return err
	}
	switch {
	case all:
		// Nothing is left before now: the watermark moves there, so a
		// walk stops at once.
		if err := s.raiseRecentFrom(ctx, s.now()); err != nil {
			return err
		}
		if len(mins) == 0 {
			return nil
		}
		return s.dropRecentBefore(ctx, mins, mins[0].Add(time.Minute)) // every one
	case !before.IsZero():
		if err := s.dropRecentBefore(ctx, mins, before); err != nil {
			return err
		}
		before = before.UTC()
		c := s.db.Collection(RecentColl(before))
		if _, err := c.DeleteMany(ctx, bson.M{"t": bson.M{"$lt": before}}); err != nil { // rows of earlier versions
			return fmt.Errorf("delete recent request logs: %w", err)
		}
		return rewriteRecent(ctx, c, func(r *RequestLog) bool { return r.Time.Before(before) })
	}
	drop := make(map[string]bool, len(ids))
	for _, id := range ids {
		drop[id] = true
	}
	for _, m := range mins {
		c := s.db.Collection(RecentColl(m))
		if _, err := c.DeleteMany(ctx, bson.M{"_id": bson.M{"$in": ids}}); err != nil {
			return fmt.Errorf("delete recent request logs of %s: %w", MinuteBucket(m), err)
		}
		if err := rewriteRecent(ctx, c, func(r *RequestLog) bool { return drop[r.ID] }); err != nil {
			return err
		}
	}
	return nil
}

// recentBucket is one document of a minute's copy: a batch's rows of that
// minute, as one compressed value.
type recentBucket struct {
	ID   string `bson:"_id"` // "rb:" + a hash of the row ids
	N    int    `bson:"n"`
	Rows []byte `bson:"rb"` // S2 of the BSON of bucketRows
}

func newRecentBucket(rows []RequestLog) (recentBucket, error) {
	ids := make([]string, len(rows))
	for i := range rows {
		ids[i] = rows[i].ID
	}
	rb, err := encodeRows(rows)
	if err != nil {
		return recentBucket{}, fmt.Errorf("encode recent request logs: %w", err)
	}
	return recentBucket{ID: PartID("rb", ids), N: len(rows), Rows: rb}, nil
}

func (b recentBucket) rows() ([]RequestLog, error) { return decodeRows(b.ID, b.Rows) }

// readRecent reads a minute's copy: every row once, buckets and rows of
// earlier versions alike.
func readRecent(ctx context.Context, c *mongo.Collection) ([]RequestLog, error) {
	cur, err := c.Find(ctx, bson.M{})
	if err != nil {
		return nil, fmt.Errorf("find recent request logs: %w", err)
	}
	defer func() { _ = cur.Close(ctx) }()
	var out []RequestLog
	seen := map[string]bool{}
	add := func(r RequestLog) {
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r)
		}
	}
	for cur.Next(ctx) {
		if _, err := cur.Current.LookupErr("rb"); err == nil {
			var b recentBucket
			if err := cur.Decode(&b); err != nil {
				return nil, fmt.Errorf("read recent request logs: %w", err)
			}
			rows, err := b.rows()
			if err != nil {
				return nil, err
			}
			for _, r := range rows {
				add(r)
			}
			continue
		}
		var r RequestLog
		if err := cur.Decode(&r); err != nil {
			return nil, fmt.Errorf("read recent request logs: %w", err)
		}
		add(r)
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("read recent request logs: %w", err)
	}
	return out, nil
}

// rewriteRecent takes the rows drop says from a minute's buckets: a bucket
// holding any is replaced by one of the rest, written before the old one is
// deleted.
func rewriteRecent(ctx context.Context, c *mongo.Collection, drop func(*RequestLog) bool) error {
	cur, err := c.Find(ctx, bson.M{"rb": bson.M{"$exists": true}})
	if err != nil {
		return fmt.Errorf("find recent request log buckets: %w", err)
	}
	var buckets []recentBucket
	if err := cur.All(ctx, &buckets); err != nil {
		return fmt.Errorf("read recent request log buckets: %w", err)
	}
	for _, b := range buckets {
		rows, err := b.rows()
		if err != nil {
			return err
		}
		kept := slices.DeleteFunc(slices.Clone(rows), func(r RequestLog) bool { return drop(&r) })
		if len(kept) == len(rows) {
			continue
		}
		if len(kept) > 0 {
			nb, err := newRecentBucket(kept)
			if err != nil {
				return err
			}
			if _, _, err := insertUnordered(ctx, c, []any{nb}); err != nil {
				return fmt.Errorf("rewrite recent request log bucket: %w", err)
			}
		}
		if _, err := c.DeleteOne(ctx, bson.M{"_id": b.ID}); err != nil {
			return fmt.Errorf("delete recent request log bucket: %w", err)
		}
	}
	return nil
}

// recentPage answers a newest-first request-log page (q's filters, none or
// several) from the copy: at least need rows unless fewer exist, newest
// first from the first (the caller skips the offset). ok is false when the
// page needs rows before the watermark, or a trim moved it meanwhile. It
// reads the minutes newest first, each its own small collection, and
// filters in Go.
func (s *Store) recentPage(ctx context.Context, q logapi.RequestLogQuery, need int) (rows []RequestLog, ok bool, err error) {
	w, err := s.recentFrom(ctx)
	if err != nil || w.IsZero() {
		return nil, false, err
	}
	top := s.now().UTC().Add(time.Hour) // rows stamped a little ahead of logd's clock
	if !q.To.IsZero() {
		top = q.To.UTC()
	}
	low := w
	if !q.From.IsZero() && q.From.After(low) {
		low = q.From.UTC()
	}
	mins, err := s.recentMinutesStored(ctx)
	if err != nil {
		return nil, false, err
	}
	complete := true // every row down to low was read
	for _, m := range mins {
		if !m.Before(top) || m.Add(time.Minute).Before(low) || m.Add(time.Minute).Equal(low) {
			continue
		}
		if len(rows) >= need {
			complete = false
			break
		}
		got, err := readRecent(ctx, s.db.Collection(RecentColl(m)))
		if err != nil {
			return nil, false, err
		}
		got = slices.DeleteFunc(got, func(r RequestLog) bool { return r.Time.Before(low) || !r.Time.Before(top) || !rowMatches(&r, q) })
		slices.SortFunc(got, func(a, b RequestLog) int { return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.ID, a.ID)) })
		rows = append(rows, got...)
	}
	if len(rows) < need && !(complete && !low.Equal(w)) {
		// Short of the page: older rows may lie before the watermark.
		return nil, false, nil
	}
	// A trim meanwhile may have dropped copies the walk still needed: the
	// rows down to the page's last one, or down to low for a short page.
	w2, err := s.recentFrom(ctx)
	if err != nil {
		return nil, false, err
	}
	reached := low
	if len(rows) >= need {
		reached = rows[need-1].Time
	}
	if w2.After(reached) {
		return nil, false, nil
	}
	return rows, true, nil
}

// rowMatches applies a page's equality filters to a row (the time range is the
// caller's).
func rowMatches(r *RequestLog, q logapi.RequestLogQuery) bool {
	return (q.KeyID == "" || r.KeyID == q.KeyID) && (q.Model == "" || r.Model == q.Model) &&
		(q.TokenID == "" || r.TokenID == q.TokenID) && (q.Route == "" || r.Route == q.Route) &&
		(q.Status == 0 || r.Status == q.Status) && (q.Success == nil || r.Success == *q.Success)
}
