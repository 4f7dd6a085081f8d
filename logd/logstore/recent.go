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
//   - InsertLogs copies each batch's rows into their minutes' collections
//     (duplicates are no-ops; the name follows from the row, so a retry or
//     another replica writes the same place), skipping rows older than the
//     watermark (request_logs_watermark, _id "w") it knows;
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

// copyRecent copies inserted or redelivered rows into their minutes'
// collections, and trims the copy now and then.
func (s *Store) copyRecent(ctx context.Context, reqs []RequestLog) error {
	w := s.recent.from.Load()
	byMinute := map[string][]any{}
	n := 0
	for i := range reqs {
		if reqs[i].Time.UnixMilli() >= w {
			c := RecentColl(reqs[i].Time)
			byMinute[c] = append(byMinute[c], &reqs[i])
			n++
		}
	}
	for c, docs := range byMinute {
		if _, _, err := insertUnordered(ctx, s.db.Collection(c), docs); err != nil {
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
			docs, err := s.rollupDocsIn(ctx, s.minutes, bson.M{"h": h})
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
		if _, err := s.db.Collection(RecentColl(before)).DeleteMany(ctx, bson.M{"t": bson.M{"$lt": before.UTC()}}); err != nil {
			return fmt.Errorf("delete recent request logs: %w", err)
		}
		return nil
	}
	for _, m := range mins {
		if _, err := s.db.Collection(RecentColl(m)).DeleteMany(ctx, bson.M{"_id": bson.M{"$in": ids}}); err != nil {
			return fmt.Errorf("delete recent request logs of %s: %w", MinuteBucket(m), err)
		}
	}
	return nil
}

// recentPage answers a newest-first request-log page (eq: the equality
// filters, none or several) from the copy: at least need rows unless fewer
// exist, newest first from the first (the caller skips the offset). ok is
// false when the page needs rows before the watermark, or a trim moved it
// meanwhile. It reads the minutes newest first, each its own small
// collection, with the filters.
func (s *Store) recentPage(ctx context.Context, q logapi.RequestLogQuery, eq bson.M, need int) (rows []RequestLog, ok bool, err error) {
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
		f := bson.M{}
		for k, v := range eq {
			f[k] = v
		}
		cur, err := s.db.Collection(RecentColl(m)).Find(ctx, f)
		if err != nil {
			return nil, false, fmt.Errorf("find recent request logs: %w", err)
		}
		var got []RequestLog
		if err := cur.All(ctx, &got); err != nil {
			return nil, false, fmt.Errorf("read recent request logs: %w", err)
		}
		got = slices.DeleteFunc(got, func(r RequestLog) bool { return r.Time.Before(low) || !r.Time.Before(top) })
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
