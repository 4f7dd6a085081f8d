package logstore

import (
	"context"
	"slices"
	"time"

	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/mongox"
)

// tokenUsageDays is the long window of TokenUsage.
const tokenUsageDays = 30

// TokenUsage answers gb.logd.stats.tokens from the token rollups
// (tokenrollups.go): the 24 hours by hour, the 30 days by the hours of their
// first day and of today and the days between. No raw log and no hourly
// rollup is read.
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
	h24 := mongox.HourBucket(now.Add(-23 * time.Hour))
	today := now.Truncate(24 * time.Hour)
	firstDayEnd := from.Truncate(24 * time.Hour).Add(24 * time.Hour)
	var hourIDs, dayIDs []string
	for h := from; h.Before(firstDayEnd); h = h.Add(time.Hour) {
		hourIDs = append(hourIDs, mongox.HourBucket(h))
	}
	for h := now.Add(-23 * time.Hour); !h.After(now); h = h.Add(time.Hour) {
		if h.Before(firstDayEnd) {
			continue // read above
		}
		hourIDs = append(hourIDs, mongox.HourBucket(h))
	}
	for d := firstDayEnd; d.Before(today); d = d.Add(24 * time.Hour) {
		dayIDs = append(dayIDs, mongox.DayBucket(d))
	}
	var hours, days map[string]*tokenDoc
	err := parallel(2, func(i int) error {
		var err error
		if i == 0 {
			hours, err = s.tokenDocs(ctx, CollTokenHours, hourIDs)
		} else {
			days, err = s.tokenDocs(ctx, CollTokenDays, dayIDs)
		}
		return err
	})
	if err != nil {
		return logapi.TokenUsageReply{}, err
	}
	out := logapi.TokenUsageReply{Tokens: map[string]logapi.TokenUsage{}}
	last := map[string]string{}
	use := func(tok string, c Counters, lastHour string, in30, in24 bool) {
		if c.Requests == 0 || (len(q.TokenIDs) > 0 && !slices.Contains(q.TokenIDs, tok)) {
			return
		}
		u := out.Tokens[tok]
		if in30 {
			u.Requests30d += c.Requests
			u.Tokens30d += c.Tokens
			last[tok] = max(last[tok], lastHour)
		}
		if in24 {
			u.Requests24h += c.Requests
			u.Failures24h += c.Failures
			u.Tokens24h += c.Tokens
		}
		out.Tokens[tok] = u
	}
	hTo, todayID := mongox.HourBucket(now), mongox.HourBucket(today)
	firstEnd := mongox.HourBucket(firstDayEnd)
	for h, d := range hours {
		// 30 days: the first day's hours and today's; 24 hours: its own.
		in30 := h < firstEnd || (h >= todayID && h <= hTo)
		for tok, c := range d.counts {
			use(tok, c, h, in30, h >= h24 && h <= hTo)
		}
	}
	for _, d := range days {
		for tok, c := range d.counts {
			use(tok, c, d.last[tok], true, false)
		}
	}
	for tok, h := range last {
		if t, err := time.Parse("2006-01-02T15", h); err == nil {
			u := out.Tokens[tok]
			u.LastUsed = &t
			out.Tokens[tok] = u
		}
	}
	return out, nil
}
