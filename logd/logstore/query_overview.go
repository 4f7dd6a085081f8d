package logstore

import (
	"context"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/mongox"
)

// Overview answers gb.logd.stats.overview from rollups only: the last
// minute, hour and 24 hours to the second, and the current month.
//
// Each window [from, now] is summed from second rollups for its partial
// minutes at both ends, minute rollups for its partial hours and overall
// hourly rollups in between, so a busy day costs the same as a quiet one and
// a "now" in the past stays exact. The windows share most buckets (they all
// end at now), so the buckets are planned first and each is read once, all
// reads in parallel: on FerretDB every read is a scan of its collection
// (see Attention), so the number of reads is the
// cost.
func (s *Store) Overview(ctx context.Context, q logapi.OverviewQuery) (logapi.Overview, error) {
	return consistently(ctx, s, func(ctx context.Context) (logapi.Overview, error) { return s.overview(ctx, q) })
}

func (s *Store) overview(ctx context.Context, q logapi.OverviewQuery) (logapi.Overview, error) {
	now := q.Now
	if now.IsZero() {
		now = s.now()
	}
	now = now.UTC()
	out := logapi.Overview{Now: now}
	windows := []struct {
		dst  *logapi.Totals
		from time.Time
	}{
		{&out.Minute, now.Add(-time.Minute)},
		{&out.Hour, now.Add(-time.Hour)},
		{&out.Day, now.Add(-24 * time.Hour)},
	}
	var p windowPlan
	for _, w := range windows {
		p.plan(w.from, now)
	}
	for h := range p.hours {
		p.days[h[:10]] = true
	}
	if err := s.fetchPlan(ctx, &p); err != nil {
		return out, err
	}
	for _, w := range windows {
		*w.dst = p.sum(w.from, now).totals()
	}
	// The month: its days' overall counters, one document (monthdays.go).
	days, err := s.monthDays(ctx, mongox.MonthBucket(now))
	if err != nil {
		return out, err
	}
	var m Counters
	for _, c := range days {
		m.Add(c)
	}
	out.Month = m.totals()
	return out, nil
}

// windowPlan collects the buckets some windows need, then holds what was read.
type windowPlan struct {
	secMinutes  map[string]bool // minute buckets whose second rollups are read (one document each)
	minuteHours map[string]bool // hour buckets whose minute rollups are read
	hours       map[string]bool // whole hours summed from overall hourly rollups
	days        map[string]bool // days whose overall hourly rollups are read

	seconds map[string]Counters // second bucket → counters
	minutes map[string]Counters // minute bucket → counters
	hourly  map[string]Counters // hour bucket → overall counters
}

// ranges splits the window [from, now] (now's whole second included) into
// second, minute and hour ranges. Edges are rounded to whole seconds.
func windowRanges(from, now time.Time) (secs, mins [][2]time.Time, hours [2]time.Time) {
	from = ceil(from.UTC(), time.Second)
	end := now.UTC().Truncate(time.Second).Add(time.Second)
	fromMin, nowMin := ceil(from, time.Minute), now.UTC().Truncate(time.Minute)
	if !fromMin.Before(nowMin) {
		return [][2]time.Time{{from, end}}, nil, hours
	}
	secs = [][2]time.Time{{from, fromMin}, {nowMin, end}}
	fromHour, nowHour := ceil(fromMin, time.Hour), nowMin.Truncate(time.Hour)
	if !fromHour.Before(nowHour) {
		return secs, [][2]time.Time{{fromMin, nowMin}}, hours
	}
	return secs, [][2]time.Time{{fromMin, fromHour}, {nowHour, nowMin}}, [2]time.Time{fromHour, nowHour}
}

func (p *windowPlan) plan(from, now time.Time) {
	if p.secMinutes == nil {
		p.secMinutes, p.minuteHours, p.hours, p.days = map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	}
	secs, mins, hours := windowRanges(from, now)
	for _, r := range secs {
		for m := r[0].Truncate(time.Minute); m.Before(r[1]); m = m.Add(time.Minute) {
			p.secMinutes[MinuteBucket(m)] = true
		}
	}
	for _, r := range mins {
		for h := r[0].Truncate(time.Hour); h.Before(r[1]); h = h.Add(time.Hour) {
			p.minuteHours[mongox.HourBucket(h)] = true
		}
	}
	for h := hours[0]; h.Before(hours[1]); h = h.Add(time.Hour) {
		p.hours[mongox.HourBucket(h)] = true
	}
}

// sum adds up the window [from, now] from what fetchPlan read.
func (p *windowPlan) sum(from, now time.Time) Counters {
	var c Counters
	secs, mins, hours := windowRanges(from, now)
	for _, r := range secs {
		lo, hi := SecondBucket(r[0]), SecondBucket(r[1])
		for id, v := range p.seconds {
			if id >= lo && id < hi {
				c.Add(v)
			}
		}
	}
	for _, r := range mins {
		lo, hi := MinuteBucket(r[0]), MinuteBucket(r[1])
		for id, v := range p.minutes {
			if id >= lo && id < hi {
				c.Add(v)
			}
		}
	}
	for h := hours[0]; h.Before(hours[1]); h = h.Add(time.Hour) {
		c.Add(p.hourly[mongox.HourBucket(h)])
	}
	return c
}

// fetchPlan reads every planned bucket once, with equality filters only
// (FerretDB evaluates ranges in Go after fetching the whole collection).
func (s *Store) fetchPlan(ctx context.Context, p *windowPlan) error {
	p.seconds, p.minutes, p.hourly = map[string]Counters{}, map[string]Counters{}, map[string]Counters{}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	read := func(docs func() ([]Rollup, error), into map[string]Counters, key func(Rollup) string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := docs()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			for _, r := range d {
				c := into[key(r)]
				c.Add(r.Counters)
				into[key(r)] = c
			}
		}()
	}
	id := func(r Rollup) string { return r.ID }
	hour := func(r Rollup) string { return r.Hour }
	for m := range p.secMinutes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			secs, err := s.minuteSeconds(ctx, m)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			for id, c := range secs {
				p.seconds[id] = c
			}
		}()
	}
	for h := range p.minuteHours {
		read(func() ([]Rollup, error) { return s.rollupDocsIn(ctx, s.minutes, bson.M{"h": h}) }, p.minutes, id)
	}
	for d := range p.days {
		f := level("", "", "")
		f["d"] = d
		read(func() ([]Rollup, error) { return s.rollupDocs(ctx, f) }, p.hourly, hour)
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func ceil(t time.Time, d time.Duration) time.Time {
	tr := t.Truncate(d)
	if tr.Before(t) {
		tr = tr.Add(d)
	}
	return tr
}
