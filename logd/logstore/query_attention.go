package logstore

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/mongox"
)

// CollQueryCache holds summaries the queries derive from rollups and keep,
// each checked against the rollups before it is used (see Attention). It is
// a cache: dropping it loses nothing.
const CollQueryCache = "rollups_cache"

// attentionCacheAge is how long per-hour attention summaries are kept.
const attentionCacheAge = 48 * time.Hour

// hourCodes is the cached attention summary of one hour: every key's count
// per status code (requests by the status the client saw, and failed
// upstream attempts by upstream status), and the hour's overall request and
// failed-attempt counts when it was taken.
type hourCodes struct {
	ID       string                `bson:"_id"` // "att|" + hour
	Kind     string                `bson:"kind"`
	Hour     string                `bson:"h"`
	Day      string                `bson:"d"`
	Requests int64                 `bson:"req"`
	Attempts int64                 `bson:"att"`
	Codes    map[string][]keyCount `bson:"codes"`
	ACodes   map[string][]keyCount `bson:"acodes"`
}

// byCode is the per-key count of a status code: failed attempts for an
// error status (with failover, a key's 429 is usually followed by a success
// on another key, so only the attempt shows it), requests otherwise.
func (h *hourCodes) byCode(code string, attempts bool) []keyCount {
	if attempts {
		return h.ACodes[code]
	}
	return h.Codes[code]
}

func sumCounts(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

type keyCount struct {
	Key   string `bson:"k"`
	Count int64  `bson:"n"`
}

// Attention answers gb.logd.stats.attention: the keys with the most
// responses of one status code in the 24 hours up to now (whole hours). For
// an error status (≥ 400) it counts failed upstream attempts of each key
// (error events), as gemini-balance's per-attempt logs do; for any other
// status, the requests that ended with it.
//
// On FerretDB every read scans its whole collection and evaluates all but
// top-level equalities in Go, document by document, so the cost is the
// number of documents a read returns: the per-key rollups of a busy day are
// thousands. Each hour's per-key counts are therefore summarised once into
// rollups_cache, and reused while that hour's overall rollup still counts
// the same number of requests (every request increments both, so an
// unchanged count means an unchanged hour). An hour is summarised only from
// a consistent read: its per-key request counts add up to its overall count
// (a batch half-applied to the rollups does not). A steady dashboard reads
// the overall rollups of the day, the cached summaries and the current hour.
func (s *Store) Attention(ctx context.Context, q logapi.AttentionQuery) (logapi.Attention, error) {
	return consistently(ctx, s, func(ctx context.Context) (logapi.Attention, error) { return s.attention(ctx, q) })
}

func (s *Store) attention(ctx context.Context, q logapi.AttentionQuery) (logapi.Attention, error) {
	code := q.Code
	if code == 0 {
		code = 429
	}
	if code < 100 || code > 599 {
		return logapi.Attention{}, badRequest("status_code must be an HTTP status")
	}
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return logapi.Attention{}, err
	}
	now := q.Now
	if now.IsZero() {
		now = s.now()
	}
	now = now.UTC()
	from, to := now.Add(-23*time.Hour).Truncate(time.Hour), now.Truncate(time.Hour)
	codeKey := strconv.Itoa(code)
	attempts := code >= 400

	var days []string
	for d := from.Truncate(24 * time.Hour); !d.After(to); d = d.Add(24 * time.Hour) {
		days = append(days, mongox.DayBucket(d))
	}
	var mu sync.Mutex
	overall := map[string]Rollup{}
	cached := map[string]hourCodes{}
	err = parallel(len(days)*2, func(i int) error {
		day := days[i/2]
		if i%2 == 0 {
			f := level("", "", "")
			f["d"] = day
			docs, err := s.rollupDocs(ctx, f)
			if err != nil {
				return err
			}
			locked(&mu, func() {
				for _, d := range docs {
					overall[d.Hour] = d
				}
			})
			return nil
		}
		cur, err := s.cache().Find(ctx, bson.M{"kind": "att", "d": day})
		if err != nil {
			return fmt.Errorf("find attention summaries: %w", err)
		}
		var hs []hourCodes
		if err := cur.All(ctx, &hs); err != nil {
			return fmt.Errorf("read attention summaries: %w", err)
		}
		locked(&mu, func() {
			for _, h := range hs {
				cached[h.Hour] = h
			}
		})
		return nil
	})
	if err != nil {
		return logapi.Attention{}, err
	}

	counts := map[string]int64{}
	var missing []string
	for t := from; !t.After(to); t = t.Add(time.Hour) {
		h := mongox.HourBucket(t)
		o, ok := overall[h]
		if !ok || (attempts && o.Attempts[codeKey] == 0) || (!attempts && o.Codes[codeKey] == 0) {
			continue // nothing in that hour had the code
		}
		if c, ok := cached[h]; ok && c.Requests == o.Requests && c.Attempts == sumCounts(o.Attempts) {
			for _, kc := range c.byCode(codeKey, attempts) {
				counts[kc.Key] += kc.Count
			}
			continue
		}
		missing = append(missing, h)
	}
	fresh, err := s.summarise(ctx, missing)
	if err != nil {
		return logapi.Attention{}, err
	}
	for _, hc := range fresh {
		for _, kc := range hc.byCode(codeKey, attempts) {
			counts[kc.Key] += kc.Count
		}
	}

	out := logapi.Attention{Code: code, Keys: []logapi.AttentionKey{}}
	for k, n := range counts {
		out.Keys = append(out.Keys, logapi.AttentionKey{KeyID: k, Count: n})
	}
	sort.Slice(out.Keys, func(i, j int) bool {
		if out.Keys[i].Count != out.Keys[j].Count {
			return out.Keys[i].Count > out.Keys[j].Count
		}
		return out.Keys[i].KeyID < out.Keys[j].KeyID
	})
	if len(out.Keys) > limit {
		out.Keys = out.Keys[:limit]
	}
	return out, nil
}

// summarise reads the per-key rollups of the given hours, one equality read
// per hour (or per day, when most of a day is missing), and caches every
// hour read consistently.
func (s *Store) summarise(ctx context.Context, hours []string) ([]hourCodes, error) {
	if len(hours) == 0 {
		return nil, nil
	}
	byDay := map[string][]string{}
	for _, h := range hours {
		byDay[h[:10]] = append(byDay[h[:10]], h)
	}
	var reads []bson.M
	for day, hs := range byDay {
		if len(hs) > 3 {
			reads = append(reads, bson.M{"d": day, "mo": Any, "tk": Any})
			continue
		}
		for _, h := range hs {
			reads = append(reads, bson.M{"h": h, "mo": Any, "tk": Any})
		}
	}
	want := map[string]bool{}
	for _, h := range hours {
		want[h] = true
	}
	var mu sync.Mutex
	sums := map[string]*hourCodes{}
	keyReqs, keyAtt := map[string]int64{}, map[string]int64{}
	err := parallel(len(reads), func(i int) error {
		docs, err := s.rollupDocs(ctx, reads[i])
		if err != nil {
			return err
		}
		locked(&mu, func() {
			for _, d := range docs {
				if !want[d.Hour] {
					continue
				}
				hc := sums[d.Hour]
				if hc == nil {
					hc = &hourCodes{ID: "att|" + d.Hour, Kind: "att", Hour: d.Hour, Day: d.Hour[:10],
						Codes: map[string][]keyCount{}, ACodes: map[string][]keyCount{}}
					sums[d.Hour] = hc
				}
				if d.Key == Any {
					hc.Requests = d.Requests
					hc.Attempts = sumCounts(d.Attempts)
					continue
				}
				keyReqs[d.Hour] += d.Requests
				keyAtt[d.Hour] += sumCounts(d.Attempts)
				if d.Key == dim("") {
					continue // requests that never got a key
				}
				for c, n := range d.Codes {
					if n > 0 {
						hc.Codes[c] = append(hc.Codes[c], keyCount{Key: d.Key, Count: n})
					}
				}
				for c, n := range d.Attempts {
					if n > 0 {
						hc.ACodes[c] = append(hc.ACodes[c], keyCount{Key: d.Key, Count: n})
					}
				}
			}
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]hourCodes, 0, len(sums))
	var models []mongo.WriteModel
	for h, hc := range sums {
		out = append(out, *hc)
		if keyReqs[h] == hc.Requests && keyAtt[h] == hc.Attempts { // a consistent read: safe to keep
			models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.M{"_id": hc.ID}).SetReplacement(hc).SetUpsert(true))
		}
	}
	if len(models) > 0 && !staleView(ctx) {
		// The answer is already complete: a failed cache write only costs
		// the next query a re-read.
		if _, err := s.cache().BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err == nil {
			cut := mongox.HourBucket(s.now().Add(-attentionCacheAge))
			_, _ = s.cache().DeleteMany(ctx, bson.M{"kind": "att", "h": bson.M{"$lt": cut}})
		}
	}
	return out, nil
}

func (s *Store) cache() *mongo.Collection { return s.db.Collection(CollQueryCache) }

// locked runs f holding mu: the parallel reads of one query fill shared maps.
func locked(mu *sync.Mutex, f func()) {
	mu.Lock()
	defer mu.Unlock()
	f()
}

// parallel runs f(0..n-1) at once and returns the first error.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
