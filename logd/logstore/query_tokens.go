package logstore

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/mongox"
)

// tokenUsageDays is the long window of TokenUsage.
const tokenUsageDays = 30

// TokenUsage answers gb.logd.stats.tokens from the per-token rollups
// (k = *, mo = *, tk = the token): one equality-filtered read per month the
// 30-day window touches, in parallel. On FerretDB every read
// scans its whole collection, so the number of reads is the cost: a read
// per day made 30 scans of the hourly rollups. No raw log is read.
func (s *Store) TokenUsage(ctx context.Context, q logapi.TokenUsageQuery) (logapi.TokenUsageReply, error) {
	return consistently(ctx, s, func(ctx context.Context) (logapi.TokenUsageReply, error) { return s.tokenUsage(ctx, q) })
}

func (s *Store) tokenUsage(ctx context.Context, q logapi.TokenUsageQuery) (logapi.TokenUsageReply, error) {
	now := q.Now
	if now.IsZero() {
		now = s.now()
	}
	now = now.UTC().Truncate(time.Hour)
	from := now.Add(-(tokenUsageDays*24 - 1) * time.Hour)
	dayFrom := now.Add(-23 * time.Hour)
	var months []string // three when the window holds a whole February
	for m := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC); !m.After(now); m = m.AddDate(0, 1, 0) {
		months = append(months, mongox.MonthBucket(m))
	}
	hFrom, hTo, h24 := mongox.HourBucket(from), mongox.HourBucket(now), mongox.HourBucket(dayFrom)
	var mu sync.Mutex
	out := logapi.TokenUsageReply{Tokens: map[string]logapi.TokenUsage{}}
	err := parallel(len(months), func(i int) error {
		// The overall documents (tk = *) are skipped below, not filtered
		// out: FerretDB/PostgreSQL evaluates a pushed-down $ne as three
		// tests per row, in whatever order the filter's keys arrive.
		f := bson.M{"mon": months[i], "k": Any, "mo": Any}
		if len(q.TokenIDs) == 1 {
			f["tk"] = q.TokenIDs[0]
		}
		docs, err := s.rollupDocs(ctx, f)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, d := range docs {
			if d.Token == Any || d.Hour < hFrom || d.Hour > hTo || d.Requests == 0 || (len(q.TokenIDs) > 1 && !slices.Contains(q.TokenIDs, d.Token)) {
				continue
			}
			u := out.Tokens[d.Token]
			u.Requests30d += d.Requests
			u.Tokens30d += d.Tokens
			if d.Hour >= h24 {
				u.Requests24h += d.Requests
				u.Failures24h += d.Failures
				u.Tokens24h += d.Tokens
			}
			if t, err := time.Parse("2006-01-02T15", d.Hour); err == nil && (u.LastUsed == nil || t.After(*u.LastUsed)) {
				u.LastUsed = &t
			}
			out.Tokens[d.Token] = u
		}
		return nil
	})
	return out, err
}
