package logstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/mongox"
)

// newestFirst pages request logs newest first without a sort over the whole
// collection: FerretDB pushes equality filters down to its backend but sorts
// in Go, so "newest 50 of a million" would read every row. Instead it walks
// the minutes that had traffic (the per-minute rollups, ≤ 60 per hour) from
// the newest back and reads each one by its bucket (m, indexed), until the
// page is full. It serves the logs page's default view (no filter but an
// optional time range, time descending); ok is false when the minute
// rollups (kept MinuteRollupAge) run out first, and the caller falls back.
func (s *Store) newestFirst(ctx context.Context, q logapi.RequestLogQuery, limit int) (rows []RequestLog, ok bool, err error) {
	now := s.now().UTC()
	to := now
	if !q.To.IsZero() && q.To.Before(to) {
		to = q.To.UTC()
	}
	low := now.Add(-MinuteRollupAge + time.Hour)
	if !q.From.IsZero() && q.From.After(low) {
		low = q.From.UTC()
	}
	need := q.Offset + limit + 1
	outside := func(r RequestLog) bool {
		return (!q.From.IsZero() && r.Time.Before(q.From)) || (!q.To.IsZero() && !r.Time.Before(q.To))
	}
	for h := to.Truncate(time.Hour); !h.Before(low.Truncate(time.Hour)); h = h.Add(-time.Hour) {
		mins, err := s.rollupDocsIn(ctx, s.minutes, bson.M{"h": mongox.HourBucket(h)})
		if err != nil {
			return nil, false, err
		}
		slices.SortFunc(mins, func(a, b Rollup) int { return cmp.Compare(b.ID, a.ID) })
		for _, m := range mins {
			if m.Requests == 0 || m.ID > MinuteBucket(to) || m.ID < MinuteBucket(low) {
				continue
			}
			got, err := s.minuteRows(ctx, m.ID, outside)
			if err != nil {
				return nil, false, err
			}
			slices.SortFunc(got, func(a, b RequestLog) int {
				return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.ID, a.ID))
			})
			rows = append(rows, got...)
			if len(rows) >= need {
				return rows[min(q.Offset, len(rows)):], true, nil
			}
		}
	}
	// The walk reached the time range's start: the page is complete.
	if !q.From.IsZero() && !q.From.Before(now.Add(-MinuteRollupAge+time.Hour)) {
		return rows[min(q.Offset, len(rows)):], true, nil
	}
	return nil, false, nil
}

// minuteRows reads the rows of one minute by its bucket, without those the
// query's time range excludes. (Reading by second bucket instead was slower
// on FerretDB/PostgreSQL, which scans the table for every non-_id equality.)
func (s *Store) minuteRows(ctx context.Context, minute string, outside func(RequestLog) bool) ([]RequestLog, error) {
	var got []RequestLog
	err := s.eachRequestLog(ctx, rowQuery{Minute: minute}, func(r *RequestLog) error {
		if !outside(*r) {
			got = append(got, *r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("request logs of minute %s: %w", minute, err)
	}
	return got, nil
}
