package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/genai"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

func TestEveryNativeRouteWorksThroughTheGatewayWithTheGenaiSDK(t *testing.T) {
	e := newEnv(t, envOptions{settings: nil})
	c := e.client(token)
	ctx := ctxTimeout(t)

	res, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hello there"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Text(); got != "echo: hello there" {
		t.Errorf("generate text = %q", got)
	}

	var streamed strings.Builder
	n := 0
	for chunk, err := range c.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("one two three four"), nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		streamed.WriteString(chunk.Text())
	}
	if n < 2 || streamed.String() != "echo: one two three four" {
		t.Errorf("stream: %d chunks, %q", n, streamed.String())
	}

	ct, err := c.Models.CountTokens(ctx, "gemini-2.5-flash", genai.Text("count these tokens"), nil)
	if err != nil || ct.TotalTokens == 0 {
		t.Fatalf("countTokens: %v %+v", err, ct)
	}

	emb, err := c.Models.EmbedContent(ctx, "gemini-embedding-001", []*genai.Content{
		genai.NewContentFromText("alpha", genai.RoleUser), genai.NewContentFromText("beta", genai.RoleUser)}, nil)
	if err != nil || len(emb.Embeddings) != 2 || len(emb.Embeddings[0].Values) == 0 {
		t.Fatalf("embed: %v %+v", err, emb)
	}

	names := map[string]bool{}
	for m, err := range c.Models.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		names[strings.TrimPrefix(m.Name, "models/")] = true
	}
	if !names["gemini-2.5-flash"] || !names["gemini-2.5-flash-search"] || !names["gemini-2.5-pro-search"] {
		t.Errorf("models list lacks the base or derived models: %v", names)
	}
	got, err := c.Models.Get(ctx, "gemini-2.5-flash-search", nil)
	if err != nil || got.Name != "models/gemini-2.5-flash-search" || !strings.HasSuffix(got.DisplayName, "For Search") {
		t.Fatalf("get derived model: %v %+v", err, got)
	}

	data := bytes.Repeat([]byte("%PDF-1.4 fake document "), 400)
	f, err := c.Files.Upload(ctx, bytes.NewReader(data), &genai.UploadFileConfig{MIMEType: "application/pdf", DisplayName: "report"})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if f.Name == "" || f.SizeBytes == nil || *f.SizeBytes != int64(len(data)) {
		t.Fatalf("uploaded file: %+v", f)
	}
	owner, _ := e.fake.FileOwner(f.Name)
	if owner == "" || owner == token {
		t.Errorf("file owner at upstream = %q, want the pool key", owner)
	}
	g, err := c.Files.Get(ctx, f.Name, nil)
	if err != nil || g.Name != f.Name {
		t.Fatalf("get file: %v %+v\nbindings %+v", err, g, e.keyd.Files())
	}
	listed := 0
	for lf, err := range c.Files.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if lf.Name == f.Name {
			listed++
		}
	}
	if listed != 1 {
		t.Errorf("file listed %d times", listed)
	}
	// A generate call that references the file uses the key that uploaded it.
	res, err = c.Models.GenerateContent(ctx, "gemini-2.5-flash", []*genai.Content{{Role: "user", Parts: []*genai.Part{
		genai.NewPartFromURI(f.URI, "application/pdf"), genai.NewPartFromText("summarise")}}}, nil)
	if err != nil {
		t.Fatalf("generate with file: %v", err)
	}
	if _, err := c.Files.Delete(ctx, f.Name, nil); err != nil {
		t.Fatalf("delete file: %v", err)
	}
	if _, ok := e.fake.FileOwner(f.Name); ok {
		t.Error("file still exists upstream after delete")
	}

	// The client token never travels upstream.
	for _, r := range e.fake.Requests(fakegemini.Filter{}) {
		if r.Key == token || strings.Contains(r.RawQuery, token) {
			t.Fatalf("client token reached upstream on %s %s", r.HTTP, r.Path)
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, token) {
					t.Fatalf("client token reached upstream in header %s", k)
				}
			}
		}
	}
}

func TestStreamWithoutAltSSEIsTheJSONArrayGoogleSends(t *testing.T) {
	e := newEnv(t, envOptions{})
	res := e.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent", `{"contents":[{"role":"user","parts":[{"text":"alpha beta gamma"}]}]}`)
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	dec := json.NewDecoder(res.Body)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		t.Fatalf("want a JSON array, got %v %v", tok, err)
	}
	var text strings.Builder
	n := 0
	for dec.More() {
		var chunk genai.GenerateContentResponse
		if err := dec.Decode(&chunk); err != nil {
			t.Fatal(err)
		}
		n++
		text.WriteString(chunk.Text())
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		t.Fatalf("array not closed: %v %v", tok, err)
	}
	if n < 2 || text.String() != "echo: alpha beta gamma" {
		t.Errorf("%d elements, text %q", n, text.String())
	}
}

func TestAllClientTokenFormsAreAcceptedAndOthersGet401InGeminiShape(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := `{"contents":[{"parts":[{"text":"hi"}]}]}`
	for name, set := range map[string]func(*http.Request){
		"query":  func(r *http.Request) { r.URL.RawQuery = "key=" + token },
		"header": func(r *http.Request) { r.Header.Set("x-goog-api-key", token) },
		"bearer": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) },
	} {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/gemini/v1beta/models/gemini-2.5-flash:generateContent", strings.NewReader(body))
		set(req)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s: status %d", name, res.StatusCode)
		}
	}
	for name, set := range map[string]func(*http.Request){
		"missing": func(*http.Request) {},
		"wrong":   func(r *http.Request) { r.Header.Set("x-goog-api-key", "sk-wrong") },
	} {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/v1beta/models/gemini-2.5-flash:generateContent", strings.NewReader(body))
		set(req)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var ge struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
				Status  string `json:"status"`
			} `json:"error"`
		}
		if res.StatusCode != 401 || json.Unmarshal(b, &ge) != nil || ge.Error.Code != 401 || ge.Error.Status != "UNAUTHENTICATED" {
			t.Errorf("%s: status %d body %s", name, res.StatusCode, b)
		}
	}
	if e.fake.Stats().Total != 3 {
		t.Errorf("rejected requests reached upstream: %d calls", e.fake.Stats().Total)
	}
}

func TestHealthAnswersLikeGeminiBalance(t *testing.T) {
	e := newEnv(t, envOptions{})
	res, err := http.Get(e.url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"status":"healthy"}` {
		t.Errorf("health: %d %s", res.StatusCode, b)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(e.url + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
	}
	// Metrics live on METRICS_ADDR, never on the public port.
	res, err = http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode == 200 || strings.Contains(string(b), "go_goroutines") {
		t.Errorf("/metrics is public on edge's port: %d %.80s", res.StatusCode, b)
	}
}

func TestOpenAIRoutesAreMountedWithOpenAIShapedAuth(t *testing.T) {
	e := newEnv(t, envOptions{})
	req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), `"object":"list"`) {
		t.Fatalf("openai models: %d %s", res.StatusCode, b)
	}
	res, err = http.Get(e.url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 401 || !strings.Contains(string(b), `"invalid_api_key"`) {
		t.Fatalf("openai auth: %d %s", res.StatusCode, b)
	}
}

func TestGeminiV1RouteCallsUpstreamV1AndFilteredModelsAreRejected(t *testing.T) {
	e := newEnv(t, envOptions{})
	res := e.post("/gemini/v1/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`)
	res.Body.Close()
	last, _ := e.fake.Last(fakegemini.Filter{Method: "generateContent"})
	if res.StatusCode != 200 || last.Path != "/v1/models/gemini-2.5-flash:generateContent" {
		t.Fatalf("status %d, upstream path %q", res.StatusCode, last.Path)
	}
	res = e.post("/v1beta/models/gemini-pro-vision:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`)
	ge := readError(t, res.Body)
	res.Body.Close()
	if res.StatusCode != 404 || ge.Error.Status != "NOT_FOUND" || e.fake.ModelHits("gemini-pro-vision") != 0 {
		t.Fatalf("filtered model: %d %+v", res.StatusCode, ge)
	}
}
