package openai_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gemini-balance-go/edge/internal/edgetest"
	"github.com/gemini-balance-go/edge/internal/keydtest"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/testkit/fakegemini"
	"github.com/gemini-balance-go/testkit/wait"
)

const token = edgetest.Token

// env is a running edge gateway (edgetest: embedded NATS, a keyd peer, the
// fake Gemini upstream) with the OpenAI routes, on a loopback HTTP server.
type env struct {
	t        testing.TB
	nc       *nats.Conn
	fake     *fakegemini.Server
	keyd     *keydtest.Keyd
	settings *natsx.Settings
	url      string
}

type envOptions struct {
	keys     []string // upstream keys in the pool; nil means one good key
	paid     []string // PAID_KEY (keyd's paid pool)
	settings func(*config.Settings)
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.keys == nil {
		o.keys = []string{"AIzaSyGOOD-key-0000000000000000000001"}
	}
	x := edgetest.Start(t, edgetest.Options{Keys: map[string][]string{bus.KindGemini: o.keys, bus.KindPaid: o.paid},
		Settings: func(st *config.Settings) {
			st.ThinkingModels = []string{"gemini-2.5-flash", "gemini-2.5-pro"}
			st.MaxRetries = 2
			if o.settings != nil {
				o.settings(st)
			}
		}})
	return &env{t: t, nc: x.NC, fake: x.Fake, keyd: x.Keyd, settings: x.Settings, url: x.URL}
}

// client is the official OpenAI SDK pointed at the gateway; SDK retries are
// off so an error reaches the test as the gateway sent it.
func (e *env) client(prefix, tok string) oai.Client {
	return oai.NewClient(option.WithBaseURL(e.url+prefix), option.WithAPIKey(tok), option.WithMaxRetries(0))
}

// lastBody is the JSON body of the last upstream call of a method.
func (e *env) lastBody(method string) map[string]any {
	e.t.Helper()
	r, ok := e.fake.Last(fakegemini.Filter{Method: method})
	if !ok {
		e.t.Fatalf("no upstream %s call recorded", method)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		e.t.Fatalf("upstream %s body: %v", method, err)
	}
	return m
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dig walks a decoded JSON value by keys and indexes.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// postRaw sends a raw request with the client token as Bearer.
func (e *env) postRaw(path, body string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventually waits for an asynchronous effect (wait.For).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	wait.For(t, what, cond)
}
