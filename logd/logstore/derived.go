package logstore

// Derived rollups: documents the fold keeps beside the rollups so that the
// dashboard's attention keys and overview window edges are _id lookups in
// small collections. FerretDB on PostgreSQL scans a whole table for every
// read, so reading these from the rollups cost a scan of a day of per-key
// rollups (attention) or of an hour of second rollups (each overview edge
// minute) whenever a query cache was cold, which under live traffic is every
// poll; on SQLite only an _id equality is not a full decode:
//
//   - rollups_attention: one document per hour and status code holding every
//     key's count (_id "2026-11-27T06|a429": failed upstream attempts by
//     upstream status; "2026-11-27T06|c400": requests by the status the
//     client saw). Attention reads 24 of them;
//   - rollups_minute_seconds: one document per minute holding its seconds'
//     counters (_id "2026-11-27T06:05", field s07 = second 07). An overview
//     edge minute reads one.
//
// The fold applies a round to them with the same fr guard as to the
// rollups, and queries add the parts not yet folded (view.pending), so they
// are exact like the rollups. A store written before they existed is
// backfilled from the rollups once, by a fold round of its own (Backfill).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/shared/mongox"
)

const (
	// CollAttention holds every key's count per hour and status code (see
	// derived.go). Kept AttentionRollupAge.
	CollAttention = "rollups_attention"
	// CollMinuteSeconds holds the second rollups of each minute in one
	// document (see derived.go). Kept SecondRollupAge.
	CollMinuteSeconds = "rollups_minute_seconds"
)

// AttentionRollupAge is how long attention documents are kept: attention
// reads the last 24 whole hours, and on FerretDB/PostgreSQL even an _id
// lookup scans the table, so the table is kept to what is read.
const AttentionRollupAge = 26 * time.Hour

// derivedMarkerID is the CollAttention document that says the derived
// rollups are complete (backfilled, or never needed it). "~backfilled" said
// so before the month-day, token and key-model rollups: a store with only it is
// backfilled again, every derived document written whole.
const derivedMarkerID = "~backfilled-tokens-key-models"

// attentionID is the attention document of an hour and status code:
// attempts counts failed upstream attempts, otherwise requests.
func attentionID(hour string, attempts bool, code string) string {
	if attempts {
		return hour + "|a" + code
	}
	return hour + "|c" + code
}

// keyField escapes a key id for use as a field name ("." is a path
// separator, a leading "$" an operator).
var keyField = strings.NewReplacer("%", "%25", ".", "%2E", "$", "%24")

var fieldKey = strings.NewReplacer("%25", "%", "%2E", ".", "%24", "$")

// attentionDoc is one CollAttention document.
type attentionDoc struct {
	ID    string           `bson:"_id"`
	Hour  string           `bson:"h"`
	Round int64            `bson:"fr,omitempty"`
	N     map[string]int64 `bson:"n"` // escaped key id → count
}

// secondField is a second bucket's field in its minute document ("s07").
func secondField(second string) string { return "s" + second[17:19] }

// keyOfRollup returns the key of a key-level hourly rollup _id
// (hour|key|*|*), or false for any other level and for requests that never
// got a key.
func keyOfRollup(id string) (hour, key string, ok bool) {
	f := strings.SplitN(id, "|", 4)
	if len(f) != 4 || f[1] == Any || f[1] == dim("") || f[2] != Any || f[3] != Any {
		return "", "", false
	}
	return f[0], f[1], true
}

// foldDerived applies a fold round's hourly and second deltas to the
// derived rollups.
func (s *Store) foldDerived(ctx context.Context, round int64, hourly, secondly map[string]*delta) error {
	att := map[string]*incDoc{}
	add := func(id, hour, key string, n int64) {
		d := att[id]
		if d == nil {
			d = &incDoc{onInsert: bson.D{{Key: "h", Value: hour}}}
			att[id] = d
		}
		d.inc = append(d.inc, bson.E{Key: "n." + keyField.Replace(key), Value: n})
	}
	for id, d := range hourly {
		hour, key, ok := keyOfRollup(id)
		if !ok {
			continue
		}
		for code, n := range d.codes {
			add(attentionID(hour, false, code), hour, key, n)
		}
		for code, n := range d.acodes {
			add(attentionID(hour, true, code), hour, key, n)
		}
	}
	if err := s.incGuarded(ctx, s.db.Collection(CollAttention), round, att); err != nil {
		return fmt.Errorf("attention rollups: %w", err)
	}
	mins := map[string]*incDoc{}
	for id, d := range secondly {
		if len(id) < 19 {
			return fmt.Errorf("second rollup entry %q is not a second", id)
		}
		m := mins[id[:16]]
		if m == nil {
			m = &incDoc{}
			mins[id[:16]] = m
		}
		m.inc = append(m.inc, counterIncs(secondField(id)+".", d.c)...)
	}
	if err := s.incGuarded(ctx, s.db.Collection(CollMinuteSeconds), round, mins); err != nil {
		return fmt.Errorf("minute second rollups: %w", err)
	}
	if err := s.incGuarded(ctx, s.db.Collection(CollMonthDays), round, monthDayIncs(hourly)); err != nil {
		return fmt.Errorf("month-day rollups: %w", err)
	}
	hours, days := tokenIncs(hourly)
	if err := s.incGuarded(ctx, s.db.Collection(CollTokenHours), round, hours); err != nil {
		return fmt.Errorf("token hour rollups: %w", err)
	}
	if err := s.incGuarded(ctx, s.db.Collection(CollTokenDays), round, days); err != nil {
		return fmt.Errorf("token day rollups: %w", err)
	}
	if err := s.incGuarded(ctx, s.db.Collection(CollKeyModels), round, keyModelIncs(hourly)); err != nil {
		return fmt.Errorf("key-model rollups: %w", err)
	}
	return nil
}

// minuteSeconds returns the second rollups of one minute (second bucket →
// counters), with the view's parts added.
func (s *Store) minuteSeconds(ctx context.Context, minute string) (map[string]Counters, error) {
	v, err := s.viewOf(ctx)
	if err != nil {
		return nil, err
	}
	var raw bson.Raw
	err = s.db.Collection(CollMinuteSeconds).FindOne(ctx, bson.M{"_id": minute}).Decode(&raw)
	read := err == nil
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("find second rollups of %s: %w", minute, err)
	}
	out := map[string]Counters{}
	var round int64
	if read {
		elems, err := raw.Elements()
		if err != nil {
			return nil, fmt.Errorf("read second rollups of %s: %w", minute, err)
		}
		for _, e := range elems {
			k := e.Key()
			switch {
			case k == "fr":
				round, _ = e.Value().AsInt64OK()
			case len(k) == 3 && k[0] == 's':
				var c Counters
				if err := e.Value().Unmarshal(&c); err != nil {
					return nil, fmt.Errorf("read second rollups of %s: %w", minute, err)
				}
				out[minute+":"+k[1:]] = c
			}
		}
	}
	v.overtaken(round)
	v.pending(CollSeconds, func(id string) (int64, bool, bool) {
		return round, read, len(id) >= 16 && id[:16] == minute
	}, func(id string, e *entry) {
		c := out[id]
		c.Add(e.Counters)
		out[id] = c
	})
	return out, nil
}

// viewOf is ctx's view, or a fresh one.
func (s *Store) viewOf(ctx context.Context) (*view, error) {
	if v, _ := ctx.Value(viewKey{}).(*view); v != nil {
		return v, nil
	}
	return s.loadView(ctx)
}

// derivedReady reports whether the derived rollups are complete. With no
// rollups at all there is nothing to backfill: the marker is written at once.
func (s *Store) derivedReady(ctx context.Context) (bool, error) {
	if s.derivedOK.Load() {
		return true, nil
	}
	att := s.db.Collection(CollAttention)
	err := att.FindOne(ctx, bson.M{"_id": derivedMarkerID}).Err()
	switch {
	case err == nil:
		s.derivedOK.Store(true)
		return true, nil
	case !errors.Is(err, mongo.ErrNoDocuments):
		return false, fmt.Errorf("read derived rollups marker: %w", err)
	}
	err = s.rollups.FindOne(ctx, bson.M{}, options.FindOne().SetProjection(bson.M{"_id": 1})).Err()
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, mongo.ErrNoDocuments):
		return false, fmt.Errorf("look for rollups: %w", err)
	}
	if err := s.markDerived(ctx); err != nil {
		return false, err
	}
	return true, nil
}

func (s *Store) markDerived(ctx context.Context) error {
	_, err := s.db.Collection(CollAttention).UpdateOne(ctx, bson.M{"_id": derivedMarkerID},
		bson.M{"$set": bson.M{"at": s.now().UTC()}}, options.UpdateOne().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("mark derived rollups complete: %w", err)
	}
	s.derivedOK.Store(true)
	return nil
}

// Backfill completes the derived rollups of a store written before they
// existed, from the rollups, and returns once they are complete (at once
// when they are). The work is a fold round of its own (see Fold), so folds
// anywhere wait for it and nothing is counted twice. Call it at start;
// until it has run, a Fold runs it.
func (s *Store) Backfill(ctx context.Context) error {
	for {
		ok, err := s.derivedReady(ctx)
		if err != nil || ok {
			return err
		}
		if _, err := s.Fold(ctx); err != nil {
			return err
		}
		if ok, err := s.derivedReady(ctx); err != nil || ok {
			return err
		}
		// Another fold holds the round: wait for it.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// backfillDerived writes the derived rollups from the rollups, in backfill
// round n: no other round runs meanwhile, so the rollups hold exactly the
// rounds before it. Every document is written whole with the round's guard,
// so finishing the round again writes the same (a finisher that is late
// changes nothing once a later round reached a document).
func (s *Store) backfillDerived(ctx context.Context, n int64) error {
	now := s.now().UTC()
	from := now.Add(-24 * time.Hour).Truncate(time.Hour)
	att := map[string]*attentionDoc{}
	var days []string
	for d := from.Truncate(24 * time.Hour); !d.After(now); d = d.Add(24 * time.Hour) {
		days = append(days, mongox.DayBucket(d))
	}
	var mu sync.Mutex
	err := parallelLimit(len(days), backfillConcurrency, func(i int) error {
		cur, err := s.rollups.Find(ctx, bson.M{"d": days[i], "mo": Any, "tk": Any},
			options.Find().SetProjection(bson.M{"_id": 1, "codes": 1, "acodes": 1}).SetBatchSize(backfillBatch))
		if err != nil {
			return fmt.Errorf("backfill attention rollups: %w", err)
		}
		var docs []Rollup
		if err := cur.All(ctx, &docs); err != nil {
			return fmt.Errorf("backfill attention rollups: %w", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range docs {
			hour, key, ok := keyOfRollup(r.ID)
			if !ok || hour < mongox.HourBucket(from) {
				continue
			}
			for _, c := range []struct {
				attempts bool
				codes    map[string]int64
			}{{false, r.Codes}, {true, r.Attempts}} {
				for code, v := range c.codes {
					if v == 0 {
						continue
					}
					id := attentionID(hour, c.attempts, code)
					a := att[id]
					if a == nil {
						a = &attentionDoc{ID: id, Hour: hour, Round: n, N: map[string]int64{}}
						att[id] = a
					}
					a.N[keyField.Replace(key)] += v
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	docs := make(map[string]any, len(att))
	for id, a := range att {
		docs[id] = a
	}
	if err := backfillWrite(ctx, s.db.Collection(CollAttention), n, docs); err != nil {
		return fmt.Errorf("backfill attention rollups: %w", err)
	}
	if err := s.foldStep("backfill-attention"); err != nil {
		return err
	}

	// Second rollups: the hourly collections of the last SecondRollupAge and
	// the single collection of older versions.
	names, err := s.db.ListCollectionNames(ctx, bson.M{})
	if err != nil {
		return fmt.Errorf("backfill minute second rollups: %w", err)
	}
	oldest := SecondsColl(SecondBucket(now.Add(-SecondRollupAge)))
	var colls []string
	for _, name := range names {
		if hourly := strings.HasPrefix(name, CollSecondsPrefix) && len(name) == len(oldest) && name >= oldest; hourly || name == CollSeconds {
			colls = append(colls, name)
		}
	}
	mins := map[string]bson.D{}
	secs := map[string]*Counters{}
	err = parallelLimit(len(colls), backfillConcurrency, func(i int) error {
		// One batch: FerretDB answers each getMore slowly, and an hour's
		// collection is 3,600 small documents at most.
		cur, err := s.db.Collection(colls[i]).Find(ctx, bson.M{}, options.Find().SetBatchSize(backfillBatch))
		if err != nil {
			return fmt.Errorf("backfill minute second rollups from %s: %w", colls[i], err)
		}
		var docs []Rollup
		if err := cur.All(ctx, &docs); err != nil {
			return fmt.Errorf("backfill minute second rollups from %s: %w", colls[i], err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range docs {
			if len(r.ID) != 19 {
				continue
			}
			c := secs[r.ID]
			if c == nil {
				c = &Counters{}
				secs[r.ID] = c
			}
			c.Add(r.Counters) // a second may be in both places, each with its rounds
		}
		return nil
	})
	if err != nil {
		return err
	}
	for id, c := range secs {
		m := id[:16]
		if mins[m] == nil {
			mins[m] = bson.D{{Key: "_id", Value: m}, {Key: "fr", Value: n}}
		}
		mins[m] = append(mins[m], bson.E{Key: secondField(id), Value: *c})
	}
	docs = make(map[string]any, len(mins))
	for m, doc := range mins {
		docs[m] = doc
	}
	if err := backfillWrite(ctx, s.db.Collection(CollMinuteSeconds), n, docs); err != nil {
		return fmt.Errorf("backfill minute second rollups: %w", err)
	}
	if err := s.foldStep("backfill-seconds"); err != nil {
		return err
	}
	if err := s.backfillMonthDays(ctx, n); err != nil {
		return err
	}
	if err := s.backfillTokens(ctx, n); err != nil {
		return err
	}
	if err := s.backfillKeyModels(ctx, n); err != nil {
		return err
	}
	return s.markDerived(ctx)
}

// backfillBatch is the cursor batch size of the backfill's reads.
const backfillBatch = 10000

// backfillConcurrency bounds the reads and write commands a backfill sends at once.
const backfillConcurrency = 4

// backfillWrite writes whole documents (by _id) for backfill round n: an
// unordered insert, which is all a first run does (FerretDB on SQLite
// decodes the whole collection for an update filtered by more than _id),
// then a guarded replace of those that exist (a round finished again, or
// documents a fold round wrote before the backfill), a few at once.
func backfillWrite(ctx context.Context, coll *mongo.Collection, n int64, docs map[string]any) error {
	ids := make([]string, 0, len(docs))
	all := make([]any, 0, len(docs))
	for id, d := range docs {
		ids = append(ids, id)
		all = append(all, d)
	}
	if len(all) == 0 {
		return nil
	}
	_, dups, err := insertUnordered(ctx, coll, all)
	if err != nil {
		return err
	}
	var chunks [][]mongo.WriteModel
	var models []mongo.WriteModel
	for _, i := range dups {
		models = append(models, mongo.NewReplaceOneModel().SetFilter(roundGuard(ids[i], n)).SetReplacement(all[i]).SetUpsert(true))
		if len(models) == maxUpdatesPerCommand {
			chunks, models = append(chunks, models), nil
		}
	}
	if len(models) > 0 {
		chunks = append(chunks, models)
	}
	return parallelLimit(len(chunks), backfillConcurrency, func(i int) error {
		return writeGuarded(ctx, coll, chunks[i])
	})
}

// retainDerived deletes derived rollups older than their ages (attention
// documents also past ROLLUP_RETENTION_DAYS, when that is shorter).
func (s *Store) retainDerived(ctx context.Context, now time.Time, rollupCut string) (int64, error) {
	cut := retentionCut(now, AttentionRollupAge, rollupCut)
	res, err := s.db.Collection(CollAttention).DeleteMany(ctx, bson.M{"h": bson.M{"$lt": cut}})
	if err != nil {
		return 0, fmt.Errorf("delete attention rollups before %s: %w", cut, err)
	}
	n := res.DeletedCount
	mcut := MinuteBucket(now.Add(-SecondRollupAge))
	res, err = s.db.Collection(CollMinuteSeconds).DeleteMany(ctx, bson.M{"_id": bson.M{"$lt": mcut}})
	if err != nil {
		return n, fmt.Errorf("delete minute second rollups before %s: %w", mcut, err)
	}
	n += res.DeletedCount
	if rollupCut != "" {
		// Months that ended before the rollup retention's cut.
		res, err = s.db.Collection(CollMonthDays).DeleteMany(ctx, bson.M{"_id": bson.M{"$lt": rollupCut[:7]}})
		if err != nil {
			return n, fmt.Errorf("delete month-day rollups before %s: %w", rollupCut[:7], err)
		}
		n += res.DeletedCount
	}
	tn, err := s.retainTokens(ctx, now, rollupCut)
	if err != nil {
		return n + tn, err
	}
	kn, err := s.retainKeyModels(ctx, now, rollupCut)
	return n + tn + kn, err
}
