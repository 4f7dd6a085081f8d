package e2e_test

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/logd/logstore"
)

// requestLogs reads every request log logd stored, from its buckets (and
// rows of earlier versions): a scan, as a test reads the store behind logd.
func requestLogs(ctx context.Context, db *mongo.Database) ([]logstore.RequestLog, error) {
	return logstore.ReadRequestLogs(ctx, db)
}

// countRequestLogs counts the stored request logs keep selects (all when nil).
func countRequestLogs(ctx context.Context, db *mongo.Database, keep func(*logstore.RequestLog) bool) (int64, error) {
	rows, err := requestLogs(ctx, db)
	if err != nil {
		return 0, err
	}
	var n int64
	for i := range rows {
		if keep == nil || keep(&rows[i]) {
			n++
		}
	}
	return n, nil
}
