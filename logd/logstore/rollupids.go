package logstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Rollup reads by _id on the embedded store. FerretDB on SQLite answers a
// lone _id equality from its index and any other filter by decoding every
// document of the collection in Go, and rollups_hourly grows with every
// hour kept (ROLLUP_RETENTION_DAYS): at 100,000 requests a day a 24-hour
// series took 1.3–2.5 s, nearly all of it FerretDB decoding documents it
// then filtered out. A rollup's _id names its hour and level
// ("hour|key|model|token", minutes "2026-11-27T06:05"), so a read of one
// level over a bounded set of hours is a handful of _id lookups instead.
// Only there: on FerretDB/PostgreSQL an _id lookup is a table scan of its
// own (one read beats many), and MongoDB serves the filter from its indexes.

// maxRollupLookups bounds the lookups one read turns into: beyond it (a
// month of hours) a scan of a young store is cheaper than the lookups.
const maxRollupLookups = 100

// rollupIDs returns the _ids of every document of coll filter f can select,
// when f names them: a whole level (k, mo, tk equalities) over hours bounded
// by a day (d), an hour (h) or an h range within a day, or the minutes of
// an hour (rollups_minute by h). ok is false otherwise.
func rollupIDs(coll string, f bson.M) (ids []string, ok bool) {
	switch coll {
	case CollMinutes:
		h, isStr := f["h"].(string)
		if len(f) != 1 || !isStr || len(h) != 13 {
			return nil, false
		}
		for m := 0; m < 60; m++ {
			ids = append(ids, fmt.Sprintf("%s:%02d", h, m))
		}
		return ids, true
	case CollRollups:
	default:
		return nil, false
	}
	var lvl [3]string
	for i, k := range []string{"k", "mo", "tk"} {
		v, isStr := f[k].(string)
		if !isStr {
			return nil, false
		}
		lvl[i] = v
	}
	var lo, hi string // inclusive hour bounds
	for k, v := range f {
		switch k {
		case "k", "mo", "tk":
		case "d":
			d, isStr := v.(string)
			if !isStr || len(d) != 10 {
				return nil, false
			}
			lo, hi = maxStr(lo, d+"T00"), minStr(hi, d+"T23")
		case "h":
			switch h := v.(type) {
			case string:
				lo, hi = maxStr(lo, h), minStr(hi, h)
			case bson.M:
				for op, a := range h {
					s, isStr := a.(string)
					if !isStr {
						return nil, false
					}
					switch op {
					case "$gte":
						lo = maxStr(lo, s)
					case "$lte":
						hi = minStr(hi, s)
					default:
						return nil, false
					}
				}
			default:
				return nil, false
			}
		default:
			return nil, false
		}
	}
	from, err1 := time.Parse("2006-01-02T15", lo)
	to, err2 := time.Parse("2006-01-02T15", hi)
	if err1 != nil || err2 != nil || to.Sub(from) >= maxRollupLookups*time.Hour {
		return nil, false
	}
	for h := from; !h.After(to); h = h.Add(time.Hour) {
		ids = append(ids, h.Format("2006-01-02T15")+"|"+lvl[0]+"|"+lvl[1]+"|"+lvl[2])
	}
	return ids, true
}

func maxStr(a, b string) string {
	if a == "" || b > a {
		return b
	}
	return a
}

func minStr(a, b string) string {
	if a == "" || b < a {
		return b
	}
	return a
}

// rollupsByID reads the rollups of coll with these _ids, those that exist.
func (s *Store) rollupsByID(ctx context.Context, coll *mongo.Collection, ids []string) ([]Rollup, error) {
	raws, err := lookupEach(ctx, coll, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Rollup, len(raws))
	for i, raw := range raws {
		if err := bson.Unmarshal(raw, &out[i]); err != nil {
			return nil, fmt.Errorf("read %s: %w", coll.Name(), err)
		}
	}
	return out, nil
}

// lookupEach reads the documents of coll with these _ids, those that exist,
// one lookup each: FerretDB answers an $in by a scan.
func lookupEach(ctx context.Context, coll *mongo.Collection, ids []string) ([]bson.Raw, error) {
	var (
		mu  sync.Mutex
		out []bson.Raw
	)
	err := parallelLimit(len(ids), lookupConcurrency, func(i int) error {
		var raw bson.Raw
		err := coll.FindOne(ctx, bson.M{"_id": ids[i]}).Decode(&raw)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return nil
		case err != nil:
			return fmt.Errorf("read %s %s: %w", coll.Name(), ids[i], err)
		}
		mu.Lock()
		out = append(out, raw)
		mu.Unlock()
		return nil
	})
	return out, err
}
