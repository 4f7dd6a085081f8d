// Package edgetest runs a whole edge for the gateway's and the OpenAI
// routes' tests: embedded NATS with the bus provisioned, a minimal keyd peer
// serving the given keys, the fake Gemini upstream, and the gateway on a
// loopback HTTP server, all stopped when the test ends.
//
//	e := edgetest.Start(t, edgetest.Options{Keys: map[string][]string{bus.KindGemini: {"AIza…"}}})
//	res, _ := http.Post(e.URL+"/v1beta/models/gemini-2.5-flash:generateContent", …)
//	e.Fake.Hits("AIza…")
package edgetest

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/edge/gateway"
	"github.com/gemini-balance-go/edge/internal/keydtest"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/testkit/fakegemini"
	"github.com/gemini-balance-go/testkit/natstest"
)

// Token is the client token the edge accepts (ALLOWED_TOKENS).
const Token = "sk-client-token-0123456789abcdef"

// Options shape the edge under test.
type Options struct {
	// Keys are the upstream keys keyd serves, by kind (bus.KindGemini,
	// bus.KindVertex, bus.KindPaid); the fake upstream accepts all of them.
	Keys map[string][]string
	// Settings adjusts the settings last; the upstream URLs and the token
	// are set already.
	Settings func(*config.Settings)
}

// Edge is a running edge.
type Edge struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Fake     *fakegemini.Server
	Keyd     *keydtest.Keyd
	Settings *natsx.Settings
	Gateway  *gateway.Gateway
	URL      string // the gateway's base URL
}

// Start runs an edge until the test ends.
func Start(t testing.TB, o Options) *Edge {
	t.Helper()
	b := natstest.StartBus(t)
	var all []string
	for _, keys := range o.Keys {
		all = append(all, keys...)
	}
	fake := fakegemini.Start(t, fakegemini.Options{Keys: all})
	kd, err := keydtest.Start(b.NC, o.Keys)
	if err != nil {
		t.Fatal(err)
	}
	st := config.Defaults()
	st.BaseURL = fake.URL
	st.VertexExpressBaseURL = fake.URL + "/v1beta1/publishers/google"
	st.AllowedTokens = []string{Token}
	if o.Settings != nil {
		o.Settings(&st)
	}
	settings := natsx.NewSettings(st)
	infra, _ := config.LoadInfra()
	infra.Replica = "test"
	gw, err := gateway.New(gateway.Deps{NC: b.NC, JS: b.JS, Settings: settings, Infra: infra,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = gw.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return &Edge{NC: b.NC, JS: b.JS, Fake: fake, Keyd: kd, Settings: settings, Gateway: gw, URL: srv.URL}
}
