// Package recovery verifies keys with a live call to TEST_MODEL and consumes
// schedulerd's recover ticks. What a verdict does to a key is the service's
// business; this package only asks upstream and classifies the answer.
package recovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gemini-balance-go/keyd/pool"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/outcome"
	"github.com/gemini-balance-go/shared/proxies"
	"github.com/gemini-balance-go/shared/redact"
)

// Result is the verdict of one key's verification.
type Result struct {
	ID      string
	Hint    string
	Verdict outcome.Verdict
	Err     string // transport error or redacted upstream message
	Latency time.Duration
}

// OK reports whether the key answered the test call successfully.
func (r Result) OK() bool { return r.Verdict.Class == outcome.Success }

// Verifier makes the test call for keys, a bounded number at a time. Each
// call goes through the key's PROXIES entry (chosen as edge chooses it) and
// follows no redirect: a redirect would hand the key header to another host.
type Verifier struct {
	// Client makes the calls (its CheckRedirect is replaced); nil means one
	// with Transport and no timeout of its own.
	Client      *http.Client
	Settings    func() *config.Settings
	Concurrency int           // parallel calls; 8 when zero
	Timeout     time.Duration // per call; 30 s when zero
}

// Transport is the verifier's default transport: the key's proxy from the
// request context, else direct (never HTTP_PROXY from the environment,
// which edge does not use either).
var Transport http.RoundTripper = &http.Transport{
	Proxy:               proxies.FromContext,
	DialContext:         (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	ForceAttemptHTTP2:   true,
	MaxIdleConnsPerHost: 64,
	IdleConnTimeout:     90 * time.Second,
	TLSHandshakeTimeout: 10 * time.Second,
}

// NewClient is the verifier's client with an overall timeout per call.
func NewClient(timeout time.Duration) *http.Client {
	return &http.Client{Transport: Transport, Timeout: timeout, CheckRedirect: noRedirect}
}

// noRedirect makes the client return a redirect as the answer.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// testBody is the smallest valid generateContent request, as gemini-balance's
// check sends it (without the chat pipeline's injections).
var testBody = []byte(`{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":10}}`)

// Verify checks every key and returns one result per key, in order.
func (v *Verifier) Verify(ctx context.Context, keys []pool.Key) []Result {
	out := make([]Result, len(keys))
	n := v.Concurrency
	if n <= 0 {
		n = 8
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, k := range keys {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			out[i] = Result{ID: k.ID, Hint: k.Hint, Verdict: outcome.Verdict{Class: outcome.Canceled}, Err: ctx.Err().Error()}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = v.one(ctx, k)
		}()
	}
	wg.Wait()
	return out
}

func (v *Verifier) one(ctx context.Context, k pool.Key) Result {
	s := v.Settings()
	res := Result{ID: k.ID, Hint: k.Hint}
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx = proxies.WithKey(ctx, k.ID, s.Proxies, s.ProxiesConsistentHash, rand.IntN)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, testURL(s, k.Kind), bytes.NewReader(testBody))
	if err != nil {
		res.Verdict, res.Err = outcome.Verdict{Class: outcome.ConnError}, err.Error()
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-goog-api-key", k.Secret)
	for name, val := range s.CustomHeaders {
		req.Header.Set(name, val)
	}
	client := NewClient(0)
	if v.Client != nil {
		c := *v.Client
		c.CheckRedirect = noRedirect
		client = &c
	}
	start := time.Now()
	resp, err := client.Do(req)
	res.Latency = time.Since(start)
	if err != nil {
		class := outcome.ConnError
		if errors.Is(err, context.DeadlineExceeded) {
			class = outcome.Timeout
		}
		res.Verdict, res.Err = outcome.Verdict{Class: class}, redact.Secrets(err.Error(), k.Secret)
		return res
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// A failed verification, never a verdict on the key: the answer is
		// not Google's.
		res.Verdict = outcome.Verdict{Class: outcome.ClientError, Status: resp.StatusCode, Reason: "REDIRECT"}
		res.Err = fmt.Sprintf("%d redirect not followed (the key stays where it was)", resp.StatusCode)
		return res
	}
	res.Verdict = outcome.Classify(resp.StatusCode, body)
	if res.Verdict.Class != outcome.Success {
		// Mask first (keys, consumer metadata), cut after.
		res.Err = redact.Truncate(fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(redact.Body(body, k.Secret))), 300, k.Secret)
	}
	return res
}

// testURL is where a key of a kind is verified: Vertex Express keys on the
// Vertex Express base, everything else on BASE_URL/v1beta.
func testURL(s *config.Settings, kind string) string {
	model := url.PathEscape(pool.NormalizeModel(s.TestModel))
	if kind == bus.KindVertex {
		return s.VertexExpressBaseURL + "/models/" + model + ":generateContent"
	}
	return s.BaseURL + "/v1beta/models/" + model + ":generateContent"
}

// Report turns a result into the report keyd applies to the key.
func (r Result) Report(model string) bus.Report {
	return bus.Report{ID: r.ID, Model: model, Class: string(r.Verdict.Class), Status: r.Verdict.Status,
		RetryDelay: r.Verdict.RetryDelay.Milliseconds(), Reason: r.Verdict.Reason}
}

// ListModels asks upstream for its model list (GET {BASE_URL}/v1beta/models)
// with key k, for the admin's model pickers.
func (v *Verifier) ListModels(ctx context.Context, k pool.Key) ([]keyapi.ModelInfo, error) {
	s := v.Settings()
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.BaseURL+"/v1beta/models?pageSize=1000", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("x-goog-api-key", k.Secret)
	for name, val := range s.CustomHeaders {
		req.Header.Set(name, val)
	}
	client := v.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, errors.New(redact.Secrets(err.Error(), k.Secret))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode != http.StatusOK {
		msg := redact.Secrets(fmt.Sprintf("upstream answered %d %s", resp.StatusCode, bytes.TrimSpace(body)), k.Secret)
		return nil, errors.New(msg[:min(len(msg), 300)])
	}
	var list struct {
		Models []struct {
			Name             string   `json:"name"`
			DisplayName      string   `json:"displayName"`
			InputTokenLimit  int      `json:"inputTokenLimit"`
			OutputTokenLimit int      `json:"outputTokenLimit"`
			Methods          []string `json:"supportedGenerationMethods"`
		} `json:"models"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("upstream models list: %w", err)
	}
	out := make([]keyapi.ModelInfo, 0, len(list.Models))
	for _, m := range list.Models {
		out = append(out, keyapi.ModelInfo{Name: strings.TrimPrefix(m.Name, "models/"), DisplayName: m.DisplayName,
			InputTokenLimit: m.InputTokenLimit, OutputTokenLimit: m.OutputTokenLimit, Methods: m.Methods})
	}
	return out, nil
}
