package logstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/mongox"
)

// Attention answers gb.logd.stats.attention: the keys with the most
// responses of one status code in the 24 hours up to now (whole hours). For
// an error status (≥ 400) it counts failed upstream attempts of each key
// (error events), as gemini-balance's per-attempt logs do; for any other
// status, the requests that ended with it.
//
// It reads the 24 hours' attention documents of the code by _id (the fold
// keeps them, derived.go) and adds the parts not yet folded: on FerretDB
// any other read scans its whole collection, and the per-key rollups of a
// busy day are thousands of documents.
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
	v, err := s.viewOf(ctx)
	if err != nil {
		return logapi.Attention{}, err
	}
	now := q.Now
	if now.IsZero() {
		now = s.now()
	}
	now = now.UTC()
	from := now.Add(-23 * time.Hour).Truncate(time.Hour)
	codeKey := strconv.Itoa(code)
	attempts := code >= 400

	hours := make([]string, 24)
	for i := range hours {
		hours[i] = mongox.HourBucket(from.Add(time.Duration(i) * time.Hour))
	}
	docs := make([]attentionDoc, len(hours))
	found := make([]bool, len(hours))
	coll := s.db.Collection(CollAttention)
	err = parallelLimit(len(hours), lookupConcurrency, func(i int) error {
		err := coll.FindOne(ctx, bson.M{"_id": attentionID(hours[i], attempts, codeKey)}).Decode(&docs[i])
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return nil
		case err != nil:
			return fmt.Errorf("find attention rollup of %s: %w", hours[i], err)
		}
		found[i] = true
		v.overtaken(docs[i].Round)
		return nil
	})
	if err != nil {
		return logapi.Attention{}, err
	}
	counts := map[string]int64{}
	byHour := make(map[string]int, len(hours))
	for i, h := range hours {
		byHour[h] = i
		for k, n := range docs[i].N {
			counts[fieldKey.Replace(k)] += n
		}
	}
	keyOf := map[string]string{}
	v.pending(CollRollups, func(id string) (int64, bool, bool) {
		hour, key, ok := keyOfRollup(id)
		if !ok {
			return 0, false, false
		}
		i, ok := byHour[hour]
		if !ok {
			return 0, false, false
		}
		keyOf[id] = key
		return docs[i].Round, found[i], true
	}, func(id string, e *entry) {
		if attempts {
			counts[keyOf[id]] += e.Attempts[codeKey]
		} else {
			counts[keyOf[id]] += e.Codes[codeKey]
		}
	})

	out := logapi.Attention{Code: code, Keys: []logapi.AttentionKey{}}
	for k, n := range counts {
		if n > 0 {
			out.Keys = append(out.Keys, logapi.AttentionKey{KeyID: k, Count: n})
		}
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
