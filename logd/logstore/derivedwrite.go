package logstore

// How a fold round's additions reach the derived rollups (derived.go): as
// $inc updates under the round guard, summed by document and field first.

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/shared/mongox"
)

// incDoc is what a fold round adds to one derived document.
type incDoc struct {
	inc      bson.D
	max      bson.D // $max fields (idempotent; under the same guard)
	onInsert bson.D
}

// fieldSums sums counters by document and field: what a fold round (or a
// backfill) adds to derived documents holding counters by field.
type fieldSums map[string]map[string]*Counters

func (f fieldSums) add(doc, field string, c Counters) {
	m := f[doc]
	if m == nil {
		m = map[string]*Counters{}
		f[doc] = m
	}
	if m[field] == nil {
		m[field] = &Counters{}
	}
	m[field].Add(c)
}

// incs are the sums as a round's $inc updates, with onInsert's fields (nil:
// none) set on a new document.
func (f fieldSums) incs(onInsert func(doc string) bson.D) map[string]*incDoc {
	out := make(map[string]*incDoc, len(f))
	for doc, fields := range f {
		d := &incDoc{}
		if onInsert != nil {
			d.onInsert = onInsert(doc)
		}
		for field, c := range fields {
			d.inc = append(d.inc, counterIncs(field+".", *c)...)
		}
		out[doc] = d
	}
	return out
}

// whole are the sums as whole documents of backfill round n, each with
// extra's fields (nil: none).
func (f fieldSums) whole(n int64, extra func(doc string) bson.D) map[string]any {
	out := make(map[string]any, len(f))
	for doc, fields := range f {
		d := bson.D{{Key: "_id", Value: doc}, {Key: "fr", Value: n}}
		if extra != nil {
			d = append(d, extra(doc)...)
		}
		for field, c := range fields {
			d = append(d, bson.E{Key: field, Value: *c})
		}
		out[doc] = d
	}
	return out
}

// retentionCut is the hour bucket before which derived rollups kept for age
// go as of now: age's cut, or the rollup retention's (rollupCut, "" for
// none) when that is later.
func retentionCut(now time.Time, age time.Duration, rollupCut string) string {
	return max(mongox.HourBucket(now.Add(-age)), rollupCut)
}

// incGuarded applies a round's $incs with the fr guard (see applyGuarded).
func (s *Store) incGuarded(ctx context.Context, coll *mongo.Collection, round int64, docs map[string]*incDoc) error {
	ws := make([]roundWrite, 0, len(docs))
	for id, d := range docs {
		if len(d.inc) == 0 {
			continue
		}
		update := bson.D{{Key: "$inc", Value: d.inc}, {Key: "$set", Value: bson.D{{Key: "fr", Value: round}}}}
		if len(d.max) > 0 {
			update = append(update, bson.E{Key: "$max", Value: d.max})
		}
		if len(d.onInsert) > 0 {
			update = append(update, bson.E{Key: "$setOnInsert", Value: d.onInsert})
		}
		ws = append(ws, roundWrite{id: id, update: update})
	}
	return s.applyGuarded(ctx, coll, round, ws)
}
