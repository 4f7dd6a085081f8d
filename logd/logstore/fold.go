package logstore

// The fold: rounds that move rollup parts into the rollups (see parts.go).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// MaxPartsPerRound bounds the parts one fold round takes. A round that
// folds fewer left nothing behind (parts written meanwhile wait for the next
// pass), which is how a fold loop knows to rest.
const MaxPartsPerRound = 500

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
		return s.finishRound(ctx, *last, nil)
	}
	ready, err := s.derivedReady(ctx)
	if err != nil {
		return 0, err
	}
	if !ready {
		// The derived rollups are backfilled by a round of their own before
		// any round of parts (see Backfill).
		return s.startRound(ctx, foldState{ID: roundID(n + 1), N: n + 1, Parts: []string{}, At: s.now().UTC(), Backfill: true}, nil)
	}
	// Whole parts, not only their ids: FerretDB reads every document of the
	// scan whole anyway, and a part never changes (its content follows from
	// its _id), so the round needs no lookup of each.
	cur, err := s.parts.Find(ctx, bson.M{"_id": bson.M{"$ne": foldStateID}}, options.Find().SetLimit(MaxPartsPerRound))
	if err != nil {
		return 0, fmt.Errorf("list rollup parts: %w", err)
	}
	var listed []part
	if err := cur.All(ctx, &listed); err != nil {
		return 0, fmt.Errorf("list rollup parts: %w", err)
	}
	if len(listed) == 0 {
		return 0, nil
	}
	next := foldState{ID: roundID(n + 1), N: n + 1, Parts: make([]string, len(listed)), At: s.now().UTC()}
	for i, p := range listed {
		next.Parts[i] = p.ID
	}
	slices.Sort(next.Parts)
	return s.startRound(ctx, next, listed)
}

// startRound claims round next by inserting it, then finishes it (listed:
// its parts, as finishRound takes them).
func (s *Store) startRound(ctx context.Context, next foldState, listed []part) (int, error) {
	if _, err := s.roundsColl.InsertOne(ctx, next); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return 0, nil // another fold started it
		}
		return 0, fmt.Errorf("start fold round %d: %w", next.N, err)
	}
	s.mu.Lock()
	s.rounds[next.N] = true
	s.mu.Unlock()
	return s.finishRound(ctx, next, listed)
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

// finishRound journals round st's parts, applies them to the rollups,
// deletes them and marks the round done. Each step is idempotent, so whoever
// runs it again (after a crash, or at the same time) changes nothing twice:
//   - a part journaled in an earlier round is a redelivered copy: not
//     applied (one journaled in this round is this round's own);
//   - a rollup document takes the round only while its fr is below st.N;
//   - parts are deleted only after every rollup document has the round, so a
//     second runner that finds fewer parts has nothing left to apply.
//
// listed holds the round's parts when the caller has just read them (it
// started the round); otherwise each is looked up.
func (s *Store) finishRound(ctx context.Context, st foldState, listed []part) (int, error) {
	// Queries learn of the round before any rollup document has it (the
	// starter may have died before telling them).
	if err := s.setHint(ctx, st); err != nil {
		return 0, err
	}
	if st.Backfill {
		if err := s.backfillDerived(ctx, st.N); err != nil {
			return 0, fmt.Errorf("fold round %d: %w", st.N, err)
		}
		if err := s.foldStep("backfilled"); err != nil {
			return 0, err
		}
		return 0, s.endRound(ctx, st)
	}
	parts, err := s.roundParts(ctx, st, listed)
	if err != nil {
		return 0, err
	}
	ids := make([]string, len(parts))
	for i, p := range parts {
		ids[i] = p.ID
	}
	journaled, err := s.journal(ctx, st.N, ids)
	if err != nil {
		return 0, err
	}
	if err := s.foldStep("journaled"); err != nil {
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
	if err := s.applyRound(ctx, st, ids, hourly, minutely, secondly); err != nil {
		return 0, err
	}
	return n, nil
}

// roundParts returns the round's parts still stored: listed when given
// (whole, from the round's own listing), else one _id lookup each (FerretDB
// pushes an _id equality down, an $in it evaluates over the whole
// collection).
func (s *Store) roundParts(ctx context.Context, st foldState, listed []part) ([]part, error) {
	if listed != nil {
		return listed, nil
	}
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
		return nil, err
	}
	var parts []part
	for _, p := range found {
		if p != nil {
			parts = append(parts, *p)
		}
	}
	return parts, nil
}

// journal records that round n folds ids (rollup_folded) and returns the
// round each was journaled in, where it already was: an insert each, and a
// lookup only for the duplicates (a redelivered message folded before, or
// this round finished again).
func (s *Store) journal(ctx context.Context, n int64, ids []string) (map[string]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	now := s.now().UTC()
	docs := make([]any, len(ids))
	for i, id := range ids {
		docs[i] = folded{ID: id, N: n, T: now}
	}
	_, dups, err := insertUnordered(ctx, s.folded, docs)
	if err != nil {
		return nil, fmt.Errorf("journal folded parts: %w", err)
	}
	if len(dups) == 0 {
		return nil, nil
	}
	before := make([]string, len(dups))
	for i, d := range dups {
		before[i] = ids[d]
	}
	return s.foldedParts(ctx, before)
}

// applyRound adds a round's deltas to the rollups and the derived rollups,
// deletes its parts and marks it done.
func (s *Store) applyRound(ctx context.Context, st foldState, ids []string, hourly, minutely, secondly map[string]*delta) error {
	for id, d := range hourly {
		f := strings.SplitN(id, "|", 4)
		if len(f) != 4 {
			return fmt.Errorf("rollup part entry %q is not hour|key|model|token", id)
		}
		d.hour, d.key, d.model, d.token = f[0], f[1], f[2], f[3]
	}
	if err := s.bulkInc(ctx, s.rollups, st.N, hourly, func(d *delta) bson.D {
		return bson.D{
			{Key: "h", Value: d.hour}, {Key: "d", Value: d.hour[:10]}, {Key: "mon", Value: d.hour[:7]},
			{Key: "k", Value: d.key}, {Key: "mo", Value: d.model}, {Key: "tk", Value: d.token},
		}
	}); err != nil {
		return fmt.Errorf("fold round %d into hourly rollups: %w", st.N, err)
	}
	if err := s.foldStep("hourly"); err != nil {
		return err
	}
	if err := s.bulkIncByID(ctx, s.minutes, st.N, minutely, func(id string) bson.D {
		return bson.D{{Key: "h", Value: id[:13]}}
	}); err != nil {
		return fmt.Errorf("fold round %d into minute rollups: %w", st.N, err)
	}
	if err := s.foldDerived(ctx, st.N, hourly, secondly); err != nil {
		return fmt.Errorf("fold round %d into derived rollups: %w", st.N, err)
	}
	if err := s.foldStep("rollups"); err != nil {
		return err
	}
	if len(ids) > 0 {
		// One delete per chunk, not per part: FerretDB runs each delete as a
		// scan of rollup_parts, so per-part deletes cost parts × pending.
		for lo := 0; lo < len(ids); lo += deleteChunk {
			chunk := ids[lo:min(lo+deleteChunk, len(ids))]
			if _, err := s.parts.DeleteMany(ctx, bson.M{"_id": bson.M{"$in": chunk}}); err != nil {
				return fmt.Errorf("delete %d folded parts: %w", len(chunk), err)
			}
		}
		if err := s.foldStep("deleted"); err != nil {
			return err
		}
	}
	return s.endRound(ctx, st)
}

// endRound marks round st done.
func (s *Store) endRound(ctx context.Context, st foldState) error {
	if _, err := s.roundsColl.UpdateOne(ctx, bson.M{"_id": roundID(st.N)},
		bson.M{"$set": bson.M{"done": true, "parts": []string{}}}); err != nil {
		return fmt.Errorf("finish fold round %d: %w", st.N, err)
	}
	st.Done = true
	if err := s.setHint(ctx, st); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.rounds, st.N)
	s.mu.Unlock()
	return nil
}

// foldStep lets tests stop a fold between its steps, as a crash would.
func (s *Store) foldStep(step string) error {
	if s.foldHook == nil {
		return nil
	}
	return s.foldHook(step)
}

func (s *Store) bulkIncByID(ctx context.Context, coll *mongo.Collection, round int64, deltas map[string]*delta, onInsert func(id string) bson.D) error {
	ids := make(map[*delta]string, len(deltas))
	for id, d := range deltas {
		ids[d] = id
	}
	return s.bulkInc(ctx, coll, round, deltas, func(d *delta) bson.D { return onInsert(ids[d]) })
}
