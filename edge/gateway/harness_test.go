package gateway_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/edge/gateway"
	"github.com/gemini-balance-go/edge/internal/edgetest"
	"github.com/gemini-balance-go/edge/internal/keydtest"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

const token = edgetest.Token

// env is a running edge (edgetest): embedded NATS, a keyd peer, the fake
// Gemini upstream and the gateway on a loopback HTTP server.
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
	x := edgetest.Start(t, edgetest.Options{Keys: map[string][]string{bus.KindGemini: o.gemini, bus.KindVertex: o.vertex}, Settings: o.settings})
	return &env{t: t, nc: x.NC, js: x.JS, fake: x.Fake, keyd: x.Keyd, settings: x.Settings, gw: x.Gateway, url: x.URL}
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
