package logstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Second rollups were kept in one collection per hour of their time
// (rollups_second_<yyyymmddhh>), and before that in the single
// rollups_second. The fold now keeps them as one document per minute
// (rollups_minute_seconds, derived.go); the hourly collections and the single
// one are read only by the backfill of a store written before that, and
// retention drops them as they age out. Rollup parts still name their
// seconds under CollSeconds.

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
