// Package mongox connects to MongoDB and holds the few helpers that keep
// queries inside what both MongoDB and FerretDB do (see DESIGN.md): bucket
// fields precomputed in Go instead of date operators, $inc upserts keyed by _id.
package mongox

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// Connect opens a client and checks it with a ping, retrying until ctx ends so
// a service may start before its database.
func Connect(ctx context.Context, uri, appName string) (*mongo.Client, error) {
	opts := options.Client().ApplyURI(uri).SetAppName(appName).
		SetServerSelectionTimeout(5 * time.Second).
		SetRetryWrites(true)
	cl, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongo connect: %w", err)
	}
	backoff := 100 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = cl.Ping(pctx, readpref.Primary())
		cancel()
		if err == nil {
			return cl, nil
		}
		select {
		case <-ctx.Done():
			_ = cl.Disconnect(context.Background())
			return nil, fmt.Errorf("mongo ping %s: %w", appName, err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// Ping checks reachability, for readiness probes.
func Ping(ctx context.Context, cl *mongo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return cl.Ping(ctx, readpref.Primary())
}

// Bucket fields are stored precomputed, in UTC, so queries never need date operators.

// HourBucket returns "2026-11-27T06".
func HourBucket(t time.Time) string { return t.UTC().Format("2006-01-02T15") }

// DayBucket returns "2026-11-27".
func DayBucket(t time.Time) string { return t.UTC().Format("2006-01-02") }

// MonthBucket returns "2026-11".
func MonthBucket(t time.Time) string { return t.UTC().Format("2006-01") }
