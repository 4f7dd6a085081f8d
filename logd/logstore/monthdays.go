package logstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Month-day rollups (rollups_month_days): one document per month holding
// each day's overall counters (_id "2026-11", field d27 = the 27th), a
// derived rollup like the minute-second ones (derived.go): the fold $incs it
// in the same round and under the same guard as the overall hourly rollups,
// queries add the parts not yet folded, and Backfill writes it for a store
// that had none. The overview's month total and the logs page's estimated
// total read it: from the hourly rollups they took a read of every overall
// hour of the month or of all time, which FerretDB/SQLite answers by
// decoding every hourly rollup kept (1.5–2 s at 100,000 requests a day, and
// growing with ROLLUP_RETENTION_DAYS). Retention deletes a month once the
// rollup retention has passed its end.

// CollMonthDays holds the month-day rollups.
const CollMonthDays = "rollups_month_days"

// dayField is an hour bucket's day field in its month document ("d27").
func dayField(hour string) string { return "d" + hour[8:10] }

// overallHour returns the hour of an overall hourly rollup _id (hour|*|*|*).
func overallHour(id string) (string, bool) {
	hour, rest, ok := strings.Cut(id, "|")
	return hour, ok && rest == Any+"|"+Any+"|"+Any && len(hour) == 13
}

// monthDayIncs adds a round's overall hourly deltas to their month
// documents, summed by day (one $inc per field and update).
func monthDayIncs(hourly map[string]*delta) map[string]*incDoc {
	sums := fieldSums{}
	for id, d := range hourly {
		if hour, ok := overallHour(id); ok {
			sums.add(hour[:7], dayField(hour), d.c)
		}
	}
	return sums.incs(nil)
}

// monthDays returns each day's overall counters (day bucket → counters) of
// the months given (all stored months when none), with the view's parts
// added.
func (s *Store) monthDays(ctx context.Context, months ...string) (map[string]Counters, error) {
	v, err := s.viewOf(ctx)
	if err != nil {
		return nil, err
	}
	coll := s.db.Collection(CollMonthDays)
	var raws []bson.Raw
	if len(months) == 0 {
		cur, err := coll.Find(ctx, bson.M{})
		if err != nil {
			return nil, fmt.Errorf("find month-day rollups: %w", err)
		}
		if err := cur.All(ctx, &raws); err != nil {
			return nil, fmt.Errorf("read month-day rollups: %w", err)
		}
	}
	for _, m := range months {
		var raw bson.Raw
		err := coll.FindOne(ctx, bson.M{"_id": m}).Decode(&raw)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("find month-day rollups of %s: %w", m, err)
		}
		raws = append(raws, raw)
	}
	out := map[string]Counters{}
	rounds := map[string]int64{} // month → its document's round
	for _, raw := range raws {
		month, _ := raw.Lookup("_id").StringValueOK()
		if len(month) != 7 {
			continue
		}
		elems, err := raw.Elements()
		if err != nil {
			return nil, fmt.Errorf("read month-day rollups of %s: %w", month, err)
		}
		for _, e := range elems {
			k := e.Key()
			switch {
			case k == "fr":
				rounds[month], _ = e.Value().AsInt64OK()
			case len(k) == 3 && k[0] == 'd':
				var c Counters
				if err := e.Value().Unmarshal(&c); err != nil {
					return nil, fmt.Errorf("read month-day rollups of %s: %w", month, err)
				}
				out[month+"-"+k[1:]] = c
			}
		}
		v.overtaken(rounds[month])
	}
	v.pending(CollRollups, func(id string) (int64, bool, bool) {
		hour, ok := overallHour(id)
		if !ok || (len(months) > 0 && !containsStr(months, hour[:7])) {
			return 0, false, false
		}
		round, read := rounds[hour[:7]]
		return round, read, true
	}, func(id string, e *entry) {
		day := id[:10]
		c := out[day]
		c.Add(e.Counters)
		out[day] = c
	})
	return out, nil
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// backfillMonthDays writes every month's document whole from the overall
// hourly rollups, in backfill round n.
func (s *Store) backfillMonthDays(ctx context.Context, n int64) error {
	cur, err := s.rollups.Find(ctx, level("", "", ""), options.Find().SetBatchSize(backfillBatch))
	if err != nil {
		return fmt.Errorf("backfill month-day rollups: %w", err)
	}
	var hours []Rollup
	if err := cur.All(ctx, &hours); err != nil {
		return fmt.Errorf("backfill month-day rollups: %w", err)
	}
	sums := fieldSums{}
	for _, r := range hours {
		if hour, ok := overallHour(r.ID); ok {
			sums.add(hour[:7], dayField(hour), r.Counters)
		}
	}
	if err := backfillWrite(ctx, s.db.Collection(CollMonthDays), n, sums.whole(n, nil)); err != nil {
		return fmt.Errorf("backfill month-day rollups: %w", err)
	}
	return nil
}
