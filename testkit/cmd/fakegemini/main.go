// Command fakegemini serves the fake Gemini API on an address so a separate process
// (edge under an e2e test, a benchmark) can use it as BASE_URL. Program it through
// /_fake/ (see fakegemini.Remote).
//
//	fakegemini -addr 127.0.0.1:9000 -keys k1,k2 [-accept-any-key] [-strict-models]
//
// Flags default from FAKE_ADDR (or PORT), FAKE_KEYS, FAKE_ACCEPT_ANY_KEY, FAKE_BEHAVIOURS.
// It never logs keys: key strings only leave through /_fake/ responses.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

func main() {
	addr := flag.String("addr", envOr("FAKE_ADDR", portAddr()), "listen address")
	keys := flag.String("keys", os.Getenv("FAKE_KEYS"), "comma-separated keys that answer OK")
	anyKey := flag.Bool("accept-any-key", os.Getenv("FAKE_ACCEPT_ANY_KEY") == "true", "unknown keys answer OK instead of 400 API_KEY_INVALID")
	strict := flag.Bool("strict-models", false, "404 for models not in the list")
	behaviours := flag.String("behaviours", os.Getenv("FAKE_BEHAVIOURS"), `per-key behaviours as JSON, e.g. {"k3":{"status":"rate_limited","retryDelay":"2s"}}`)
	record := flag.Int("record", 2000, "requests kept for /_fake/requests (negative: counters only)")
	flag.Parse()

	var ks []string
	for _, k := range strings.FieldsFunc(*keys, func(r rune) bool { return r == ',' || r == '\n' || r == ' ' }) {
		ks = append(ks, k)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		slog.Error("listen", "addr", *addr, "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := fakegemini.New(fakegemini.Options{Keys: ks, AcceptUnknownKeys: *anyKey, StrictModels: *strict, RecordLimit: *record})
	if *behaviours != "" {
		var m map[string]fakegemini.Behaviour
		if err := json.Unmarshal([]byte(*behaviours), &m); err != nil {
			slog.Error("-behaviours / FAKE_BEHAVIOURS is not a JSON object of behaviours", "err", err)
			os.Exit(2)
		}
		for k, b := range m {
			s.SetKey(k, b)
		}
	}
	fmt.Printf("fakegemini listening on http://%s (%d keys)\n", l.Addr(), len(ks))
	if err := s.Serve(ctx, l); err != nil {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func portAddr() string {
	if p := os.Getenv("PORT"); p != "" {
		return "127.0.0.1:" + p
	}
	return "127.0.0.1:9000"
}
