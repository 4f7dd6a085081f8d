package logstore

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
)

// Second rollups are kept in one collection per hour of their time
// (rollups_second_<yyyymmddhh>): FerretDB on PostgreSQL answers every
// filtered read with a scan of the whole table, and a day of second rollups
// is ~86,000 documents, so reading the seconds of one minute (the overview's
// window edges) scanned them all. Reading the minute's hour costs 1/25 of
// that. The fold writes each second into its hour's collection; retention
// drops whole hours. Queries see them under CollSeconds (the view's parts
// and filters do not change), and add what the single collection of older
// versions still holds until retention has emptied it.

// CollSecondsPrefix names the hourly second-rollup collections:
// rollups_second_2026112706 (UTC).
const CollSecondsPrefix = "rollups_second_"

const secondsCollLayout = "2006010215"

// SecondsColl is the collection of a second or minute bucket's hour
// ("2026-11-27T06:05:07" → rollups_second_2026112706).
func SecondsColl(bucket string) string {
	if len(bucket) < 13 {
		return CollSecondsPrefix + "invalid"
	}
	return CollSecondsPrefix + strings.NewReplacer("-", "", "T", "").Replace(bucket[:13])
}

// foldSeconds applies a fold round's second deltas, each to its hour's collection.
func (s *Store) foldSeconds(ctx context.Context, round int64, secondly map[string]*delta) error {
	byColl := map[string]map[string]*delta{}
	for id, d := range secondly {
		c := SecondsColl(id)
		if byColl[c] == nil {
			byColl[c] = map[string]*delta{}
		}
		byColl[c][id] = d
	}
	for c, deltas := range byColl {
		if err := bulkIncByID(ctx, s.db.Collection(c), round, deltas, func(id string) bson.D {
			return bson.D{{Key: "m", Value: id[:16]}}
		}); err != nil {
			return err
		}
	}
	return nil
}

// secondDocs reads the second rollups of one minute, with the view's parts
// added (see rollupDocsIn).
func (s *Store) secondDocs(ctx context.Context, minute string) ([]Rollup, error) {
	v, _ := ctx.Value(viewKey{}).(*view)
	if v == nil {
		var err error
		if v, err = s.loadView(ctx); err != nil {
			return nil, err
		}
	}
	f := bson.M{"m": minute}
	read := func(coll *mongo.Collection) ([]Rollup, error) {
		cur, err := coll.Find(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("find second rollups of %s: %w", minute, err)
		}
		var out []Rollup
		if err := cur.All(ctx, &out); err != nil {
			return nil, fmt.Errorf("read second rollups of %s: %w", minute, err)
		}
		return out, nil
	}
	docs, err := read(s.db.Collection(SecondsColl(minute)))
	if err != nil {
		return nil, err
	}
	legacy, err := s.legacySeconds.has(ctx, s.seconds)
	if err != nil {
		return nil, err
	}
	if legacy {
		old, err := read(s.seconds)
		if err != nil {
			return nil, err
		}
		// A second folded before and after the upgrade has a document in
		// both places, each counting its own rounds.
		byID := make(map[string]int, len(docs))
		for i, d := range docs {
			byID[d.ID] = i
		}
		for _, o := range old {
			i, ok := byID[o.ID]
			if !ok {
				docs = append(docs, o)
				continue
			}
			docs[i].Counters.Add(o.Counters)
			docs[i].Round = max(docs[i].Round, o.Round)
		}
	}
	return v.merge(CollSeconds, f, docs)
}

// dropSecondsBefore drops the hourly second rollups of the hours before cut's.
func (s *Store) dropSecondsBefore(ctx context.Context, cut time.Time) error {
	names, err := s.db.ListCollectionNames(ctx, bson.M{})
	if err != nil {
		return fmt.Errorf("list second rollups: %w", err)
	}
	limit := SecondsColl(SecondBucket(cut))
	for _, n := range names {
		if strings.HasPrefix(n, CollSecondsPrefix) && len(n) == len(limit) && n < limit {
			if err := s.db.Collection(n).Drop(ctx); err != nil {
				return fmt.Errorf("drop second rollups %s: %w", n, err)
			}
		}
	}
	return nil
}

// legacyCheck remembers for a while whether a collection has any document
// (one read with no filter, which FerretDB limits to one row).
type legacyCheck struct {
	mu    sync.Mutex
	until time.Time
	any   bool
}

// legacyCheckEvery is how long an answer is kept.
const legacyCheckEvery = 10 * time.Minute

func (l *legacyCheck) has(ctx context.Context, coll *mongo.Collection) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Now().Before(l.until) {
		return l.any, nil
	}
	err := coll.FindOne(ctx, bson.M{}, options.FindOne().SetProjection(bson.M{"_id": 1})).Err()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		l.any = false
	case err != nil:
		return false, fmt.Errorf("look for second rollups in %s: %w", coll.Name(), err)
	default:
		l.any = true
	}
	l.until = time.Now().Add(legacyCheckEvery)
	return l.any, nil
}
