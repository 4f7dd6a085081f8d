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

// Token rollups (rollups_token_hours, rollups_token_days): every client
// token's counters per hour and per day, one document each (_id the hour or
// day; field "t_<token>" = its counters, and in a day document "l_<token>" =
// the last hour it was used). Derived rollups like the month-day ones
// (monthdays.go): the fold $incs them in the rollups' round under the same
// guard, queries add the parts not yet folded, Backfill writes them for a
// store that had none.
//
// The tokens page asks every token's use over 24 hours and 30 days. From the
// hourly rollups that was a read of the token-level documents of one or two
// months, which FerretDB/SQLite answers by decoding every hourly rollup kept
// (2.3–4.2 s at 100,000 requests a day); now it is the hours of the window's
// first and last day and the days between, at most 80 documents by _id.

// Token rollup collections.
const (
	CollTokenHours = "rollups_token_hours"
	CollTokenDays  = "rollups_token_days"
)

// TokenRollupAge is how long token rollups are kept: the tokens page reads
// the last 30 days, its first day by hour.
const TokenRollupAge = (tokenUsageDays + 1) * 24 * time.Hour

// tokenOfRollup returns the hour and token of a token-level hourly rollup
// _id (hour|*|*|token).
func tokenOfRollup(id string) (hour, token string, ok bool) {
	f := strings.SplitN(id, "|", 4)
	if len(f) != 4 || len(f[0]) != 13 || f[1] != Any || f[2] != Any || f[3] == Any {
		return "", "", false
	}
	return f[0], f[3], true
}

// tokenDoc is one token rollup document, as read.
type tokenDoc struct {
	round  int64
	counts map[string]Counters // token → counters
	last   map[string]string   // token → last hour used (day documents)
}

// tokenSums sums token-level hourly counters into hour and day documents,
// and notes each day's last hour a token was used.
type tokenSums struct {
	hours, days fieldSums
	last        map[string]map[string]string // day → token field → hour
}

func newTokenSums() *tokenSums {
	return &tokenSums{hours: fieldSums{}, days: fieldSums{}, last: map[string]map[string]string{}}
}

func (t *tokenSums) add(rollupID string, c Counters) {
	hour, tok, ok := tokenOfRollup(rollupID)
	if !ok {
		return
	}
	f := "t_" + keyField.Replace(tok)
	t.hours.add(hour, f, c)
	t.days.add(hour[:10], f, c)
	if c.Requests > 0 {
		if t.last[hour[:10]] == nil {
			t.last[hour[:10]] = map[string]string{}
		}
		t.last[hour[:10]][f] = max(t.last[hour[:10]][f], hour)
	}
}

// lastFields are a day's last-used fields ("l_<token>": hour).
func (t *tokenSums) lastFields(day string) bson.D {
	var out bson.D
	for f, h := range t.last[day] {
		out = append(out, bson.E{Key: "l_" + f[2:], Value: h})
	}
	return out
}

// tokenIncs are what a fold round adds to the token rollups.
func tokenIncs(hourly map[string]*delta) (hours, days map[string]*incDoc) {
	t := newTokenSums()
	for id, d := range hourly {
		t.add(id, d.c)
	}
	days = t.days.incs(nil)
	for day, d := range days {
		d.max = t.lastFields(day) // $max: a round finished again sets the same
	}
	return t.hours.incs(nil), days
}

// tokenDocs reads the token rollup documents of coll with these _ids (hours
// or days), with the view's parts added.
func (s *Store) tokenDocs(ctx context.Context, coll string, ids []string) (map[string]*tokenDoc, error) {
	v, err := s.viewOf(ctx)
	if err != nil {
		return nil, err
	}
	raws, err := s.docsByID(ctx, s.db.Collection(coll), ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*tokenDoc, len(ids))
	for _, id := range ids {
		out[id] = &tokenDoc{counts: map[string]Counters{}, last: map[string]string{}}
	}
	read := map[string]bool{}
	for _, raw := range raws {
		id, _ := raw.Lookup("_id").StringValueOK()
		d := out[id]
		if d == nil {
			continue
		}
		read[id] = true
		elems, err := raw.Elements()
		if err != nil {
			return nil, fmt.Errorf("read token rollups %s: %w", id, err)
		}
		for _, e := range elems {
			k := e.Key()
			switch {
			case k == "fr":
				d.round, _ = e.Value().AsInt64OK()
			case strings.HasPrefix(k, "t_"):
				var c Counters
				if err := e.Value().Unmarshal(&c); err != nil {
					return nil, fmt.Errorf("read token rollups %s: %w", id, err)
				}
				d.counts[fieldKey.Replace(k[2:])] = c
			case strings.HasPrefix(k, "l_"):
				d.last[fieldKey.Replace(k[2:])], _ = e.Value().StringValueOK()
			}
		}
		v.overtaken(d.round)
	}
	day := coll == CollTokenDays
	target := func(rollupID string) (doc, hour, tok string, ok bool) {
		hour, tok, ok = tokenOfRollup(rollupID)
		if !ok {
			return "", "", "", false
		}
		doc = hour
		if day {
			doc = hour[:10]
		}
		_, want := out[doc]
		return doc, hour, tok, want
	}
	v.pending(CollRollups, func(id string) (int64, bool, bool) {
		doc, _, _, ok := target(id)
		if !ok {
			return 0, false, false
		}
		return out[doc].round, read[doc], true
	}, func(id string, e *entry) {
		doc, hour, tok, _ := target(id)
		d := out[doc]
		c := d.counts[tok]
		c.Add(e.Counters)
		d.counts[tok] = c
		if day && e.Counters.Requests > 0 && hour > d.last[tok] {
			d.last[tok] = hour
		}
	})
	return out, nil
}

// docsByID reads the documents of coll with these _ids: one lookup each on
// FerretDB/SQLite (an $in is a scan there), one $in elsewhere (on
// FerretDB/PostgreSQL every read is a scan, so one beats many).
func (s *Store) docsByID(ctx context.Context, coll *mongo.Collection, ids []string) ([]bson.Raw, error) {
	byID, err := s.guardByLookup(ctx)
	if err != nil {
		return nil, err
	}
	if !byID {
		cur, err := coll.Find(ctx, bson.M{"_id": bson.M{"$in": ids}})
		if err != nil {
			return nil, fmt.Errorf("find %s: %w", coll.Name(), err)
		}
		var out []bson.Raw
		if err := cur.All(ctx, &out); err != nil {
			return nil, fmt.Errorf("read %s: %w", coll.Name(), err)
		}
		return out, nil
	}
	return lookupEach(ctx, coll, ids)
}

// backfillTokens writes the token rollups of the last TokenRollupAge whole
// from the token-level hourly rollups, in backfill round n.
func (s *Store) backfillTokens(ctx context.Context, n int64) error {
	cut := mongox.HourBucket(s.now().UTC().Add(-TokenRollupAge))
	cur, err := s.rollups.Find(ctx, bson.M{"k": Any, "mo": Any}, options.Find().SetBatchSize(backfillBatch))
	if err != nil {
		return fmt.Errorf("backfill token rollups: %w", err)
	}
	var docs []Rollup
	if err := cur.All(ctx, &docs); err != nil {
		return fmt.Errorf("backfill token rollups: %w", err)
	}
	t := newTokenSums()
	for _, r := range docs {
		if hour, _, ok := tokenOfRollup(r.ID); ok && hour >= cut {
			t.add(r.ID, r.Counters)
		}
	}
	for coll, docs := range map[string]map[string]any{CollTokenHours: t.hours.whole(n, nil), CollTokenDays: t.days.whole(n, t.lastFields)} {
		if err := backfillWrite(ctx, s.db.Collection(coll), n, docs); err != nil {
			return fmt.Errorf("backfill token rollups: %w", err)
		}
	}
	return nil
}

// retainTokens deletes token rollups older than TokenRollupAge (or the
// rollup cut, when later).
func (s *Store) retainTokens(ctx context.Context, now time.Time, rollupCut string) (int64, error) {
	cut := retentionCut(now, TokenRollupAge, rollupCut)
	var n int64
	for coll, c := range map[string]string{CollTokenHours: cut, CollTokenDays: cut[:10]} {
		res, err := s.db.Collection(coll).DeleteMany(ctx, bson.M{"_id": bson.M{"$lt": c}})
		if err != nil {
			return n, fmt.Errorf("delete %s before %s: %w", coll, c, err)
		}
		n += res.DeletedCount
	}
	return n, nil
}
