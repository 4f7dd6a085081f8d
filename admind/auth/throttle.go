package auth

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// FailuresCollection holds recent failed password attempts, one document each.
const FailuresCollection = "admin_login_failures"

// Limiter counts failed password attempts per client address over a sliding
// window, in MongoDB, so every admind replica sees the same count: an
// attacker gets Max guesses per Window whichever replica answers. Nothing is
// held in memory; the collection holds at most the failures of the last
// Window (older ones are deleted on each failure), and failures arrive no
// faster than the password hash runs.
type Limiter struct {
	coll   *mongo.Collection
	Max    int           // failures allowed per Window (10)
	Window time.Duration // 15 minutes
	Now    func() time.Time
}

type failure struct {
	Addr string    `bson:"addr"`
	At   time.Time `bson:"at"`
}

// NewLimiter returns the login limiter on db: 10 failures per 15 minutes.
func NewLimiter(db *mongo.Database) *Limiter {
	return &Limiter{coll: db.Collection(FailuresCollection), Max: 10, Window: 15 * time.Minute, Now: time.Now}
}

// EnsureIndexes creates the index the queries use (idempotent).
func (l *Limiter) EnsureIndexes(ctx context.Context) error {
	_, err := l.coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "addr", Value: 1}, {Key: "at", Value: -1}}})
	if err != nil {
		return fmt.Errorf("index %s: %w", FailuresCollection, err)
	}
	return nil
}

// Blocked reports whether addr used up its failures, and for how long: until
// the oldest of its last Max failures leaves the window.
func (l *Limiter) Blocked(ctx context.Context, addr string) (time.Duration, bool, error) {
	now := l.Now().UTC()
	cur, err := l.coll.Find(ctx, bson.M{"addr": addr, "at": bson.M{"$gt": now.Add(-l.Window)}},
		options.Find().SetSort(bson.D{{Key: "at", Value: -1}}).SetLimit(int64(l.Max)))
	if err != nil {
		return 0, false, fmt.Errorf("count failed logins: %w", err)
	}
	var recent []failure
	if err := cur.All(ctx, &recent); err != nil {
		return 0, false, fmt.Errorf("count failed logins: %w", err)
	}
	if len(recent) < l.Max {
		return 0, false, nil
	}
	return max(time.Second, recent[l.Max-1].At.Add(l.Window).Sub(now)), true, nil
}

// Fail records a failed attempt from addr and drops failures past the window.
func (l *Limiter) Fail(ctx context.Context, addr string) error {
	now := l.Now().UTC().Truncate(time.Millisecond)
	if _, err := l.coll.InsertOne(ctx, failure{Addr: addr, At: now}); err != nil {
		return fmt.Errorf("record failed login: %w", err)
	}
	_, _ = l.coll.DeleteMany(ctx, bson.M{"at": bson.M{"$lte": now.Add(-l.Window)}})
	return nil
}

// Reset forgets addr's failures (after a successful login).
func (l *Limiter) Reset(ctx context.Context, addr string) error {
	if _, err := l.coll.DeleteMany(ctx, bson.M{"addr": addr}); err != nil {
		return fmt.Errorf("reset failed logins: %w", err)
	}
	return nil
}
