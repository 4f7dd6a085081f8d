package logstore

// The view: what queries add to the rollups they read, the parts not yet
// folded (see parts.go).

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

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

// pending adds the view's entries of coll to documents read by _id rather
// than as rollups: doc says which document an entry _id adds to (ok false:
// none read now), that document's round and whether it was found; add
// receives each entry its document does not hold yet (as merge decides).
func (v *view) pending(coll string, doc func(id string) (round int64, read, ok bool), add func(id string, e *entry)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for id, list := range v.byColl[coll] {
		round, read, ok := doc(id)
		if !ok {
			continue
		}
		for _, ve := range list {
			if read && !v.done && v.inRound[ve.part] && round >= v.n {
				continue // this round is applied to the document already
			}
			add(id, ve.e)
		}
	}
}

// overtaken notes a document read that carries a round newer than the view.
func (v *view) overtaken(round int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if round > v.n {
		v.stale = true
	}
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
