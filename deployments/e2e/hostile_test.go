package e2e_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gemini-balance-go/deployments/e2e/stack"
)

// The caps the gateway documents (edge/native.MaxBody, edge/openai.MaxBody,
// edge/native.MaxUploadChunk, admind/server.MaxUnauthenticatedBody); the
// e2e module tests the binaries, so it states them rather than importing.
const (
	edgeBodyCap   = 64 << 20
	uploadCap     = 2 << 30
	unauthBodyCap = 8 << 10
)

// hostileRoute is a public route that takes a body, and whether its errors
// come in OpenAI's shape.
type hostileRoute struct {
	path   string
	openai bool
	header map[string]string
}

// hostileRoutes lists every public POST route of edge (edge/gateway,
// edge/native, edge/openai).
func hostileRoutes() []hostileRoute {
	var out []hostileRoute
	for _, pre := range []string{"/v1beta", "/gemini/v1beta", "/gemini/v1", "/vertex-express/v1beta"} {
		for _, m := range []string{"gemini-2.5-flash:generateContent", "gemini-2.5-flash:streamGenerateContent?alt=sse",
			"gemini-2.5-flash:streamGenerateContent", "gemini-2.5-flash:countTokens",
			"gemini-embedding-001:embedContent", "gemini-embedding-001:batchEmbedContents"} {
			out = append(out, hostileRoute{path: pre + "/models/" + m})
		}
	}
	// The key-affine resources (caches, batches, long-running operations).
	for _, pre := range []string{"/v1beta", "/gemini/v1beta"} {
		for _, p := range []string{"/cachedContents", "/models/gemini-2.5-flash:batchGenerateContent",
			"/models/gemini-embedding-001:asyncBatchEmbedContent", "/models/veo-3.0-generate-001:predictLongRunning", "/batches/not-a-batch:cancel"} {
			out = append(out, hostileRoute{path: pre + p})
		}
	}
	start := map[string]string{"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"}
	for _, p := range []string{"/upload/v1beta/files", "/gemini/upload/v1beta/files"} {
		out = append(out, hostileRoute{path: p, header: start},
			hostileRoute{path: p + "?upload_id=not-a-session", header: map[string]string{"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"}})
	}
	for _, pre := range []string{"/v1", "/hf/v1"} {
		for _, p := range []string{"/chat/completions", "/responses", "/embeddings", "/images/generations", "/audio/speech"} {
			out = append(out, hostileRoute{path: pre + p, openai: true})
		}
	}
	out = append(out, hostileRoute{path: "/openai/v1/chat/completions", openai: true}, hostileRoute{path: "/openai/v1/embeddings", openai: true})
	return out
}

// hostileBodies is the corpus of issue 9: deep nesting of arrays and of
// objects, huge strings, invalid UTF-8 and wrong types. None of them is a
// request any route can serve. Sizes stay at 256 KiB so the suite is cheap
// on a shared machine; the all-in-one test sends the full 20 MB.
func hostileBodies() map[string][]byte {
	huge := strings.Repeat("a", 256<<10)
	return map[string][]byte{
		"deep arrays":               bytes.Repeat([]byte("["), 256<<10),
		"deep objects":              []byte(strings.Repeat(`{"a":`, 50000)),
		"deep but well formed":      []byte(strings.Repeat(`[{"a":`, 100) + "1" + strings.Repeat("}]", 100)),
		"huge string":               []byte(`"` + huge + `"`),
		"huge unterminated string":  []byte(`{"contents":[{"parts":[{"text":"` + huge),
		"invalid utf-8":             []byte("\xff\xfe\xfd{\"contents\":[]}"),
		"invalid utf-8 in an array": []byte("[\"\xc3\x28\xa0\xa1\"]"),
		"wrong type: array":         []byte(`[{"contents":[{"parts":[{"text":"hi"}]}]}]`),
		"wrong type: number":        []byte(`42`),
		"wrong type: string":        []byte(`"generateContent"`),
		"not JSON":                  []byte(`<request>hi</request>`),
	}
}

var goroutinesLine = regexp.MustCompile(`(?m)^go_goroutines ([0-9.e+]+)$`)

// goroutines reads go_goroutines from a service's /metrics (its
// METRICS_ADDR: /metrics is not on the public port), on a connection of its own.
func goroutines(t *testing.T, metricsURL string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, metricsURL, nil)
	req.Close = true
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", metricsURL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	m := goroutinesLine.FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s: no go_goroutines (status %d)", metricsURL, res.StatusCode)
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return int(f)
}

// settledGoroutines is a service's goroutine count once it has stopped
// changing (a service that just answered /readyz may still be starting
// consumers).
func settledGoroutines(t *testing.T, metricsURL string) int {
	t.Helper()
	prev := goroutines(t, metricsURL)
	for stable, deadline := 0, time.Now().Add(60*time.Second); stable < 4 && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		n := goroutines(t, metricsURL)
		if d := n - prev; d >= -2 && d <= 2 {
			stable++
		} else {
			stable = 0
		}
		prev = max(prev, n)
	}
	return prev
}

// backToBaseline waits until a service's goroutines are back within a small
// margin of what it ran before the attack (the bound is generous: only a
// leak reaches it).
func backToBaseline(t *testing.T, name, metricsURL string, baseline int) {
	t.Helper()
	const margin = 15
	var n int
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if n = goroutines(t, metricsURL); n <= baseline+margin {
			return
		}
	}
	t.Errorf("%s: %d goroutines after the attack, baseline %d", name, n, baseline)
}

// send posts body and returns status and answer; a dropped connection fails
// the test.
func send(t *testing.T, c *http.Client, base string, r hostileRoute, token string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+r.path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Errorf("POST %s: connection failed: %v", r.path, err)
		return 0, nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// declaredOverCap sends headers declaring a body of length bytes and the
// first KiB of it, and returns the status line the server answers with.
func declaredOverCap(t *testing.T, base, path string, header map[string]string, length int64) string {
	t.Helper()
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Errorf("dial %s: %v", u.Host, err) // may run off the test goroutine: no Fatal
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	var head strings.Builder
	fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, u.Host, length)
	for k, v := range header {
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	head.WriteString("\r\n")
	go func() { // the server may answer and close before reading a byte of it
		_, _ = io.WriteString(c, head.String())
		_, _ = c.Write(bytes.Repeat([]byte("["), 1024))
	}()
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Errorf("POST %s with Content-Length %d: no answer: %v", path, length, err)
		return ""
	}
	res.Body.Close()
	return res.Status
}

// streamedOverCap sends a chunked body one byte over limit.
func streamedOverCap(t *testing.T, base, path, token string, limit int64) int {
	t.Helper()
	body := io.LimitReader(repeatReader('a'), limit+1)
	req, _ := http.NewRequest(http.MethodPost, base+path, io.MultiReader(strings.NewReader(`"`), body))
	req.ContentLength = -1 // chunked: the cap is found while reading
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("POST %s streamed over the cap: %v", path, err)
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// slowloris trickles header lines and reports whether the server closed the
// connection (rather than waiting forever for the blank line).
func slowloris(base, path string) error {
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\n", path, u.Host); err != nil {
		return err
	}
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); {
		if _, err := io.WriteString(c, "X-Trickle: a\r\n"); err != nil {
			return nil // cut off
		}
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		var one [512]byte
		if _, err := c.Read(one[:]); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return nil // closed (possibly after a 408)
		}
	}
	return fmt.Errorf("%s%s: a client trickling headers for 90 s was never cut off", base, path)
}

// stalledBody sends headers and part of the declared body, then nothing;
// the server must answer (408) or close rather than wait forever.
func stalledBody(base, path, token string) error {
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(90 * time.Second))
	if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"contents\"", path, u.Host, token); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return fmt.Errorf("%s%s: a stalled body held the request for 90 s", base, path)
		}
		return nil // closed without an answer: also cut off
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout {
		return fmt.Errorf("%s%s: stalled body answered %s, want 408", base, path, res.Status)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("%s%s: connection left open after a stalled body (%v)", base, path, err)
	}
	return nil
}

func TestHostileInputGetsA4xxAndLeavesTheGatewayUpWithoutLeaks(t *testing.T) {
	gemini, vertex := "AIzaSyE2E-key-one-0000000000000000001", "AIzaSyE2E-vertex-key-000000000000000002"
	s := stack.Start(t, stack.Options{Edges: 1, Keys: []string{gemini, vertex}, Env: map[string]string{
		"API_KEYS": `["` + gemini + `"]`, "VERTEX_API_KEYS": `["` + vertex + `"]`, "VERTEX_EXPRESS_BASE_URL": "{fake}/v1beta1/publishers/google"}})
	edge, admin, token := s.EdgeURL(0), s.AdminURL(), s.Tokens()[0]
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()

	// Warm up (upstream connections, keyd lease paths) before the baseline.
	if code, b := send(t, client, edge, hostileRoute{path: "/v1beta/models/gemini-2.5-flash:generateContent"}, token, []byte(`{"contents":[{"parts":[{"text":"hi"}]}]}`)); code != 200 {
		t.Fatalf("warm-up: %d %s", code, b)
	}
	client.CloseIdleConnections()
	edgeBase, adminBase := settledGoroutines(t, s.MetricsURL("edge-0")), settledGoroutines(t, s.MetricsURL("admind"))

	// Slowloris and stalled bodies run alongside the corpus: the server must
	// cut each off by itself.
	var wg sync.WaitGroup
	slowErrs := make(chan error, 8)
	for _, f := range []func() error{
		func() error { return slowloris(edge, "/v1beta/models/gemini-2.5-flash:generateContent") },
		func() error { return slowloris(admin, "/auth") },
		func() error { return stalledBody(edge, "/v1beta/models/gemini-2.5-flash:generateContent", token) },
		func() error { return stalledBody(edge, "/v1/chat/completions", token) },
		func() error { return stalledBody(edge, "/openai/v1/chat/completions", token) },
		func() error { return stalledBody(admin, "/auth", "") },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); slowErrs <- f() }()
	}

	// Eight routes at a time: the corpus is about 450 requests.
	sem := make(chan struct{}, 8)
	var routes sync.WaitGroup
	for _, r := range hostileRoutes() {
		sem <- struct{}{}
		routes.Add(1)
		go func() {
			defer func() { <-sem; routes.Done() }()
			attackRoute(t, client, edge, token, r)
		}()
	}
	routes.Wait()
	// One byte over the cap, streamed: found while reading.
	for _, p := range []string{"/v1beta/models/gemini-2.5-flash:generateContent", "/v1/chat/completions"} {
		if code := streamedOverCap(t, edge, p, token, edgeBodyCap); code != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s streamed one byte over the cap: %d, want 413", p, code)
		}
	}

	// admind's unauthenticated routes.
	for _, p := range []string{"/auth", "/api/setup"} {
		for name, body := range hostileBodies() {
			if code, b := send(t, client, admin, hostileRoute{path: p}, "", body); code < 400 || code > 499 {
				t.Errorf("POST %s with %s: %d %.200s", p, name, code, b)
			}
		}
		if st := declaredOverCap(t, admin, p, nil, unauthBodyCap+1); !strings.HasPrefix(st, "413") {
			t.Errorf("POST %s one byte over %d: %q, want 413", p, unauthBodyCap, st)
		}
	}

	wg.Wait()
	close(slowErrs)
	for err := range slowErrs {
		if err != nil {
			t.Error(err)
		}
	}
	client.CloseIdleConnections()
	for _, name := range s.Names() {
		if !s.Running(name) {
			t.Errorf("%s is down after the attack", name)
		}
	}
	if res, err := http.Get(edge + "/health"); err != nil || res.StatusCode != 200 {
		t.Fatalf("edge /health after the attack: %v", err)
	}
	if code, b := send(t, client, edge, hostileRoute{path: "/v1beta/models/gemini-2.5-flash:generateContent"}, token, []byte(`{"contents":[{"parts":[{"text":"still here"}]}]}`)); code != 200 {
		t.Fatalf("a normal request after the attack: %d %s", code, b)
	}
	client.CloseIdleConnections()
	backToBaseline(t, "edge", s.MetricsURL("edge-0"), edgeBase)
	backToBaseline(t, "admind", s.MetricsURL("admind"), adminBase)
}

// attackRoute sends the whole corpus and a declared over-cap body to one
// route and checks every answer.
func attackRoute(t *testing.T, client *http.Client, edge, token string, r hostileRoute) {
	for name, body := range hostileBodies() {
		code, b := send(t, client, edge, r, token, body)
		if code < 400 || code > 499 {
			t.Errorf("POST %s with %s: %d %.200s", r.path, name, code, b)
			continue
		}
		if !strings.Contains(r.path, "upload_id=") && !bytes.Contains(b, []byte(`"error"`)) {
			t.Errorf("POST %s with %s: %d without an error body: %.200s", r.path, name, code, b)
		}
		if strings.Contains(r.path, "upload_id=") {
			continue // a chunk for no session is refused before its body is read
		}
		if strings.HasPrefix(name, "deep") && (code != 400 || !bytes.Contains(b, []byte("nested deeper"))) {
			t.Errorf("POST %s with %s: %d %.200s, want 400 naming the nesting", r.path, name, code, b)
		}
		if strings.HasPrefix(name, "deep") && r.openai != bytes.Contains(b, []byte(`"type"`)) {
			t.Errorf("POST %s with %s: error not in the route's shape: %.200s", r.path, name, b)
		}
	}
	// One byte over the cap, declared: refused before it is read.
	limit := int64(edgeBodyCap)
	if strings.Contains(r.path, "upload_id=") {
		limit = uploadCap
	}
	if st := declaredOverCap(t, edge, r.path, mergeHeaders(r.header, map[string]string{"Authorization": "Bearer " + token}), limit+1); !strings.HasPrefix(st, "413") {
		t.Errorf("POST %s one byte over the cap: %q, want 413", r.path, st)
	}
}

func mergeHeaders(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// The crash of issue 9, on the shipped all-in-one: a 20 MB body of "["
// answered 400, and everything (edge, keyd, logd, admind, NATS, the store)
// is still up after it.
func TestAllInOneSurvivesTwentyMegabytesOfOpenBrackets(t *testing.T) {
	s := stack.Start(t, stack.Options{AllInOne: true})
	base, token := s.URL("allinone"), s.Tokens()[0]
	client := &http.Client{}
	r := hostileRoute{path: "/v1beta/models/gemini-2.5-flash:generateContent"}
	if code, b := send(t, client, base, r, token, []byte(`{"contents":[{"parts":[{"text":"hi"}]}]}`)); code != 200 {
		t.Fatalf("warm-up: %d %s", code, b)
	}
	client.CloseIdleConnections()
	baseline := settledGoroutines(t, s.MetricsURL("allinone"))

	code, b := send(t, client, base, r, token, bytes.Repeat([]byte("["), 20<<20))
	if code != 400 || !bytes.Contains(b, []byte(`"INVALID_ARGUMENT"`)) || !bytes.Contains(b, []byte("nested deeper")) {
		t.Fatalf("20 MB of '[': %d %.300s", code, b)
	}
	code, b = send(t, client, base, hostileRoute{path: "/v1/chat/completions"}, token, []byte(strings.Repeat(`{"a":`, 1<<20)))
	if code != 400 || !bytes.Contains(b, []byte(`"invalid_request_error"`)) {
		t.Fatalf("deep objects on the OpenAI route: %d %.300s", code, b)
	}
	if st := declaredOverCap(t, base, "/auth", nil, unauthBodyCap+1); !strings.HasPrefix(st, "413") {
		t.Errorf("/auth one byte over the cap: %q", st)
	}
	if err := slowloris(base, "/v1beta/models"); err != nil {
		t.Error(err)
	}

	if !s.Running("allinone") {
		t.Fatalf("the all-in-one died:\n%s", s.Log("allinone"))
	}
	if res, err := http.Get(base + "/health"); err != nil || res.StatusCode != 200 {
		t.Fatalf("/health after the attack: %v", err)
	}
	if code, b := send(t, client, base, r, token, []byte(`{"contents":[{"parts":[{"text":"still here"}]}]}`)); code != 200 {
		t.Fatalf("a normal request after the attack: %d %s", code, b)
	}
	client.CloseIdleConnections()
	backToBaseline(t, "all-in-one", s.MetricsURL("allinone"), baseline)
}
