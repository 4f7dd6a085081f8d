// Package storetest starts the real MongoDB-compatible store that component
// tests run against: FerretDB embedded (deployments/embedded/ferret) on
// SQLite in t.TempDir() or on a PostgreSQL database, on a free loopback
// port, stopped when the test ends.
//
//	db := storetest.Database(t, storetest.Start(t), "logd")
//	st := storetest.StartRestartable(t)          // outage tests: st.Stop(); st.Restart(t)
package storetest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/deployments/embedded/ferret"
)

// Start starts FerretDB on SQLite for one test and returns its MongoDB URI.
func Start(t testing.TB) string {
	t.Helper()
	return start(t, ferret.Options{DataDir: t.TempDir()}).URI
}

// StartIn starts FerretDB on SQLite with its data kept in dir (benchmarks
// that reuse a seeded store) and returns its MongoDB URI.
func StartIn(t testing.TB, dir string) string {
	t.Helper()
	return start(t, ferret.Options{DataDir: dir}).URI
}

// StartOnPostgres starts FerretDB on the PostgreSQL database at pgURL and
// returns its MongoDB URI. FerretDB's own logs are dropped: it logs every
// failed SQL statement, duplicate keys provoked on purpose included.
func StartOnPostgres(t testing.TB, pgURL string) string {
	t.Helper()
	return start(t, ferret.Options{PostgresURL: pgURL, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).URI
}

func start(t testing.TB, o ferret.Options) *ferret.Store {
	t.Helper()
	s, err := ferret.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("storetest: start embedded ferretdb: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Database connects to uri and returns the database name; the client
// disconnects when the test ends.
func Database(t testing.TB, uri, name string) *mongo.Database {
	t.Helper()
	cl, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatalf("storetest: connect to %s: %v", uri, err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl.Database(name)
}

// Restartable is a store that a test stops and starts again, on the same
// address and the same data, to play an outage.
type Restartable struct {
	URI       string
	dir, addr string
	store     *ferret.Store
}

// StartRestartable starts FerretDB on SQLite for one test that Stop and
// Restart can take down and bring back; it stops when the test ends.
func StartRestartable(t testing.TB) *Restartable {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	r := &Restartable{dir: t.TempDir(), addr: addr}
	r.Restart(t)
	r.URI = r.store.URI
	return r
}

// Stop stops the store and waits until its backend is closed.
func (r *Restartable) Stop() { r.store.Stop() }

// Restart starts the store again on its address and data.
func (r *Restartable) Restart(t testing.TB) {
	t.Helper()
	r.store = start(t, ferret.Options{DataDir: r.dir, Listen: r.addr})
}
