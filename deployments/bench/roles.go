package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// roles are the processes this binary runs as, by their first argument;
// each prints "LISTEN <url>" on stdout once it serves.
var roles = map[string]func(args []string) error{
	"fake":  func([]string) error { return serveFake() },
	"floor": func(a []string) error { return serveFloor(a[0], splitKeys(a[1])) },
	"edge":  func(a []string) error { return serveEdgeOnly(a[0], splitKeys(a[1]), a[2]) },
	"gb":    func(a []string) error { return serveAllInOne(a[0]) },
}

// serveFake runs the fake upstream (counters only, any key accepted).
func serveFake() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := fakegemini.New(fakegemini.Options{AcceptUnknownKeys: true, RecordLimit: -1})
	fmt.Printf("LISTEN http://%s\n", l.Addr())
	return s.Serve(ctx, l)
}

// serveFloor runs the floor: a bare httputil.ReverseProxy that swaps the
// client's credential for an upstream key (round robin), flushes at once and
// runs in full duplex (golang/go#40747).
func serveFloor(upstream string, keys []string) error {
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	var n atomic.Uint64
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			q := pr.Out.URL.Query()
			if q.Has("key") {
				q.Del("key")
				pr.Out.URL.RawQuery = q.Encode()
			}
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Set("x-goog-api-key", keys[n.Add(1)%uint64(len(keys))])
		},
		Transport:     relay.NewTransport(),
		FlushInterval: -1,
		// wrk ends by closing its connections mid-request: not worth a line each.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	fmt.Printf("LISTEN http://%s\n", l.Addr())
	if err := srv.Serve(l); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func splitKeys(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' })
}
