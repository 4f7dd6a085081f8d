package logstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/shared/mongox"
)

// The error-log time index. FerretDB on PostgreSQL sorts in Go over every
// row, so "the newest 50 of 150,000 error logs" took seconds; an _id lookup
// is fast on every backend. So each minute with error logs has a document
// (error_minutes, _id = minute) listing "<time>|<id>" of its rows, and each
// hour a count (error_hours, _id = hour, n). The newest page reads the hour
// counts, then the minute documents of the newest hours by _id, sorts their
// entries in Go and reads the page's rows by _id.

// evTimeLayout is fixed-width at the millisecond stored times have, so the
// entries sort as (time, id), like the sorted query.
const evTimeLayout = "2006-01-02T15:04:05.000"

func evKey(t time.Time, id string) string { return t.UTC().Format(evTimeLayout) + "|" + id }

func evSplit(k string) (time.Time, string) {
	ts, id, _ := strings.Cut(k, "|")
	t, _ := time.Parse(evTimeLayout, ts)
	return t, id
}

type errMinuteDoc struct {
	ID string   `bson:"_id"`
	Ev []string `bson:"ev"`
}

type errHourDoc struct {
	ID string `bson:"_id"`
	N  int64  `bson:"n"`
}

// indexErrors adds a batch's error logs to the index. Entries are added to a
// set, so every row of the batch is listed again (a retry repairs an entry
// lost with a failed attempt); the hour counts grow only by the rows this
// batch inserted (not the duplicates at dupIdx). A batch that inserted rows
// and failed before counting them leaves its hour undercounted.
func (s *Store) indexErrors(ctx context.Context, errs []ErrorLog, dupIdx []int) error {
	dup := make(map[int]bool, len(dupIdx))
	for _, i := range dupIdx {
		dup[i] = true
	}
	ev := map[string][]string{}
	fresh := map[string]int64{}
	for i, e := range errs {
		m := MinuteBucket(e.Time)
		ev[m] = append(ev[m], evKey(e.Time, e.ID))
		if !dup[i] {
			fresh[mongox.HourBucket(e.Time)]++
		}
	}
	var hours []mongo.WriteModel
	for h, n := range fresh {
		hours = append(hours, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: h}}).SetUpsert(true).
			SetUpdate(bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: n}}}}))
	}
	if err := addEv(ctx, s.errMinutes, ev); err != nil {
		return fmt.Errorf("index error logs by minute: %w", err)
	}
	if err := bulkChunks(ctx, s.errHours, hours); err != nil {
		return fmt.Errorf("count error logs by hour: %w", err)
	}
	return nil
}

// unindexErrors removes deleted error logs (id and time known) from the index.
func (s *Store) unindexErrors(ctx context.Context, rows []ErrorLog) error {
	ev := map[string][]string{}
	gone := map[string]int64{}
	for _, e := range rows {
		m := MinuteBucket(e.Time)
		ev[m] = append(ev[m], evKey(e.Time, e.ID))
		gone[mongox.HourBucket(e.Time)]++
	}
	var hours []mongo.WriteModel
	for h, n := range gone {
		hours = append(hours, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: h}}).
			SetUpdate(bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: -n}}}}))
	}
	if err := pullEv(ctx, s.errMinutes, ev); err != nil {
		return fmt.Errorf("unindex error logs by minute: %w", err)
	}
	if err := bulkChunks(ctx, s.errHours, hours); err != nil {
		return fmt.Errorf("uncount error logs by hour: %w", err)
	}
	return nil
}

// unindexErrorsBefore drops the index of every error log older than cut: the
// whole minutes and hours before it, the older entries of cut's minute, and
// cut's hour counted again from its minutes.
func (s *Store) unindexErrorsBefore(ctx context.Context, cut time.Time) error {
	cut = cut.UTC()
	if err := dropEvBefore(ctx, s.errMinutes, cut); err != nil {
		return fmt.Errorf("unindex error logs: %w", err)
	}
	if _, err := s.errHours.DeleteMany(ctx, bson.M{"_id": bson.M{"$lt": mongox.HourBucket(cut)}}); err != nil {
		return fmt.Errorf("drop error index hours: %w", err)
	}
	docs, err := s.errMinuteDocs(ctx, cut.Truncate(time.Hour))
	if err != nil {
		return err
	}
	var n int64
	for _, d := range docs {
		if d != nil {
			n += int64(len(d.Ev))
		}
	}
	if _, err := s.errHours.UpdateOne(ctx, bson.M{"_id": mongox.HourBucket(cut)}, bson.M{"$set": bson.M{"n": n}}); err != nil {
		return fmt.Errorf("recount error logs of %s: %w", mongox.HourBucket(cut), err)
	}
	return nil
}

// clearErrorIndex empties the index (every error log deleted).
func (s *Store) clearErrorIndex(ctx context.Context) error {
	for _, c := range []*mongo.Collection{s.errMinutes, s.errHours} {
		if _, err := c.DeleteMany(ctx, bson.M{}); err != nil {
			return fmt.Errorf("clear %s: %w", c.Name(), err)
		}
	}
	return nil
}

// errMinuteDocs reads the minute documents of an hour, one equality on h
// (a scan of this small collection, not of the error logs).
func (s *Store) errMinuteDocs(ctx context.Context, hour time.Time) ([]*errMinuteDoc, error) {
	cur, err := s.errMinutes.Find(ctx, bson.M{"h": mongox.HourBucket(hour)})
	if err != nil {
		return nil, fmt.Errorf("find error index of %s: %w", mongox.HourBucket(hour), err)
	}
	var out []*errMinuteDoc
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("read error index of %s: %w", mongox.HourBucket(hour), err)
	}
	return out, nil
}

// errorsNewestFirst is the unfiltered error-log page, newest first, and the
// total, read through the index: the hour counts say which hours have rows,
// their minute documents which minutes, and each minute's rows are read with
// one equality on m (FerretDB/PostgreSQL pushes it down; an _id lookup is a
// table scan there too, so rows are not read one by one). ok is false when
// the index and the rows disagree (rows stored before m existed, or deleted
// behind the index's back): the caller falls back to the sorted query.
func (s *Store) errorsNewestFirst(ctx context.Context, offset, limit int) (rows []ErrorLog, total int64, ok bool, err error) {
	cur, err := s.errHours.Find(ctx, bson.M{})
	if err != nil {
		return nil, 0, false, fmt.Errorf("find error hours: %w", err)
	}
	var hours []errHourDoc
	if err := cur.All(ctx, &hours); err != nil {
		return nil, 0, false, fmt.Errorf("read error hours: %w", err)
	}
	if len(hours) == 0 {
		return nil, 0, false, nil // no error logs, or none indexed yet: the sorted query is as fast
	}
	slices.SortFunc(hours, func(a, b errHourDoc) int { return cmp.Compare(b.ID, a.ID) })
	for _, h := range hours {
		total += max(h.N, 0)
	}
	need := offset + limit
	for _, h := range hours {
		if len(rows) >= need {
			break
		}
		t, err := time.Parse("2006-01-02T15", h.ID)
		if h.N <= 0 || err != nil {
			continue
		}
		docs, err := s.errMinuteDocs(ctx, t)
		if err != nil {
			return nil, 0, false, err
		}
		slices.SortFunc(docs, func(a, b *errMinuteDoc) int { return cmp.Compare(b.ID, a.ID) })
		for _, d := range docs {
			if len(rows) >= need {
				break
			}
			if len(d.Ev) == 0 {
				continue
			}
			cur, err := s.errors.Find(ctx, bson.M{"m": d.ID}, options.Find().SetProjection(bson.M{"message": 0, "request_body": 0}))
			if err != nil {
				return nil, 0, false, fmt.Errorf("find error logs of minute %s: %w", d.ID, err)
			}
			var got []ErrorLog
			if err := cur.All(ctx, &got); err != nil {
				return nil, 0, false, fmt.Errorf("read error logs of minute %s: %w", d.ID, err)
			}
			if len(got) != len(d.Ev) {
				return nil, 0, false, nil
			}
			slices.SortFunc(got, func(a, b ErrorLog) int {
				return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.ID, a.ID))
			})
			rows = append(rows, got...)
		}
	}
	return rows[min(offset, len(rows)):min(need, len(rows))], total, true, nil
}

// byIDs reads documents one _id lookup each (FerretDB answers $in by
// scanning the collection), a few at a time; out[i] is nil where ids[i] is
// missing.
func byIDs[T any](ctx context.Context, coll *mongo.Collection, ids []string, proj bson.M) ([]*T, error) {
	out := make([]*T, len(ids))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int)
	)
	opts := options.FindOne()
	if proj != nil {
		opts.SetProjection(proj)
	}
	for w := 0; w < min(lookupConcurrency, len(ids)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var v T
				err := coll.FindOne(ctx, bson.M{"_id": ids[i]}, opts).Decode(&v)
				switch {
				case err == nil:
					out[i] = &v
				case errors.Is(err, mongo.ErrNoDocuments):
				default:
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("find %s %s: %w", coll.Name(), ids[i], err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, firstErr
}

// bulkChunks runs unordered updates, maxUpdatesPerCommand at a time.
func bulkChunks(ctx context.Context, coll *mongo.Collection, models []mongo.WriteModel) error {
	for len(models) > 0 {
		n := min(len(models), maxUpdatesPerCommand)
		if _, err := coll.BulkWrite(ctx, models[:n], options.BulkWrite().SetOrdered(false)); err != nil {
			return err
		}
		models = models[n:]
	}
	return nil
}

// backfillErrorIndex indexes the error logs stored before the index existed
// (an empty error_hours and some error logs), once at start: one pass over
// the times and ids.
func (s *Store) backfillErrorIndex(ctx context.Context) error {
	err := s.errHours.FindOne(ctx, bson.M{}).Err()
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return err // indexed already, or a failure
	}
	cur, err := s.errors.Find(ctx, bson.M{}, options.Find().SetProjection(bson.M{"t": 1}))
	if err != nil {
		return fmt.Errorf("backfill error index: %w", err)
	}
	defer cur.Close(ctx)
	var chunk []ErrorLog
	for cur.Next(ctx) {
		var e ErrorLog
		if err := cur.Decode(&e); err != nil {
			return fmt.Errorf("backfill error index: %w", err)
		}
		if chunk = append(chunk, e); len(chunk) == 5000 {
			if err := s.indexErrors(ctx, chunk, nil); err != nil {
				return err
			}
			chunk = chunk[:0]
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("backfill error index: %w", err)
	}
	return s.indexErrors(ctx, chunk, nil)
}

// addEv adds entries to minute documents (a set: adding again is a no-op).
func addEv(ctx context.Context, coll *mongo.Collection, ev map[string][]string) error {
	var models []mongo.WriteModel
	for m, keys := range ev {
		models = append(models, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: m}}).SetUpsert(true).
			SetUpdate(bson.D{
				{Key: "$addToSet", Value: bson.D{{Key: "ev", Value: bson.D{{Key: "$each", Value: keys}}}}},
				{Key: "$setOnInsert", Value: bson.D{{Key: "h", Value: m[:13]}}},
			}))
	}
	return bulkChunks(ctx, coll, models)
}

// pullEv removes entries from minute documents.
func pullEv(ctx context.Context, coll *mongo.Collection, ev map[string][]string) error {
	var models []mongo.WriteModel
	for m, keys := range ev {
		models = append(models, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: m}}).
			SetUpdate(bson.D{{Key: "$pullAll", Value: bson.D{{Key: "ev", Value: keys}}}}))
	}
	return bulkChunks(ctx, coll, models)
}

// dropEvBefore removes the entries older than cut: the minute documents
// before cut's minute, and the older entries of cut's minute.
func dropEvBefore(ctx context.Context, coll *mongo.Collection, cut time.Time) error {
	if _, err := coll.DeleteMany(ctx, bson.M{"_id": bson.M{"$lt": MinuteBucket(cut)}}); err != nil {
		return err
	}
	var d errMinuteDoc
	err := coll.FindOne(ctx, bson.M{"_id": MinuteBucket(cut)}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		return err
	}
	var old []string
	for _, k := range d.Ev {
		if t, _ := evSplit(k); t.Before(cut) {
			old = append(old, k)
		}
	}
	if len(old) == 0 {
		return nil
	}
	_, err = coll.UpdateOne(ctx, bson.M{"_id": d.ID}, bson.M{"$pullAll": bson.M{"ev": old}})
	return err
}
