package logstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
// sorts in Go, so no query on request_logs can answer the logs page in time.
// request_logs_recent holds a copy of every request log at or after a
// watermark (request_logs_recent_state, _id "w"), about RecentRows of them:
// the logs page's newest-first views (page 1..k, filtered first pages) read
// this small table and fall back to request_logs for what lies before the
// watermark.
//
//   - InsertLogs copies each batch's rows into it (duplicates are no-ops),
//     skipping rows already older than the watermark it knows;
//   - every recentTrimEvery copied rows, the store raises the watermark to the
//     start of the minute holding the RecentRows-th newest request (counted
//     from the minute rollups), then deletes the copies of the minutes before
//     it, one pushed-down equality on m each;
//   - deletes and retention delete the copies too; a straggler (a row older
//     than the watermark copied before the writer saw the watermark move) is
//     ignored by readers and dropped by the daily retention;
//   - readers take only copies at or after the watermark, and read the
//     watermark again after the walk: a trim that moved it past the rows read
//     sends the query to request_logs.
//
// On MongoDB the same collections work (indexes on m and t); the copy costs
// one more insert per request.

// Recent-log collections.
const (
	CollRecent      = "request_logs_recent"
	CollRecentState = "request_logs_recent_state"
)

// RecentRows is about how many request logs request_logs_recent keeps: a
// probe scans it whole on FerretDB/PostgreSQL (~0.5 µs a row), and it must
// hold a filtered first page for a busy filter.
const RecentRows = 20_000

// recentTrimEvery is how many copied rows one store lets pass between trims.
const recentTrimEvery = 2_000

// recentProbes is how many minute probes a filtered walk makes before it
// reads the rest of the recent logs at once (a rare filter); an unfiltered
// walk falls back to request_logs after recentMaxProbes (rows deleted
// behind the minute rollups).
const (
	recentProbes    = 3
	recentMaxProbes = 60
)

// recentHourRows: an hour with at most this many requests is read at once
// (h) rather than minute by minute, so a quiet store's walk is short.
const recentHourRows = 1_000

type recentState struct {
	ID   string    `bson:"_id"`
	From time.Time `bson:"from"`
}

// recent is the Store's view of its recent-log copy.
type recent struct {
	from      atomic.Int64 // the watermark last seen, Unix ms
	sinceTrim atomic.Int64
	trimming  sync.Mutex
	rows      int   // RecentRows, smaller in tests
	hourRows  int64 // recentHourRows, other in tests
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

// copyRecent copies inserted or redelivered rows into request_logs_recent,
// and trims it now and then.
func (s *Store) copyRecent(ctx context.Context, reqs []RequestLog) error {
	w := s.recent.from.Load()
	docs := make([]any, 0, len(reqs))
	for i := range reqs {
		if reqs[i].Time.UnixMilli() >= w {
			docs = append(docs, &reqs[i])
		}
	}
	if len(docs) == 0 {
		return nil
	}
	if _, _, err := insertUnordered(ctx, s.recentLogs, docs); err != nil {
		return fmt.Errorf("copy recent request logs: %w", err)
	}
	if s.recent.sinceTrim.Add(int64(len(docs))) < recentTrimEvery || !s.recent.trimming.TryLock() {
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

// TrimRecent raises the watermark to keep about RecentRows copies and
// deletes the copies before it.
func (s *Store) TrimRecent(ctx context.Context) error {
	old, err := s.recentFrom(ctx)
	if err != nil || old.IsZero() {
		return err
	}
	now := s.now().UTC()
	var seen int64
	var cut time.Time
	var drop []string // minutes with requests between the old and the new watermark
	for h := now.Add(time.Hour).Truncate(time.Hour); !h.Before(old.Truncate(time.Hour)) && !h.Before(now.Add(-MinuteRollupAge)); h = h.Add(-time.Hour) {
		mins, err := s.rollupDocsIn(ctx, s.minutes, bson.M{"h": mongox.HourBucket(h)})
		if err != nil {
			return err
		}
		slices.SortFunc(mins, func(a, b Rollup) int { return cmp.Compare(b.ID, a.ID) })
		for _, m := range mins {
			if m.Requests <= 0 || m.ID < MinuteBucket(old) {
				continue
			}
			if !cut.IsZero() {
				drop = append(drop, m.ID)
				continue
			}
			if seen += m.Requests; seen >= int64(s.recent.rows) {
				t, err := time.Parse("2006-01-02T15:04", m.ID)
				if err != nil {
					return fmt.Errorf("minute rollup %q: %w", m.ID, err)
				}
				cut = t
			}
		}
	}
	if cut.IsZero() || !cut.After(old) {
		return nil
	}
	if _, err := s.recentState.UpdateOne(ctx, bson.M{"_id": "w"}, bson.M{"$max": bson.M{"from": cut}}); err != nil {
		return fmt.Errorf("raise recent request log watermark: %w", err)
	}
	s.recent.from.Store(cut.UnixMilli())
	// The old watermark's minute may hold rows before it: dropped too.
	drop = append(drop, MinuteBucket(old))
	for _, m := range slices.Compact(drop) {
		if m >= MinuteBucket(cut) {
			continue
		}
		if _, err := s.recentLogs.DeleteMany(ctx, bson.M{"m": m}); err != nil {
			return fmt.Errorf("trim recent request logs of %s: %w", m, err)
		}
	}
	return nil
}

// deleteRecent deletes the copies of deleted request logs: by id one at a
// time (an _id equality is pushed down; $in is not), or by filter.
func (s *Store) deleteRecent(ctx context.Context, ids []string, all bool, before time.Time) error {
	switch {
	case all:
		// Nothing is left before now: the watermark moves there, so a
		// walk stops at once instead of probing the minutes of deleted rows.
		if _, err := s.recentState.UpdateOne(ctx, bson.M{"_id": "w"}, bson.M{"$max": bson.M{"from": s.now().UTC()}}); err != nil {
			return fmt.Errorf("raise recent request log watermark: %w", err)
		}
		if _, err := s.recentLogs.DeleteMany(ctx, bson.M{}); err != nil {
			return fmt.Errorf("delete recent request logs: %w", err)
		}
		return nil
	case !before.IsZero():
		if _, err := s.recentLogs.DeleteMany(ctx, bson.M{"t": bson.M{"$lt": before.UTC()}}); err != nil {
			return fmt.Errorf("delete recent request logs: %w", err)
		}
		return nil
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan string)
	)
	for range min(lookupConcurrency, len(ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				if _, err := s.recentLogs.DeleteOne(ctx, bson.M{"_id": id}); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("delete recent request log %s: %w", id, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	return firstErr
}

// recentPage answers a newest-first request-log page (eq: the equality
// filters, none or several) from request_logs_recent: the rows from offset
// on, up to need-offset+... (the caller cuts). ok is false when the page
// needs rows before the watermark, or a trim moved it meanwhile.
//
// It walks the minutes with requests (minute rollups) newest first and reads
// each with an equality on m plus the filters (one scan of the small table;
// a quiet hour at once, by h);
// a filter that is still short of the page after recentProbes minutes reads
// the rest of the copy at once, which for a rare filter returns few rows.
func (s *Store) recentPage(ctx context.Context, q logapi.RequestLogQuery, eq bson.M, need int) (rows []RequestLog, ok bool, err error) {
	w, err := s.recentFrom(ctx)
	if err != nil || w.IsZero() {
		return nil, false, err
	}
	now := s.now().UTC()
	top := now.Add(time.Hour) // rows stamped a little ahead of logd's clock
	if !q.To.IsZero() {
		top = q.To.UTC()
	}
	low := w
	if !q.From.IsZero() && q.From.After(low) {
		low = q.From.UTC()
	}
	rollupLow := now.Add(-MinuteRollupAge + time.Hour)
	keep := func(r RequestLog) bool {
		return !r.Time.Before(low) && r.Time.Before(top)
	}
	find := func(f bson.M) ([]RequestLog, error) {
		for k, v := range eq {
			f[k] = v
		}
		cur, err := s.recentLogs.Find(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("find recent request logs: %w", err)
		}
		var got []RequestLog
		if err := cur.All(ctx, &got); err != nil {
			return nil, fmt.Errorf("read recent request logs: %w", err)
		}
		return got, nil
	}
	newestFirst := func(a, b RequestLog) int { return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.ID, a.ID)) }
	probes := 0
	complete := false // every row down to low was read
walk:
	for h := top.Truncate(time.Hour); ; h = h.Add(-time.Hour) {
		if h.Before(low.Truncate(time.Hour)) {
			complete = true
			break
		}
		if h.Before(rollupLow.Truncate(time.Hour)) {
			break // no minute rollups this far back
		}
		mins, err := s.rollupDocsIn(ctx, s.minutes, bson.M{"h": mongox.HourBucket(h)})
		if err != nil {
			return nil, false, err
		}
		slices.SortFunc(mins, func(a, b Rollup) int { return cmp.Compare(b.ID, a.ID) })
		mins = slices.DeleteFunc(mins, func(m Rollup) bool {
			return m.Requests <= 0 || m.ID > MinuteBucket(top) || m.ID < MinuteBucket(low)
		})
		var inHour int64
		for _, m := range mins {
			inHour += m.Requests
		}
		if len(mins) > 1 && inHour <= s.recent.hourRows {
			// A quiet hour: one read instead of a probe per minute.
			if probes++; probes > recentMaxProbes {
				return nil, false, nil
			}
			got, err := find(bson.M{"h": mongox.HourBucket(h)})
			if err != nil {
				return nil, false, err
			}
			got = slices.DeleteFunc(got, func(r RequestLog) bool { return !keep(r) })
			slices.SortFunc(got, newestFirst)
			if rows = append(rows, got...); len(rows) >= need {
				break walk
			}
			continue
		}
		for _, m := range mins {
			if probes++; probes > recentProbes && len(eq) > 0 {
				// A rare filter: the rest of the copy, this minute and older.
				got, err := find(bson.M{})
				if err != nil {
					return nil, false, err
				}
				got = slices.DeleteFunc(got, func(r RequestLog) bool { return r.Minute > m.ID || !keep(r) })
				slices.SortFunc(got, newestFirst)
				rows = append(rows, got...)
				complete = true
				break walk
			}
			if probes > recentMaxProbes {
				return nil, false, nil
			}
			got, err := find(bson.M{"m": m.ID})
			if err != nil {
				return nil, false, err
			}
			got = slices.DeleteFunc(got, func(r RequestLog) bool { return !keep(r) })
			slices.SortFunc(got, newestFirst)
			if rows = append(rows, got...); len(rows) >= need {
				break walk
			}
		}
	}
	if len(rows) < need && !(complete && !low.Equal(w)) {
		// Short of the page: older rows may lie before the watermark.
		return nil, false, nil
	}
	// A trim meanwhile may have deleted copies the walk still needed: the
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
