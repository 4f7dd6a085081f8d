// Package ferret runs FerretDB embedded: a MongoDB wire-protocol server on
// SQLite (or PostgreSQL). The all-in-one uses it when MONGO_URI is not set,
// tests use it as their MongoDB (through testkit/storetest), and cmd/gb-store runs it as a process.
package ferret

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Options say where FerretDB keeps its data and where it listens.
type Options struct {
	// Listen is the TCP address; empty means 127.0.0.1 on a free port,
	// unless Unix is set.
	Listen string
	// Unix, when set, is the path of a Unix socket to listen on instead of
	// TCP: only users who may enter its directory can connect (FerretDB has
	// no authentication of its own on SQLite). It must end in ".sock".
	Unix string
	// DataDir holds the SQLite databases; created if missing. Ignored when
	// PostgresURL is set.
	DataDir string
	// PostgresURL selects the PostgreSQL handler, e.g. "postgres://u:p@host:5432/ferretdb".
	PostgresURL string
	// Logger receives FerretDB's own logs; default discards all but errors.
	Logger *slog.Logger
	// NoIDIndex names the collections that get no _id lookup index on SQLite
	// (see idindex.go): ones only ever inserted and scanned, where the index
	// would only cost inserts. Nil indexes every collection.
	NoIDIndex func(collection string) bool
}

// Store is a running embedded FerretDB.
type Store struct {
	// URI is the MongoDB URI clients connect to.
	URI  string
	stop context.CancelFunc
	done chan struct{}
}

// Start starts FerretDB. It runs until ctx ends or Stop is called.
func Start(ctx context.Context, o Options) (*Store, error) {
	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: o.Listen, Unix: o.Unix},
		Logger:   o.Logger,
	}
	if cfg.Listener.TCP == "" && o.Unix == "" {
		cfg.Listener.TCP = "127.0.0.1:0"
	}
	if o.Unix != "" {
		if !strings.HasSuffix(o.Unix, ".sock") {
			return nil, fmt.Errorf("ferret: unix socket %q must end in .sock", o.Unix)
		}
		// A socket path longer than sun_path (108 bytes on Linux) cannot be bound.
		if len(o.Unix) >= 104 {
			return nil, fmt.Errorf("ferret: unix socket path %q is longer than 103 bytes; use a shorter directory", o.Unix)
		}
		_ = os.Remove(o.Unix) // a socket left by a killed process
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	cfg.Logger = slog.New(lazyAttrs{h: cfg.Logger.Handler()})
	var sqliteDir string // the SQLite handler's directory
	switch {
	case o.PostgresURL != "":
		cfg.Handler = "postgresql"
		cfg.PostgreSQLURL = o.PostgresURL
	case o.DataDir != "":
		var err error
		sqliteDir, err = filepath.Abs(o.DataDir)
		if err != nil {
			return nil, fmt.Errorf("ferret: data dir: %w", err)
		}
		if err := os.MkdirAll(sqliteDir, 0o700); err != nil {
			return nil, fmt.Errorf("ferret: create data dir: %w", err)
		}
		cfg.Handler = "sqlite"
		cfg.SQLiteURL = sqliteURL(sqliteDir)
	default:
		return nil, errors.New("ferret: DataDir or PostgresURL is required")
	}
	f, err := ferretdb.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("ferret: start on %s: %w", cfg.Listener.TCP, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Store{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		var indexer sync.WaitGroup
		if cfg.Handler == "sqlite" {
			indexer.Go(func() { keepIDIndexes(ctx, sqliteDir, o.NoIDIndex, cfg.Logger) })
		}
		_ = f.Run(ctx)
		cancel()
		indexer.Wait() // no file of DataDir stays open once Stop returns
	}()
	// The listener is bound by New, so the address is known already.
	s.URI = f.MongoDBURI()
	if o.Unix != "" && o.Listen == "" {
		// The driver wants the socket path escaped in the host part.
		s.URI = "mongodb://" + url.PathEscape(o.Unix) + "/"
	}
	return s, nil
}

// sqlitePragmas are set on every connection FerretDB opens to its SQLite
// files, beside its own (busy_timeout, journal_mode(wal), auto_vacuum).
//
// synchronous(normal): in WAL mode a commit no longer waits for an fsync. A
// commit still survives a crash of the process (kill -9, out of memory, a
// panic), which is what logd's acks promise; only a power loss or kernel
// crash can take the last commits, as it can take the last events from
// JetStream's own file store, which fsyncs every two minutes by default. The
// fsync per commit cost the all-in-one about a fifth of its CPU per request
// (docs/ARCHITECTURE.md, "FerretDB pitfalls").
//
// cache_size(-256): each connection keeps its own page cache (SQLite's
// default is 2 MB), and FerretDB's pool holds about twenty connections under
// load, so the default let the caches grow to tens of megabytes of the
// all-in-one's memory. The pages are in the operating system's file cache
// anyway; 256 KiB holds the b-tree pages an insert or an _id lookup walks.
var sqlitePragmas = []string{"synchronous(normal)", "cache_size(-256)"}

// sqliteURL is FerretDB's SQLite URL for dir: a directory URI with a
// trailing slash, then the pragmas.
func sqliteURL(dir string) string {
	q := url.Values{}
	for _, p := range sqlitePragmas {
		q.Add("_pragma", p)
	}
	return "file:" + filepath.ToSlash(dir) + "/?" + q.Encode()
}

// Stop stops FerretDB and waits until its backend is closed.
func (s *Store) Stop() {
	s.stop()
	<-s.done
}

// Done is closed once FerretDB has stopped.
func (s *Store) Done() <-chan struct{} { return s.done }

// StartForTest starts FerretDB on SQLite in t.TempDir() on a random port,
// stops it when the test ends, and returns its MongoDB URI. Tests use
// testkit/storetest; logd/logstore's benchmark still calls this.
func StartForTest(t testing.TB) string {
	t.Helper()
	s, err := Start(context.Background(), Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded ferretdb: %v", err)
	}
	t.Cleanup(s.Stop)
	return s.URI
}
