package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/embedded/natsd"
	"github.com/gemini-balance-go/edge/gateway"
	"github.com/gemini-balance-go/edge/internal/keydtest"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

const token = "sk-client-token-0123456789abcdef"

// env is a running edge: embedded NATS, a keyd peer, the fake Gemini
// upstream and the gateway on a loopback HTTP server.
type env struct {
	t        testing.TB
	nc       *nats.Conn
	js       jetstream.JetStream
	fake     *fakegemini.Server
	keyd     *keydtest.Keyd
	settings *natsx.Settings
	gw       *gateway.Gateway
	url      string
}

type envOptions struct {
	gemini   []string // upstream keys in the pool
	vertex   []string
	settings func(*config.Settings)
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.gemini == nil {
		o.gemini = []string{"AIzaSyGOOD-key-0000000000000000000001"}
	}
	_, nc, js := natsd.StartBusForTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	fake := fakegemini.Start(t, fakegemini.Options{Keys: append(append([]string{}, o.gemini...), o.vertex...)})
	kd, err := keydtest.Start(nc, map[string][]string{bus.KindGemini: o.gemini, bus.KindVertex: o.vertex})
	if err != nil {
		t.Fatal(err)
	}
	st := config.Defaults()
	st.BaseURL = fake.URL
	st.VertexExpressBaseURL = fake.URL + "/v1beta1/publishers/google"
	st.AllowedTokens = []string{token}
	if o.settings != nil {
		o.settings(&st)
	}
	settings := natsx.NewSettings(st)
	infra, _ := config.LoadInfra()
	infra.Replica = "test"
	gw, err := gateway.New(gateway.Deps{NC: nc, JS: js, Settings: settings, Infra: infra,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = gw.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, nc: nc, js: js, fake: fake, keyd: kd, settings: settings, gw: gw, url: srv.URL}
}

// client is the official Google SDK pointed at the gateway with a client token.
func (e *env) client(tok string) *genai.Client {
	e.t.Helper()
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: tok, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: e.url + "/", APIVersion: "v1beta"},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// post sends a raw request with the client token in the x-goog-api-key header.
func (e *env) post(path, body string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+path, stringsReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-goog-api-key", token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func ctxTimeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
