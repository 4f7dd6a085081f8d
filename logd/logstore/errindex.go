// One concern, kept whole: the error logs' time index and its ten-minute
// copies, written with the rows and read by the newest-first pages.

package logstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
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
//
// FerretDB on PostgreSQL answers every filtered read with a scan of the whole
// table (its pushed-down equality cannot use an index), so reading a minute's
// rows from error_logs costs a scan of every error log. The list fields of
// the newest error logs are therefore copied too, one collection per ten
// minutes of their time (error_logs_copy_<yyyymmddhh>m<m0>, kept
// errorCopyAge), and each hour document counts the copied rows by minute
// (mins, "05" → n). An hour whose minute counts add up to its count n is read
// from its copies, small collections, each minute checked against its count;
// any other hour (older than the copies, indexed before them, or left uneven
// by a failed write or delete) is read as before.

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
	// Mins counts the hour's copied rows by minute ("05" → n).
	Mins map[string]int64 `bson:"mins,omitempty"`
}

// CollErrorCopyPrefix names the copies of the newest error logs' list
// fields, one per ten minutes: error_logs_copy_2026120506m50 holds 06:50 to
// 06:59 (UTC). Ten minutes of a busy day is a few MB that a read scans.
const CollErrorCopyPrefix = "error_logs_copy_"

const errorCopyLayout = "2006010215m04"

// errorCopyAge is how long the copies are kept: the first pages of the
// error log, and the dashboard's recent errors, are read from them.
const errorCopyAge = 48 * time.Hour

// errorCopyWholeHour is the largest hour read from its copies whole; a
// busier hour is read minute by minute. A variable for tests.
var errorCopyWholeHour int64 = 500

func errorCopyColl(t time.Time) string {
	return CollErrorCopyPrefix + t.UTC().Truncate(10*time.Minute).Format(errorCopyLayout)
}

// errorCopyHour is the start of a copy collection's ten minutes.
func errorCopyHour(name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, CollErrorCopyPrefix)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(errorCopyLayout, rest)
	return t, err == nil
}

// indexErrors adds a batch's error logs to the index and copies them. Entries
// are added to a set, so every row of the batch is listed again (a retry
// repairs an entry lost with a failed attempt); the hour counts grow only by
// the rows this batch inserted (not the duplicates at dupIdx), and the minute
// counts by the rows it copied. A batch that inserted rows and failed before
// counting them leaves its hour undercounted (and read as before).
func (s *Store) indexErrors(ctx context.Context, errs []ErrorLog, dupIdx []int) error {
	copied, err := s.copyErrors(ctx, errs)
	if err != nil {
		return err
	}
	return s.indexErrorRows(ctx, errs, dupIdx, copied)
}

func (s *Store) indexErrorRows(ctx context.Context, errs []ErrorLog, dupIdx []int, copied map[string]map[string]int64) error {
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
	for h := range copied {
		if _, ok := fresh[h]; !ok {
			fresh[h] = 0
		}
	}
	var hours []mongo.WriteModel
	for h, n := range fresh {
		inc := bson.D{{Key: "n", Value: n}}
		for mm, c := range copied[h] {
			inc = append(inc, bson.E{Key: "mins." + mm, Value: c})
		}
		hours = append(hours, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: h}}).SetUpsert(true).
			SetUpdate(bson.D{{Key: "$inc", Value: inc}}))
	}
	if err := addEv(ctx, s.errMinutes, ev); err != nil {
		return fmt.Errorf("index error logs by minute: %w", err)
	}
	if err := bulkChunks(ctx, s.errHours, hours); err != nil {
		return fmt.Errorf("count error logs by hour: %w", err)
	}
	return nil
}

// copyErrors copies the list fields of the rows newer than errorCopyAge into
// their hours' copies and returns how many it inserted, by hour and minute
// ("2026-11-27T06" → "05" → n). A row copied before is not counted again.
func (s *Store) copyErrors(ctx context.Context, errs []ErrorLog) (map[string]map[string]int64, error) {
	now := s.now().UTC()
	if err := s.trimErrorCopies(ctx, now); err != nil {
		return nil, err
	}
	byColl := map[string][]ErrorLog{}
	for _, e := range errs {
		if e.Time.Before(now.Add(-errorCopyAge)) {
			continue // its hour's copy is gone or going: read as before
		}
		e.Minute = MinuteBucket(e.Time)
		e.Message, e.RequestBody, e.Batch = "", "", ""
		byColl[errorCopyColl(e.Time)] = append(byColl[errorCopyColl(e.Time)], e)
	}
	out := map[string]map[string]int64{}
	for coll, rows := range byColl {
		docs := make([]any, len(rows))
		for i := range rows {
			docs[i] = &rows[i]
		}
		_, dupIdx, err := insertUnordered(ctx, s.db.Collection(coll), docs)
		if err != nil {
			return nil, fmt.Errorf("copy error logs: %w", err)
		}
		dup := make(map[int]bool, len(dupIdx))
		for _, i := range dupIdx {
			dup[i] = true
		}
		for i, r := range rows {
			if dup[i] {
				continue
			}
			h := r.Minute[:13]
			if out[h] == nil {
				out[h] = map[string]int64{}
			}
			out[h][r.Minute[14:]]++
		}
	}
	return out, nil
}

// trimErrorCopies drops the copies older than errorCopyAge, once an hour per Store.
func (s *Store) trimErrorCopies(ctx context.Context, now time.Time) error {
	hour := now.Truncate(time.Hour).Unix()
	if s.errCopyTrimmed.Load() == hour {
		return nil
	}
	if err := s.dropErrorCopies(ctx, now.Add(-errorCopyAge).Truncate(time.Hour)); err != nil {
		return err
	}
	s.errCopyTrimmed.Store(hour)
	return nil
}

// dropErrorCopies drops the copies of the hours before cut (every one when
// cut is zero).
func (s *Store) dropErrorCopies(ctx context.Context, cut time.Time) error {
	names, err := s.db.ListCollectionNames(ctx, bson.M{})
	if err != nil {
		return fmt.Errorf("list error log copies: %w", err)
	}
	for _, n := range names {
		if h, ok := errorCopyHour(n); ok && (cut.IsZero() || h.Before(cut)) {
			if err := s.db.Collection(n).Drop(ctx); err != nil {
				return fmt.Errorf("drop error log copy %s: %w", n, err)
			}
		}
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
	uncopied, err := s.uncopyErrors(ctx, rows)
	if err != nil {
		return err
	}
	var hours []mongo.WriteModel
	for h, n := range gone {
		inc := bson.D{{Key: "n", Value: -n}}
		for mm, c := range uncopied[h] {
			inc = append(inc, bson.E{Key: "mins." + mm, Value: -c})
		}
		hours = append(hours, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: h}}).
			SetUpdate(bson.D{{Key: "$inc", Value: inc}}))
	}
	if err := pullEv(ctx, s.errMinutes, ev); err != nil {
		return fmt.Errorf("unindex error logs by minute: %w", err)
	}
	if err := bulkChunks(ctx, s.errHours, hours); err != nil {
		return fmt.Errorf("uncount error logs by hour: %w", err)
	}
	return nil
}

// uncopyErrors deletes rows from their hours' copies, one delete per minute
// (FerretDB pushes the minute equality down and checks the ids in Go), and
// returns how many it deleted by hour and minute.
func (s *Store) uncopyErrors(ctx context.Context, rows []ErrorLog) (map[string]map[string]int64, error) {
	byMinute := map[string][]string{}
	for _, e := range rows {
		m := MinuteBucket(e.Time)
		byMinute[m] = append(byMinute[m], e.ID)
	}
	out := map[string]map[string]int64{}
	for m, ids := range byMinute {
		t, err := time.Parse("2006-01-02T15:04", m)
		if err != nil {
			continue
		}
		res, err := s.db.Collection(errorCopyColl(t)).DeleteMany(ctx, bson.M{"m": m, "_id": bson.M{"$in": ids}})
		if err != nil {
			return nil, fmt.Errorf("delete copied error logs of %s: %w", m, err)
		}
		if res.DeletedCount > 0 {
			if out[m[:13]] == nil {
				out[m[:13]] = map[string]int64{}
			}
			out[m[:13]][m[14:]] += res.DeletedCount
		}
	}
	return out, nil
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
	// The copies: the hours before cut's are dropped, cut's hour keeps its
	// rows from cut on and is counted again.
	if err := s.dropErrorCopies(ctx, cut.Truncate(time.Hour)); err != nil {
		return err
	}
	mins := map[string]int64{}
	for tm := cut.Truncate(time.Hour); tm.Before(cut.Truncate(time.Hour).Add(time.Hour)); tm = tm.Add(10 * time.Minute) {
		c := s.db.Collection(errorCopyColl(tm))
		if !tm.Add(10 * time.Minute).After(cut) {
			if err := c.Drop(ctx); err != nil {
				return fmt.Errorf("drop copied error logs before %s: %w", cut, err)
			}
			continue
		}
		if _, err := c.DeleteMany(ctx, bson.M{"t": bson.M{"$lt": cut}}); err != nil {
			return fmt.Errorf("delete copied error logs before %s: %w", cut, err)
		}
		cur, err := c.Find(ctx, bson.M{}, options.Find().SetProjection(bson.M{"m": 1}))
		if err != nil {
			return fmt.Errorf("recount copied error logs of %s: %w", mongox.HourBucket(cut), err)
		}
		var left []ErrorLog
		if err := cur.All(ctx, &left); err != nil {
			return fmt.Errorf("recount copied error logs of %s: %w", mongox.HourBucket(cut), err)
		}
		for _, e := range left {
			if len(e.Minute) == 16 {
				mins[e.Minute[14:]]++
			}
		}
	}
	if _, err := s.errHours.UpdateOne(ctx, bson.M{"_id": mongox.HourBucket(cut)}, bson.M{"$set": bson.M{"n": n, "mins": mins}}); err != nil {
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
	return s.dropErrorCopies(ctx, time.Time{})
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
// and each hour is read from its copy (copiedErrors) or else through its
// minute documents (indexedErrors). ok is false when the index and the rows
// disagree (rows stored before m existed, or deleted behind the index's
// back): the caller falls back to the sorted query.
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
		got, ok, err := s.copiedErrors(ctx, h, t, need-len(rows))
		if err == nil && !ok {
			got, ok, err = s.indexedErrors(ctx, t, need-len(rows))
		}
		if err != nil || !ok {
			return nil, 0, false, err
		}
		rows = append(rows, got...)
	}
	return rows[min(offset, len(rows)):min(need, len(rows))], total, true, nil
}

// copiedErrors reads at least want of hour h's newest error logs (whole
// minutes, newest first) from its copy. ok is false when the copy cannot
// say: its minute counts do not add up to the hour's count, or a minute's
// copied rows differ from its count.
func (s *Store) copiedErrors(ctx context.Context, h errHourDoc, hour time.Time, want int) ([]ErrorLog, bool, error) {
	var sum int64
	mins := make([]string, 0, len(h.Mins))
	for mm, n := range h.Mins {
		sum += n
		if n != 0 {
			mins = append(mins, mm)
		}
	}
	if sum != h.N {
		return nil, false, nil
	}
	slices.SortFunc(mins, func(a, b string) int { return cmp.Compare(b, a) })
	read := func(minute string, f bson.M) ([]ErrorLog, error) {
		t, err := time.Parse("2006-01-02T15:04", minute)
		if err != nil {
			return nil, fmt.Errorf("copied error logs of %s: %w", minute, err)
		}
		cur, err := s.db.Collection(errorCopyColl(t)).Find(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("find copied error logs of %s: %w", minute, err)
		}
		var got []ErrorLog
		if err := cur.All(ctx, &got); err != nil {
			return nil, fmt.Errorf("read copied error logs of %s: %w", minute, err)
		}
		return got, nil
	}
	byMinute := map[string][]ErrorLog{}
	if h.N <= errorCopyWholeHour { // a quiet hour: its copies whole, at once
		tens := map[string]string{} // copy → a minute in it
		for _, mm := range mins {
			tens[mm[:1]] = h.ID + ":" + mm
		}
		firsts := slices.Collect(maps.Values(tens))
		got := make([][]ErrorLog, len(firsts))
		if err := parallel(len(firsts), func(i int) error {
			var err error
			got[i], err = read(firsts[i], bson.M{})
			return err
		}); err != nil {
			return nil, false, err
		}
		var n int64
		for _, g := range got {
			for _, e := range g {
				byMinute[e.Minute] = append(byMinute[e.Minute], e)
				n++
			}
		}
		if n != h.N {
			return nil, false, nil
		}
	}
	var rows []ErrorLog
	for _, mm := range mins {
		if len(rows) >= want {
			break
		}
		m := h.ID + ":" + mm
		got, seen := byMinute[m]
		if !seen && h.N > errorCopyWholeHour {
			var err error
			if got, err = read(m, bson.M{"m": m}); err != nil {
				return nil, false, err
			}
		}
		if int64(len(got)) != h.Mins[mm] {
			return nil, false, nil
		}
		slices.SortFunc(got, func(a, b ErrorLog) int {
			return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.ID, a.ID))
		})
		rows = append(rows, got...)
	}
	return rows, true, nil
}

// indexedErrors reads at least want of an hour's newest error logs (whole
// minutes, newest first) through its minute documents, each minute's rows
// with one equality on m. ok is false when a minute's rows differ from its
// entries.
func (s *Store) indexedErrors(ctx context.Context, hour time.Time, want int) ([]ErrorLog, bool, error) {
	docs, err := s.errMinuteDocs(ctx, hour)
	if err != nil {
		return nil, false, err
	}
	slices.SortFunc(docs, func(a, b *errMinuteDoc) int { return cmp.Compare(b.ID, a.ID) })
	var rows []ErrorLog
	for _, d := range docs {
		if len(rows) >= want {
			break
		}
		if len(d.Ev) == 0 {
			continue
		}
		cur, err := s.errors.Find(ctx, bson.M{"m": d.ID}, options.Find().SetProjection(bson.M{"message": 0, "request_body": 0}))
		if err != nil {
			return nil, false, fmt.Errorf("find error logs of minute %s: %w", d.ID, err)
		}
		var got []ErrorLog
		if err := cur.All(ctx, &got); err != nil {
			return nil, false, fmt.Errorf("read error logs of minute %s: %w", d.ID, err)
		}
		if len(got) != len(d.Ev) {
			return nil, false, nil
		}
		slices.SortFunc(got, func(a, b ErrorLog) int {
			return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.ID, a.ID))
		})
		rows = append(rows, got...)
	}
	return rows, true, nil
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
		// Not copied (only the times were read): these hours are read as before.
		if chunk = append(chunk, e); len(chunk) == 5000 {
			if err := s.indexErrorRows(ctx, chunk, nil, nil); err != nil {
				return err
			}
			chunk = chunk[:0]
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("backfill error index: %w", err)
	}
	return s.indexErrorRows(ctx, chunk, nil, nil)
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
