package logstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Rollups are exact by construction, without transactions (FerretDB has
// none) and with any number of logd replicas:
//
//   - every bus message is one rollup part, whose _id (PartID) is a hash of
//     the message's event ids: the same message, redelivered to any replica,
//     makes the same part;
//   - a stored row carries the part that counts it (b); a part counts exactly
//     the rows of its message that carry its id, so its content is the same
//     whoever writes it, and writing it twice is a duplicate key;
//   - a background fold compacts parts into rollups_hourly/minute/second in
//     numbered rounds, one round at a time (a compare-and-set on the fold
//     state document). Each rollup document remembers the last round applied
//     to it (fr) and a round only updates documents with fr < its number, so
//     a round finished twice (a crash, a takeover, two replicas) counts once;
//   - a folded part is journaled (rollup_folded, kept BatchJournalAge) before
//     it is deleted, so a message redelivered after its part was folded does
//     not count again;
//   - queries add the parts not yet folded to the rollup documents they read
//     (see view), so a count is exact the moment its message is acknowledged.

// foldStateID is the _id of the fold state document in CollParts.
const foldStateID = "~fold"

// PartID is the rollup part of one bus message: kind ("r" request, "e"
// error) and a hash of its event ids, in any order.
func PartID(kind string, ids []string) string {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	h := sha256.New()
	for _, id := range sorted {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return kind + ":" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}

// part is one CollParts document: what one message adds to each rollup.
type part struct {
	ID      string    `bson:"_id"`
	T       time.Time `bson:"t"`
	Hourly  []entry   `bson:"h,omitempty"`
	Minutes []entry   `bson:"m,omitempty"`
	Seconds []entry   `bson:"s,omitempty"`
}

// A part's entries are stored as one binary field (e: the BSON of
// partEntries). FerretDB on SQLite keeps a type schema beside every nested
// field and rebuilds each nested document on every read, so a part of a few
// hundred entries, read or written several times per fold, was the largest
// cost of ingest there; one opaque value costs only its bytes. Nothing
// queries a part's entries in the store. Parts written as h, m and s arrays
// (earlier versions) still decode.
type partEntries struct {
	Hourly  []entry `bson:"h,omitempty"`
	Minutes []entry `bson:"m,omitempty"`
	Seconds []entry `bson:"s,omitempty"`
}

// partDoc is a part as stored.
type partDoc struct {
	ID      string    `bson:"_id"`
	T       time.Time `bson:"t"`
	E       []byte    `bson:"e,omitempty"`
	Hourly  []entry   `bson:"h,omitempty"` // parts written before e
	Minutes []entry   `bson:"m,omitempty"`
	Seconds []entry   `bson:"s,omitempty"`
}

// MarshalBSON stores the entries as one binary field.
func (p part) MarshalBSON() ([]byte, error) {
	e, err := bson.Marshal(partEntries{Hourly: p.Hourly, Minutes: p.Minutes, Seconds: p.Seconds})
	if err != nil {
		return nil, fmt.Errorf("encode rollup part %s: %w", p.ID, err)
	}
	return bson.Marshal(partDoc{ID: p.ID, T: p.T, E: e})
}

// UnmarshalBSON reads a part in either stored form.
func (p *part) UnmarshalBSON(b []byte) error {
	var d partDoc
	if err := bson.Unmarshal(b, &d); err != nil {
		return err
	}
	*p = part{ID: d.ID, T: d.T, Hourly: d.Hourly, Minutes: d.Minutes, Seconds: d.Seconds}
	if len(d.E) == 0 {
		return nil
	}
	var e partEntries
	if err := bson.Unmarshal(d.E, &e); err != nil {
		return fmt.Errorf("decode rollup part %s: %w", d.ID, err)
	}
	p.Hourly, p.Minutes, p.Seconds = e.Hourly, e.Minutes, e.Seconds
	return nil
}

// entry is what a part adds to one rollup document (_id i).
type entry struct {
	ID       string           `bson:"i"`
	Codes    map[string]int64 `bson:"codes,omitempty"`
	Attempts map[string]int64 `bson:"acodes,omitempty"`
	Counters `bson:",inline"`
}

// foldState is a fold round (rollup_rounds) and, as a hint for queries, the
// fold state document in CollParts: the newest round and, while it runs, its
// parts.
type foldState struct {
	ID    string    `bson:"_id"`
	N     int64     `bson:"n"`
	Done  bool      `bson:"done"`
	Parts []string  `bson:"parts"`
	At    time.Time `bson:"at"`
}

// folded is one rollup_folded journal entry: part _id folded in round n.
type folded struct {
	ID string    `bson:"_id"`
	N  int64     `bson:"n"`
	T  time.Time `bson:"t"`
}

func entriesOf(deltas map[string]*delta) []entry {
	out := make([]entry, 0, len(deltas))
	for id, d := range deltas {
		out = append(out, entry{ID: id, Counters: d.c, Codes: d.codes, Attempts: d.acodes})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func deltasOfEntries(into map[string]*delta, es []entry) {
	for _, e := range es {
		d := into[e.ID]
		if d == nil {
			d = &delta{}
			into[e.ID] = d
		}
		d.c.Add(e.Counters)
		d.codes = addCodes(d.codes, e.Codes)
		d.acodes = addCodes(d.acodes, e.Attempts)
	}
}

func addCodes(into, m map[string]int64) map[string]int64 {
	if len(m) == 0 {
		return into
	}
	if into == nil {
		into = make(map[string]int64, len(m))
	}
	for k, v := range m {
		into[k] += v
	}
	return into
}

// Settle writes the rollup parts of an inserted batch: one per message tag
// on its rows, counting the rows whose stored copy carries that tag (a row
// inserted first by another message is that message's to count). Retry with
// the same Pending until it succeeds; writing a part twice is a no-op.
func (s *Store) Settle(ctx context.Context, p *Pending) error {
	reqOwner, err := s.owners(ctx, s.requests, p.reqOwner, p.reqDups)
	if err != nil {
		return err
	}
	errOwner, err := s.owners(ctx, s.errors, p.errOwner, p.errDups)
	if err != nil {
		return err
	}
	type rows struct {
		reqs  []*RequestLog
		errs  []*ErrorLog
		seen  map[string]bool
		dup   bool // some row was stored before: the part may exist or be folded
		order int
	}
	byPart := map[string]*rows{}
	get := func(tag string) *rows {
		r := byPart[tag]
		if r == nil {
			r = &rows{seen: map[string]bool{}, order: len(byPart)}
			byPart[tag] = r
		}
		return r
	}
	dupReq := make(map[string]bool, len(p.reqDups))
	for _, id := range p.reqDups {
		dupReq[id] = true
	}
	dupErr := make(map[string]bool, len(p.errDups))
	for _, id := range p.errDups {
		dupErr[id] = true
	}
	p.Result.Rolled = 0
	for i := range p.reqs {
		r := &p.reqs[i]
		if reqOwner[r.ID] != r.Batch {
			continue
		}
		pr := get(r.Batch)
		if pr.seen[r.ID] {
			continue
		}
		pr.seen[r.ID] = true
		pr.dup = pr.dup || dupReq[r.ID]
		pr.reqs = append(pr.reqs, r)
		p.Result.Rolled++
	}
	for i := range p.errs {
		e := &p.errs[i]
		if errOwner[e.ID] != e.Batch {
			continue
		}
		pr := get(e.Batch)
		if pr.seen[e.ID] {
			continue
		}
		pr.seen[e.ID] = true
		pr.dup = pr.dup || dupErr[e.ID]
		pr.errs = append(pr.errs, e)
	}
	now := s.now().UTC()
	var docs []any
	var check []string
	tags := make([]string, 0, len(byPart))
	for tag := range byPart {
		tags = append(tags, tag)
	}
	slices.Sort(tags)
	for _, tag := range tags {
		pr := byPart[tag]
		hourly, minutely, secondly := deltasOf(pr.reqs)
		addAttempts(hourly, pr.errs)
		if len(hourly) == 0 {
			continue // error events without a key: nothing to count
		}
		docs = append(docs, &part{ID: tag, T: now, Hourly: entriesOf(hourly), Minutes: entriesOf(minutely), Seconds: entriesOf(secondly)})
		if pr.dup {
			check = append(check, tag)
		}
	}
	// A message whose rows were all stored before may be a redelivery of one
	// whose part is folded already: its journal entry says so. (The fold
	// checks again; this keeps queries from counting it until then.)
	gone, err := s.foldedParts(ctx, check)
	if err != nil {
		return err
	}
	if len(gone) > 0 {
		docs = slices.DeleteFunc(docs, func(d any) bool { return gone[d.(*part).ID] != 0 })
	}
	if len(docs) == 0 {
		return nil
	}
	if _, _, err := insertUnordered(ctx, s.parts, docs); err != nil {
		return fmt.Errorf("write rollup parts: %w", err)
	}
	return nil
}

// owners completes the owner tag of every row: known for the rows this batch
// inserted, looked up for duplicates. Each tag found is kept in known, so a
// retry after a slow or failed round (a store that just restarted) looks up
// only the rest and a large redelivered batch always makes progress.
func (s *Store) owners(ctx context.Context, coll *mongo.Collection, known map[string]string, dups []string) (map[string]string, error) {
	var missing []string
	for _, id := range dups {
		if _, ok := known[id]; !ok {
			missing = append(missing, id)
		}
	}
	found, err := s.rowBatches(ctx, coll, missing)
	for k, v := range found {
		known[k] = v
	}
	if err != nil {
		return nil, err
	}
	return known, nil
}

// foldedParts returns the round in which each of ids was folded (absent: not
// folded), one _id lookup each: FerretDB scans the collection for an $in.
func (s *Store) foldedParts(ctx context.Context, ids []string) (map[string]int64, error) {
	out := map[string]int64{}
	var mu sync.Mutex
	err := parallelLimit(len(ids), lookupConcurrency, func(i int) error {
		var f folded
		err := s.folded.FindOne(ctx, bson.M{"_id": ids[i]}).Decode(&f)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return nil
		case err != nil:
			return fmt.Errorf("look up folded part %s: %w", ids[i], err)
		}
		mu.Lock()
		out[ids[i]] = f.N
		mu.Unlock()
		return nil
	})
	return out, err
}

// parallelLimit runs f(0..n-1), at most limit at once, and returns the first error.
func parallelLimit(n, limit int, f func(i int) error) error {
	if n == 0 {
		return nil
	}
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(limit, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// maxPartsPerRound bounds the parts one fold round takes.
const maxPartsPerRound = 500

// foldTakeover is how old an unfinished round must be before another fold
// finishes it rather than leave it to the one that started it. Finishing it
// at once would be just as correct, only duplicate work.
const foldTakeover = 10 * time.Second

// Fold runs one fold round: it finishes an unfinished round (its own, or one
// older than foldTakeover), or starts one over the parts present. It returns
// how many parts it folded; 0 when there was nothing to do or another fold
// holds the round (a Fold of the same Store running meanwhile returns 0 at
// once). Any number of Folds may run at once, anywhere, and any may die at any
// point: a round finished twice counts once.
//
// A round starts by inserting its document (rollup_rounds, _id = its
// number): the one insert that wins owns the number, which no update-based
// compare-and-set on FerretDB guarantees. Round n+1 is started only once
// round n is done, so the numbers order the rounds.
func (s *Store) Fold(ctx context.Context) (int, error) {
	// One fold at a time per Store: two of its own would both take its
	// round as theirs, and FerretDB applies an update by reading the
	// document and writing it back, so the slower one could write a stale
	// copy over the next round's counts.
	if !s.folding.TryLock() {
		return 0, nil
	}
	defer s.folding.Unlock()
	var hint foldState
	err := s.parts.FindOne(ctx, bson.M{"_id": foldStateID}).Decode(&hint)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return 0, fmt.Errorf("read fold state: %w", err)
	}
	// The newest round: the hint's, or a later one whose starter has not
	// updated the hint yet.
	var last *foldState
	n := hint.N
	if n > 0 {
		if last, err = s.round(ctx, n); err != nil {
			return 0, err
		}
	}
	for {
		next, err := s.round(ctx, n+1)
		if err != nil {
			return 0, err
		}
		if next == nil {
			break
		}
		last, n = next, n+1
	}
	if last != nil && !last.Done {
		s.mu.Lock()
		mine := s.rounds[last.N]
		s.mu.Unlock()
		if !mine && s.now().Sub(last.At) < foldTakeover {
			return 0, nil
		}
		return s.finishRound(ctx, *last)
	}
	cur, err := s.parts.Find(ctx, bson.M{"_id": bson.M{"$ne": foldStateID}},
		options.Find().SetProjection(bson.M{"_id": 1}).SetLimit(maxPartsPerRound))
	if err != nil {
		return 0, fmt.Errorf("list rollup parts: %w", err)
	}
	var ids []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &ids); err != nil {
		return 0, fmt.Errorf("list rollup parts: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	next := foldState{ID: roundID(n + 1), N: n + 1, Parts: make([]string, len(ids)), At: s.now().UTC()}
	for i, d := range ids {
		next.Parts[i] = d.ID
	}
	slices.Sort(next.Parts)
	if _, err := s.roundsColl.InsertOne(ctx, next); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return 0, nil // another fold started it
		}
		return 0, fmt.Errorf("start fold round %d: %w", next.N, err)
	}
	s.mu.Lock()
	s.rounds[next.N] = true
	s.mu.Unlock()
	return s.finishRound(ctx, next)
}

// roundID is the _id of round n: zero-padded, so _id order is round order.
// deleteChunk bounds the ids of one folded-parts delete (the command size).
const deleteChunk = 1000

func roundID(n int64) string { return fmt.Sprintf("%015d", n) }

// round reads round n; nil when it does not exist.
func (s *Store) round(ctx context.Context, n int64) (*foldState, error) {
	var r foldState
	err := s.roundsColl.FindOne(ctx, bson.M{"_id": roundID(n)}).Decode(&r)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read fold round %d: %w", n, err)
	}
	return &r, nil
}

// setHint copies a round's state into the fold state document that queries
// read with the parts (see view). It only moves forward, as far as FerretDB's
// non-atomic conditional update allows: a hint that lags makes a query read
// again (view.stale), it never changes what a fold counts.
func (s *Store) setHint(ctx context.Context, r foldState) error {
	parts := r.Parts
	if r.Done {
		parts = []string{}
	}
	set := bson.M{"$set": bson.M{"n": r.N, "done": r.Done, "parts": parts, "at": r.At}}
	res, err := s.parts.UpdateOne(ctx, bson.M{"_id": foldStateID, "n": bson.M{"$lte": r.N}}, set)
	if err == nil && res.MatchedCount == 0 {
		_, err = s.parts.UpdateOne(ctx, bson.M{"_id": foldStateID}, bson.M{"$setOnInsert": bson.M{"n": r.N, "done": r.Done, "parts": parts, "at": r.At}},
			options.UpdateOne().SetUpsert(true))
		if mongo.IsDuplicateKeyError(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("update fold state: %w", err)
	}
	return nil
}

// finishRound applies round st to the rollups, journals its parts, deletes
// them and marks the round done. Each step is idempotent, so whoever runs it
// again (after a crash, or at the same time) changes nothing twice:
//   - a rollup document takes the round only while its fr is below st.N;
//   - a part journaled in an earlier round is a redelivered copy: not applied;
//   - parts are deleted only after every rollup document has the round, so a
//     second runner that finds fewer parts has nothing left to apply.
func (s *Store) finishRound(ctx context.Context, st foldState) (int, error) {
	// Queries learn of the round before any rollup document has it (the
	// starter may have died before telling them).
	if err := s.setHint(ctx, st); err != nil {
		return 0, err
	}
	// One _id lookup per part: FerretDB pushes an _id equality down, an
	// $in it evaluates over the whole collection.
	found := make([]*part, len(st.Parts))
	err := parallelLimit(len(st.Parts), lookupConcurrency, func(i int) error {
		var p part
		err := s.parts.FindOne(ctx, bson.M{"_id": st.Parts[i]}).Decode(&p)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return nil // deleted by whoever finished the round first
		case err != nil:
			return fmt.Errorf("read rollup part %s: %w", st.Parts[i], err)
		}
		found[i] = &p
		return nil
	})
	if err != nil {
		return 0, err
	}
	var parts []part
	var ids []string
	for _, p := range found {
		if p != nil {
			parts = append(parts, *p)
			ids = append(ids, p.ID)
		}
	}
	journaled, err := s.foldedParts(ctx, ids)
	if err != nil {
		return 0, err
	}
	hourly, minutely, secondly := map[string]*delta{}, map[string]*delta{}, map[string]*delta{}
	n := 0
	for _, p := range parts {
		if r, ok := journaled[p.ID]; ok && r < st.N {
			continue // folded before: this copy came from a redelivery
		}
		n++
		deltasOfEntries(hourly, p.Hourly)
		deltasOfEntries(minutely, p.Minutes)
		deltasOfEntries(secondly, p.Seconds)
	}
	for id, d := range hourly {
		f := strings.SplitN(id, "|", 4)
		if len(f) != 4 {
			return 0, fmt.Errorf("rollup part entry %q is not hour|key|model|token", id)
		}
		d.hour, d.key, d.model, d.token = f[0], f[1], f[2], f[3]
	}
	if err := bulkInc(ctx, s.rollups, st.N, hourly, func(d *delta) bson.D {
		return bson.D{
			{Key: "h", Value: d.hour}, {Key: "d", Value: d.hour[:10]}, {Key: "mon", Value: d.hour[:7]},
			{Key: "k", Value: d.key}, {Key: "mo", Value: d.model}, {Key: "tk", Value: d.token},
		}
	}); err != nil {
		return 0, fmt.Errorf("fold round %d into hourly rollups: %w", st.N, err)
	}
	if err := s.foldStep("hourly"); err != nil {
		return 0, err
	}
	if err := bulkIncByID(ctx, s.minutes, st.N, minutely, func(id string) bson.D {
		return bson.D{{Key: "h", Value: id[:13]}}
	}); err != nil {
		return 0, fmt.Errorf("fold round %d into minute rollups: %w", st.N, err)
	}
	if err := s.foldSeconds(ctx, st.N, secondly); err != nil {
		return 0, fmt.Errorf("fold round %d into second rollups: %w", st.N, err)
	}
	if err := s.foldStep("rollups"); err != nil {
		return 0, err
	}
	if len(ids) > 0 {
		now := s.now().UTC()
		docs := make([]any, len(ids))
		for i, id := range ids {
			docs[i] = folded{ID: id, N: st.N, T: now}
		}
		if _, _, err := insertUnordered(ctx, s.folded, docs); err != nil {
			return 0, fmt.Errorf("journal folded parts: %w", err)
		}
		if err := s.foldStep("journaled"); err != nil {
			return 0, err
		}
		// One delete per chunk, not per part: FerretDB runs each delete as a
		// scan of rollup_parts, so per-part deletes cost parts × pending.
		for lo := 0; lo < len(ids); lo += deleteChunk {
			chunk := ids[lo:min(lo+deleteChunk, len(ids))]
			if _, err := s.parts.DeleteMany(ctx, bson.M{"_id": bson.M{"$in": chunk}}); err != nil {
				return 0, fmt.Errorf("delete %d folded parts: %w", len(chunk), err)
			}
		}
		if err := s.foldStep("deleted"); err != nil {
			return 0, err
		}
	}
	if _, err := s.roundsColl.UpdateOne(ctx, bson.M{"_id": roundID(st.N)},
		bson.M{"$set": bson.M{"done": true, "parts": []string{}}}); err != nil {
		return 0, fmt.Errorf("finish fold round %d: %w", st.N, err)
	}
	st.Done = true
	if err := s.setHint(ctx, st); err != nil {
		return 0, err
	}
	s.mu.Lock()
	delete(s.rounds, st.N)
	s.mu.Unlock()
	return n, nil
}

// foldStep lets tests stop a fold between its steps, as a crash would.
func (s *Store) foldStep(step string) error {
	if s.foldHook == nil {
		return nil
	}
	return s.foldHook(step)
}

func bulkIncByID(ctx context.Context, coll *mongo.Collection, round int64, deltas map[string]*delta, onInsert func(id string) bson.D) error {
	ids := make(map[*delta]string, len(deltas))
	for id, d := range deltas {
		ids[d] = id
	}
	return bulkInc(ctx, coll, round, deltas, func(d *delta) bson.D { return onInsert(ids[d]) })
}

// view is what queries add to the rollup documents they read: the parts not
// yet folded, read once per query (see Store.consistent).
type view struct {
	n       int64
	done    bool
	inRound map[string]bool
	byColl  map[string]map[string][]viewEntry // collection → rollup _id → entries
	// stale is set when a rollup document read carries a round newer than
	// the view: parts the view holds may be in it, so the query runs again.
	stale bool
	mu    sync.Mutex
}

type viewEntry struct {
	part string
	e    *entry
}

type viewKey struct{}

func (s *Store) loadView(ctx context.Context) (*view, error) {
	cur, err := s.parts.Find(ctx, bson.M{})
	if err != nil {
		return nil, fmt.Errorf("read rollup parts: %w", err)
	}
	v := &view{done: true, byColl: map[string]map[string][]viewEntry{}}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		if id, _ := cur.Current.Lookup("_id").StringValueOK(); id == foldStateID {
			var st foldState
			if err := cur.Decode(&st); err != nil {
				return nil, fmt.Errorf("read fold state: %w", err)
			}
			v.n, v.done = st.N, st.Done
			if !st.Done {
				v.inRound = make(map[string]bool, len(st.Parts))
				for _, p := range st.Parts {
					v.inRound[p] = true
				}
			}
			continue
		}
		var p part
		if err := cur.Decode(&p); err != nil {
			return nil, fmt.Errorf("read rollup part: %w", err)
		}
		for _, c := range []struct {
			coll string
			es   []entry
		}{{CollRollups, p.Hourly}, {CollMinutes, p.Minutes}, {CollSeconds, p.Seconds}} {
			m := v.byColl[c.coll]
			if m == nil {
				m = map[string][]viewEntry{}
				v.byColl[c.coll] = m
			}
			for i := range c.es {
				m[c.es[i].ID] = append(m[c.es[i].ID], viewEntry{part: p.ID, e: &c.es[i]})
			}
		}
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("read rollup parts: %w", err)
	}
	return v, nil
}

// consistent runs a query with a view of the unfolded parts, again (up to
// three times) when a fold round overtook the query's reads.
func (s *Store) consistent(ctx context.Context, query func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		v, err := s.loadView(ctx)
		if err != nil {
			return err
		}
		err = query(context.WithValue(ctx, viewKey{}, v))
		if err != nil || !v.isStale() || attempt == 3 {
			return err
		}
	}
}

func (v *view) isStale() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stale
}

// staleView reports whether ctx's view was overtaken (caches are then not written).
func staleView(ctx context.Context) bool {
	v, _ := ctx.Value(viewKey{}).(*view)
	return v != nil && v.isStale()
}

// merge adds the view's parts to docs read from coll with filter f: to the
// documents read (unless the part's round already reached them) and as
// documents of their own where none was read and f matches.
func (v *view) merge(coll string, f bson.M, docs []Rollup) ([]Rollup, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, d := range docs {
		if d.Round > v.n {
			v.stale = true
		}
	}
	es := v.byColl[coll]
	if len(es) == 0 {
		return docs, nil
	}
	byID := make(map[string]int, len(docs))
	for i, d := range docs {
		byID[d.ID] = i
	}
	for id, list := range es {
		fields := rollupFields(coll, id)
		ok, err := matches(fields, f)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		i, read := byID[id]
		if !read {
			docs = append(docs, virtualRollup(id, fields))
			i = len(docs) - 1
			byID[id] = i
		}
		d := &docs[i]
		for _, ve := range list {
			if read && !v.done && v.inRound[ve.part] && d.Round >= v.n {
				continue // this round is applied to the document already
			}
			d.Counters.Add(ve.e.Counters)
			d.Codes = addCodes(d.Codes, ve.e.Codes)
			d.Attempts = addCodes(d.Attempts, ve.e.Attempts)
		}
	}
	return docs, nil
}

// rollupFields are the filterable fields of a rollup document, from its _id.
func rollupFields(coll, id string) map[string]string {
	switch coll {
	case CollRollups:
		f := strings.SplitN(id, "|", 4)
		if len(f) != 4 || len(f[0]) < 13 {
			return map[string]string{"_id": id}
		}
		return map[string]string{"_id": id, "h": f[0], "d": f[0][:10], "mon": f[0][:7], "k": f[1], "mo": f[2], "tk": f[3]}
	case CollMinutes:
		return map[string]string{"_id": id, "h": id[:min(13, len(id))]}
	case CollSeconds:
		return map[string]string{"_id": id, "m": id[:min(16, len(id))]}
	}
	return map[string]string{"_id": id}
}

func virtualRollup(id string, f map[string]string) Rollup {
	return Rollup{ID: id, Hour: f["h"], Day: f["d"], Month: f["mon"], Key: f["k"], Model: f["mo"], Token: f["tk"]}
}

// matches evaluates the filters the rollup queries use (string equality,
// $ne, $gt, $gte, $lt, $lte) on fields.
func matches(fields map[string]string, f bson.M) (bool, error) {
	for k, want := range f {
		got, has := fields[k]
		switch w := want.(type) {
		case string:
			if !has || got != w {
				return false, nil
			}
		case bson.M:
			for op, arg := range w {
				a, ok := arg.(string)
				if !ok {
					return false, fmt.Errorf("rollup filter %s.%s: not a string", k, op)
				}
				var pass bool
				switch op {
				case "$ne":
					pass = !has || got != a
				case "$gt":
					pass = has && got > a
				case "$gte":
					pass = has && got >= a
				case "$lt":
					pass = has && got < a
				case "$lte":
					pass = has && got <= a
				default:
					return false, fmt.Errorf("rollup filter %s: operator %s not supported for parts", k, op)
				}
				if !pass {
					return false, nil
				}
			}
		default:
			return false, fmt.Errorf("rollup filter %s: %T not supported for parts", k, want)
		}
	}
	return true, nil
}

// consistently runs query with a view of the unfolded parts (Store.consistent).
func consistently[T any](ctx context.Context, s *Store, query func(ctx context.Context) (T, error)) (T, error) {
	var out T
	err := s.consistent(ctx, func(ctx context.Context) error {
		var err error
		out, err = query(ctx)
		return err
	})
	return out, err
}
