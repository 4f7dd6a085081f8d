package logstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
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
	// Backfill marks the round that backfills the derived rollups (derived.go).
	Backfill bool `bson:"backfill,omitempty"`
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
	dupErr := make(map[string]bool, len(p.errDups))
	for _, id := range p.errDups {
		dupErr[id] = true
	}
	p.Result.Rolled = 0
	for i := range p.reqs {
		// Every request log counts in its own message's part: its bucket is
		// that part's (buckets.go).
		r := &p.reqs[i]
		pr := get(r.Batch)
		if pr.seen[r.ID] {
			continue
		}
		pr.seen[r.ID] = true
		pr.dup = pr.dup || p.reqDupParts[r.Batch]
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
