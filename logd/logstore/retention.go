package logstore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/mongox"
)

// BatchJournalAge is how long folded-part journal entries are kept: longer
// than the events stream keeps messages, so any redelivery still finds its part.
const BatchJournalAge = 7 * 24 * time.Hour

// MinuteRollupAge is how long minute rollups are kept: the dashboard's
// longest minute-resolved window is the first hour of the last 24 hours.
const MinuteRollupAge = 48 * time.Hour

// SecondRollupAge is how long second rollups are kept: they serve the
// partial minutes at the edges of windows ending now, the oldest of which is
// the first minute of the last 24 hours.
const SecondRollupAge = 25 * time.Hour

// Retain deletes what the settings say is too old, as of now: request logs
// and error logs when their AUTO_DELETE_* switch is on, rollups past
// ROLLUP_RETENTION_DAYS (by hour bucket) and old folded-part journal entries.
func (s *Store) Retain(ctx context.Context, set *config.Settings, now time.Time) (logapi.RetentionReply, error) {
	now = now.UTC()
	var out logapi.RetentionReply
	if set.AutoDeleteRequestLogsEnabled && set.AutoDeleteRequestLogsDays > 0 {
		cut := now.AddDate(0, 0, -set.AutoDeleteRequestLogsDays)
		n, err := s.deleteRequestLogs(ctx, rowQuery{To: cut})
		if err != nil {
			return out, fmt.Errorf("delete request logs before %s: %w", cut, err)
		}
		out.RequestLogs = n
		if err := s.deleteRecent(ctx, nil, false, cut); err != nil {
			return out, err
		}
	}
	// Copies older than the watermark (stragglers, see recent.go) go too.
	if w, err := s.recentFrom(ctx); err != nil {
		return out, err
	} else if !w.IsZero() {
		if err := s.deleteRecent(ctx, nil, false, w); err != nil {
			return out, err
		}
	}
	if set.AutoDeleteErrorLogsEnabled && set.AutoDeleteErrorLogsDays > 0 {
		cut := now.AddDate(0, 0, -set.AutoDeleteErrorLogsDays)
		res, err := s.errors.DeleteMany(ctx, bson.M{"t": bson.M{"$lt": cut}})
		if err != nil {
			return out, fmt.Errorf("delete error logs before %s: %w", cut, err)
		}
		out.ErrorLogs = res.DeletedCount
		if err := s.unindexErrorsBefore(ctx, cut); err != nil {
			return out, err
		}
	}
	rollupCut := ""
	if set.RollupRetentionDays > 0 {
		rollupCut = mongox.HourBucket(now.AddDate(0, 0, -set.RollupRetentionDays))
		res, err := s.rollups.DeleteMany(ctx, bson.M{"h": bson.M{"$lt": rollupCut}})
		if err != nil {
			return out, fmt.Errorf("delete rollups before %s: %w", rollupCut, err)
		}
		out.Rollups = res.DeletedCount
	}
	dn, err := s.retainDerived(ctx, now, rollupCut)
	if err != nil {
		return out, err
	}
	out.Rollups += dn
	mres, err := s.minutes.DeleteMany(ctx, bson.M{"_id": bson.M{"$lt": MinuteBucket(now.Add(-MinuteRollupAge))}})
	if err != nil {
		return out, fmt.Errorf("delete minute rollups: %w", err)
	}
	out.Rollups += mres.DeletedCount
	sres, err := s.seconds.DeleteMany(ctx, bson.M{"_id": bson.M{"$lt": SecondBucket(now.Add(-SecondRollupAge))}})
	if err != nil {
		return out, fmt.Errorf("delete second rollups: %w", err)
	}
	out.Rollups += sres.DeletedCount
	if err := s.dropSecondsBefore(ctx, now.Add(-SecondRollupAge)); err != nil {
		return out, err
	}
	res, err := s.folded.DeleteMany(ctx, bson.M{"t": bson.M{"$lt": now.Add(-BatchJournalAge)}})
	if err != nil {
		return out, fmt.Errorf("delete folded parts journal: %w", err)
	}
	out.Batches = res.DeletedCount
	if _, err := s.roundsColl.DeleteMany(ctx, bson.M{"at": bson.M{"$lt": now.Add(-BatchJournalAge)}}); err != nil {
		return out, fmt.Errorf("delete old fold rounds: %w", err)
	}
	return out, nil
}
