package logstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/shared/mongox"
)

// Key-model rollups (rollups_key_models): one document per hour and key
// holding that key's counters per model (_id "2026-11-27T06|<key>", field
// "m_<model>"), a derived rollup like the token ones (tokenrollups.go). The
// key view asks one key's use by model over 24 hours; from the hourly
// rollups that is a read of the key's full-level documents (every model and
// token), which FerretDB/SQLite answers by decoding every hourly rollup
// kept (3–13 s at 100,000 requests a day). Now it is 24 documents by _id.
// Kept KeyModelRollupAge; a longer window reads the hourly rollups as
// before.

// CollKeyModels holds the key-model rollups.
const CollKeyModels = "rollups_key_models"

// KeyModelRollupAge is how long key-model rollups are kept: the key view's
// default window is the last 24 hours.
const KeyModelRollupAge = 26 * time.Hour

// keyModelHours is the longest window key usage reads from them.
const keyModelHours = 24

// keyModelOf returns the key-model document and model of a full-level
// hourly rollup _id (hour|key|model|token, none of them "*").
func keyModelOf(id string) (doc, hour, model string, ok bool) {
	f := strings.SplitN(id, "|", 4)
	if len(f) != 4 || len(f[0]) != 13 || f[1] == Any || f[2] == Any || f[3] == Any {
		return "", "", "", false
	}
	return f[0] + "|" + f[1], f[0], f[2], true
}

// keyModelFields are a key-model document's own fields: its hour and key,
// which FerretDB/PostgreSQL reads it by (see keyModels).
func keyModelFields(doc string) bson.D {
	return bson.D{{Key: "h", Value: doc[:13]}, {Key: "k", Value: doc[14:]}}
}

// keyModelIncs are what a fold round adds to the key-model rollups.
func keyModelIncs(hourly map[string]*delta) map[string]*incDoc {
	sums := fieldSums{}
	for id, d := range hourly {
		if doc, _, model, ok := keyModelOf(id); ok {
			sums.add(doc, "m_"+keyField.Replace(model), d.c)
		}
	}
	return sums.incs(keyModelFields)
}

// keyModels returns one key's counters by model over the hours given, from
// the key-model rollups with the view's parts added.
func (s *Store) keyModels(ctx context.Context, key string, hours []string) (map[string]Counters, error) {
	v, err := s.viewOf(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(hours))
	want := make(map[string]bool, len(hours))
	for i, h := range hours {
		ids[i] = h + "|" + dim(key)
		want[ids[i]] = true
	}
	// By _id on FerretDB/SQLite; elsewhere by the key, an equality
	// FerretDB/PostgreSQL evaluates in the database (an $in on _id it
	// evaluates in Go over every document) and MongoDB from an index.
	var raws []bson.Raw
	byID, err := s.guardByLookup(ctx)
	if err != nil {
		return nil, err
	}
	if byID {
		raws, err = s.docsByID(ctx, s.db.Collection(CollKeyModels), ids)
	} else {
		var cur *mongo.Cursor
		if cur, err = s.db.Collection(CollKeyModels).Find(ctx, bson.M{"k": dim(key)}); err == nil {
			err = cur.All(ctx, &raws)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read key-model rollups: %w", err)
	}
	out := map[string]Counters{}
	rounds := map[string]int64{}
	for _, raw := range raws {
		id, _ := raw.Lookup("_id").StringValueOK()
		if !want[id] {
			continue
		}
		elems, err := raw.Elements()
		if err != nil {
			return nil, fmt.Errorf("read key-model rollups %s: %w", id, err)
		}
		for _, e := range elems {
			k := e.Key()
			switch {
			case k == "fr":
				rounds[id], _ = e.Value().AsInt64OK()
			case strings.HasPrefix(k, "m_"):
				var c Counters
				if err := e.Value().Unmarshal(&c); err != nil {
					return nil, fmt.Errorf("read key-model rollups %s: %w", id, err)
				}
				m := fieldKey.Replace(k[2:])
				sum := out[m]
				sum.Add(c)
				out[m] = sum
			}
		}
		v.overtaken(rounds[id])
	}
	v.pending(CollRollups, func(id string) (int64, bool, bool) {
		doc, _, _, ok := keyModelOf(id)
		if !ok || !want[doc] {
			return 0, false, false
		}
		round, read := rounds[doc]
		return round, read, true
	}, func(id string, e *entry) {
		_, _, model, _ := keyModelOf(id)
		c := out[model]
		c.Add(e.Counters)
		out[model] = c
	})
	return out, nil
}

// backfillKeyModels writes the key-model rollups of the last
// KeyModelRollupAge whole from the full-level hourly rollups, in backfill
// round n.
func (s *Store) backfillKeyModels(ctx context.Context, n int64) error {
	now := s.now().UTC()
	cut := mongox.HourBucket(now.Add(-KeyModelRollupAge))
	sums := fieldSums{}
	for d := now.Add(-KeyModelRollupAge).Truncate(24 * time.Hour); !d.After(now); d = d.Add(24 * time.Hour) {
		cur, err := s.rollups.Find(ctx, bson.M{"d": mongox.DayBucket(d)}, options.Find().SetBatchSize(backfillBatch))
		if err != nil {
			return fmt.Errorf("backfill key-model rollups: %w", err)
		}
		var docs []Rollup
		if err := cur.All(ctx, &docs); err != nil {
			return fmt.Errorf("backfill key-model rollups: %w", err)
		}
		for _, r := range docs {
			if doc, hour, model, ok := keyModelOf(r.ID); ok && hour >= cut {
				sums.add(doc, "m_"+keyField.Replace(model), r.Counters)
			}
		}
	}
	docs := sums.whole(n, keyModelFields)
	if err := backfillWrite(ctx, s.db.Collection(CollKeyModels), n, docs); err != nil {
		return fmt.Errorf("backfill key-model rollups: %w", err)
	}
	return nil
}

// retainKeyModels deletes key-model rollups older than KeyModelRollupAge
// (or the rollup cut, when later).
func (s *Store) retainKeyModels(ctx context.Context, now time.Time, rollupCut string) (int64, error) {
	cut := retentionCut(now, KeyModelRollupAge, rollupCut)
	res, err := s.db.Collection(CollKeyModels).DeleteMany(ctx, bson.M{"_id": bson.M{"$lt": cut}})
	if err != nil {
		return 0, fmt.Errorf("delete key-model rollups before %s: %w", cut, err)
	}
	return res.DeletedCount, nil
}
