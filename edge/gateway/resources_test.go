package gateway_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

func twoTokens(s *config.Settings) { s.AllowedTokens = []string{token, otherToken} }

// apiStatus is the HTTP status of a genai error (0 when err is not one).
func apiStatus(err error) int {
	var ae genai.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// keysUsed lists the keys of the fake's recorded calls of one method.
func keysUsed(e *env, method string) map[string]int {
	out := map[string]int{}
	for _, r := range e.fake.Requests(fakegemini.Filter{Method: method}) {
		out[r.Key]++
	}
	return out
}

// A cache lives with the key that created it: every call naming it goes to
// that key (the fake refuses any other, as Google does), and it belongs to
// the client token that created it.
func TestCacheRunsOnItsOwnKeyAndOnlyForItsToken(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyGood1, keyGood2}, settings: twoTokens})
	ctx := ctxTimeout(t)
	mine, theirs := e.client(token), e.client(otherToken)
	cc, err := mine.Caches.Create(ctx, "gemini-2.5-flash", &genai.CreateCachedContentConfig{
		TTL: 10 * time.Minute, SystemInstruction: genai.NewContentFromText("You review Go code.", genai.RoleUser),
		Contents: genai.Text("package main\nfunc main() {}"),
	})
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := e.fake.ResourceOwner(cc.Name)
	for i := range 4 { // round robin alone would alternate keys
		res, err := mine.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("review it"), &genai.GenerateContentConfig{CachedContent: cc.Name})
		if err != nil || res.UsageMetadata.CachedContentTokenCount == 0 {
			t.Fatalf("generate %d with my cache: %v", i, err)
		}
	}
	for chunk, err := range mine.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("again"), &genai.GenerateContentConfig{CachedContent: cc.Name}) {
		if err != nil {
			t.Fatalf("stream with my cache: %v", err)
		}
		_ = chunk
	}
	if _, err := mine.Caches.Get(ctx, cc.Name, nil); err != nil {
		t.Fatal(err)
	}
	up, err := mine.Caches.Update(ctx, cc.Name, &genai.UpdateCachedContentConfig{TTL: time.Hour})
	if err != nil || !up.ExpireTime.After(cc.ExpireTime) {
		t.Fatalf("update: %v", err)
	}
	for _, m := range []string{"generateContent", "streamGenerateContent", "cachedContents.get", "cachedContents.patch"} {
		if used := keysUsed(e, m); len(used) != 1 || used[owner] == 0 {
			t.Errorf("%s used keys %v, the cache belongs to %s", m, used, owner)
		}
	}

	// Another client token: 403 on every route, nothing upstream, nothing listed.
	before := e.fake.Stats().Total
	if _, err := theirs.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("x"), &genai.GenerateContentConfig{CachedContent: cc.Name}); apiStatus(err) != 403 {
		t.Errorf("another token generated with my cache: %v", err)
	}
	if _, err := theirs.Caches.Get(ctx, cc.Name, nil); apiStatus(err) != 403 {
		t.Errorf("another token read my cache: %v", err)
	}
	if _, err := theirs.Caches.Update(ctx, cc.Name, &genai.UpdateCachedContentConfig{TTL: time.Minute}); apiStatus(err) != 403 {
		t.Errorf("another token updated my cache: %v", err)
	}
	if _, err := theirs.Caches.Delete(ctx, cc.Name, nil); apiStatus(err) != 403 {
		t.Errorf("another token deleted my cache: %v", err)
	}
	if page, err := theirs.Caches.List(ctx, nil); err != nil || len(page.Items) != 0 {
		t.Errorf("another token lists %d caches (%v)", len(page.Items), err)
	}
	if got := e.fake.Stats().Total; got != before {
		t.Errorf("%d refused calls reached the upstream", got-before)
	}
	page, err := mine.Caches.List(ctx, nil)
	if err != nil || len(page.Items) != 1 || page.Items[0].Name != cc.Name {
		t.Fatalf("my list: %v %+v", err, page.Items)
	}
	// A cache is no file: the files list stays clean.
	for f, err := range mine.Files.All(ctx) {
		if err != nil || f.Name == cc.Name {
			t.Fatalf("files list shows %v (%v)", f, err)
		}
	}
	if _, err := mine.Caches.Delete(ctx, cc.Name, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Caches.Get(ctx, cc.Name, nil); apiStatus(err) != 403 {
		t.Errorf("deleted cache: %v", err)
	}
}

// A batch and a video operation are polled, cancelled, deleted and downloaded
// on the key that started them, and only by the client token that did.
func TestBatchesAndOperationsStayWithTheirKeyAndToken(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyGood1, keyGood2}, settings: twoTokens})
	ctx := ctxTimeout(t)
	mine, theirs := e.client(token), e.client(otherToken)
	job, err := mine.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{
		{Contents: genai.Text("first")}, {Contents: genai.Text("second")}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := e.fake.ResourceOwner(job.Name)
	if _, err := theirs.Batches.Get(ctx, job.Name, nil); apiStatus(err) != 403 {
		t.Errorf("another token read my batch: %v", err)
	}
	if err := theirs.Batches.Cancel(ctx, job.Name, nil); apiStatus(err) != 403 {
		t.Errorf("another token cancelled my batch: %v", err)
	}
	if page, err := theirs.Batches.List(ctx, nil); err != nil || len(page.Items) != 0 {
		t.Errorf("another token lists %d batches (%v)", len(page.Items), err)
	}
	// The list refreshes a running batch on its key.
	page, err := mine.Batches.List(ctx, nil)
	if err != nil || len(page.Items) != 1 || page.Items[0].State != genai.JobStateSucceeded {
		t.Fatalf("my list: %v %+v", err, page.Items)
	}
	for range 3 {
		done, err := mine.Batches.Get(ctx, job.Name, nil)
		if err != nil || done.State != genai.JobStateSucceeded || len(done.Dest.InlinedResponses) != 2 ||
			done.Dest.InlinedResponses[0].Response.Text() != "echo: first" {
			t.Fatalf("batch: %v %+v", err, done)
		}
	}
	if used := keysUsed(e, "batches.get"); len(used) != 1 || used[owner] == 0 {
		t.Errorf("batch polls used keys %v, the batch belongs to %s", used, owner)
	}
	if _, err := theirs.Batches.Delete(ctx, job.Name, nil); apiStatus(err) != 403 {
		t.Errorf("another token deleted my batch: %v", err)
	}
	if _, err := mine.Batches.Delete(ctx, job.Name, nil); err != nil {
		t.Fatal(err)
	}

	op, err := mine.Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001", &genai.GenerateVideosSource{Prompt: "a lighthouse"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := theirs.Operations.GetVideosOperation(ctx, op, nil); apiStatus(err) != 403 {
		t.Errorf("another token polled my operation: %v", err)
	}
	for range 2 {
		if op, err = mine.Operations.GetVideosOperation(ctx, op, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !op.Done || len(op.Response.GeneratedVideos) != 1 {
		t.Fatalf("operation: %+v", op)
	}
	v := genai.NewDownloadURIFromGeneratedVideo(op.Response.GeneratedVideos[0])
	data, err := mine.Files.Download(ctx, v, nil)
	if err != nil || string(data) != "fake-mp4 0: a lighthouse" {
		t.Fatalf("download: %v %q", err, data)
	}
	// The SDK's Download does not look at the status; the body tells.
	if data, _ := theirs.Files.Download(ctx, v, nil); strings.Contains(string(data), "fake-mp4") {
		t.Error("another token downloaded my video")
	}
	opOwner, _ := e.fake.ResourceOwner(op.Name)
	for _, m := range []string{"operations.get", "files.download"} {
		if used := keysUsed(e, m); len(used) != 1 || used[opOwner] == 0 {
			t.Errorf("%s used keys %v, the operation belongs to %s", m, used, opOwner)
		}
	}
}

// When the key that holds a cache is disabled, calls naming the cache say so
// and never try another key (which could only fail, or worse, be billed).
func TestDisabledOwningKeyIsNamedAndNoOtherKeyIsTried(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyGood1, keyGood2}})
	ctx := ctxTimeout(t)
	c := e.client(token)
	cc, err := c.Caches.Create(ctx, "gemini-2.5-flash", &genai.CreateCachedContentConfig{Contents: genai.Text("context")})
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := e.fake.ResourceOwner(cc.Name)
	e.fake.SetKey(owner, fakegemini.Behaviour{Status: fakegemini.Invalid}) // Google revokes it; keyd disables it
	if _, err := c.Caches.Get(ctx, cc.Name, nil); err == nil {
		t.Fatal("a get through a revoked key succeeded")
	}
	e.fake.Reset()
	_, err = c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("x"), &genai.GenerateContentConfig{CachedContent: cc.Name})
	if apiStatus(err) != 503 || !strings.Contains(err.Error(), "disabled or was removed") {
		t.Fatalf("generate on a cache of a disabled key: %v", err)
	}
	if n := e.fake.Stats().Total; n != 0 {
		t.Errorf("%d calls went upstream with another key", n)
	}
}

// files/{id}:download in curl's form streams the bytes from the owning key.
func TestDownloadRouteServesRawBytesFromTheOwningKey(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyGood1, keyGood2}})
	ctx := ctxTimeout(t)
	op, err := e.client(token).Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001", &genai.GenerateVideosSource{Prompt: "waves"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if op, err = e.client(token).Operations.GetVideosOperation(ctx, op, nil); err != nil || !op.Done {
		t.Fatalf("poll: %v", err)
	}
	uri := op.Response.GeneratedVideos[0].Video.URI
	id := uri[strings.Index(uri, "/files/")+len("/files/") : strings.Index(uri, ":download")]
	for _, path := range []string{"/download/v1beta/files/" + id + ":download?alt=media", "/v1beta/files/" + id + ":download?alt=media"} {
		req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		req.Header.Set("x-goog-api-key", token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(body) != "fake-mp4 0: waves" || res.Header.Get("Content-Type") != "video/mp4" {
			t.Errorf("%s: %d %q %q", path, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
}

// A create may fail over before the first byte; the resource is bound to the
// key that actually made it, and later calls use that key.
func TestCreateFailsOverAndBindsTheKeyThatAnswered(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyGood1, keyGood2}, settings: func(s *config.Settings) { s.MaxRetries = 2 }})
	e.fake.SetKey(keyGood1, fakegemini.Behaviour{Status: fakegemini.Unavailable})
	ctx := ctxTimeout(t)
	c := e.client(token)
	for range 2 {
		cc, err := c.Caches.Create(ctx, "gemini-2.5-flash", &genai.CreateCachedContentConfig{Contents: genai.Text("context")})
		if err != nil {
			t.Fatalf("create with one overloaded key: %v", err)
		}
		if owner, _ := e.fake.ResourceOwner(cc.Name); owner != keyGood2 {
			t.Fatalf("cache made by %q", owner)
		}
		if _, err := c.Caches.Get(ctx, cc.Name, nil); err != nil {
			t.Fatalf("get: %v", err)
		}
	}
	if used := keysUsed(e, "cachedContents.get"); len(used) != 1 || used[keyGood2] != 2 {
		t.Errorf("gets used %v", used)
	}
}

// A batch whose input is an uploaded file runs on the key that holds the file,
// and an embeddings batch is a batch like the others.
func TestBatchFromAnUploadedFileRunsOnTheFilesKey(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyGood1, keyGood2}, settings: twoTokens})
	ctx := ctxTimeout(t)
	c := e.client(token)
	f, err := c.Files.Upload(ctx, strings.NewReader(`{"key":"r1","request":{"contents":[{"parts":[{"text":"from a file"}]}]}}`+"\n"),
		&genai.UploadFileConfig{MIMEType: "application/jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	fileOwner, _ := e.fake.FileOwner(f.Name)
	for range 2 {
		job, err := c.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{FileName: f.Name}, nil)
		if err != nil {
			t.Fatalf("batch from my file: %v", err)
		}
		if owner, _ := e.fake.ResourceOwner(job.Name); owner != fileOwner {
			t.Fatalf("batch made by %q, the file is %q's", owner, fileOwner)
		}
	}
	if _, err := e.client(otherToken).Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{FileName: f.Name}, nil); apiStatus(err) != 403 {
		t.Errorf("another token ran a batch on my file: %v", err)
	}
	emb, err := c.Batches.CreateEmbeddings(ctx, genai.Ptr("gemini-embedding-001"), &genai.EmbeddingsBatchJobSource{
		InlinedRequests: &genai.EmbedContentBatch{Contents: []*genai.Content{genai.NewContentFromText("a", genai.RoleUser)}}}, nil)
	if err != nil {
		t.Fatalf("embeddings batch: %v", err)
	}
	if _, err := e.client(otherToken).Batches.Get(ctx, emb.Name, nil); apiStatus(err) != 403 {
		t.Errorf("another token read my embeddings batch: %v", err)
	}
	if got, err := c.Batches.Get(ctx, emb.Name, nil); err != nil || got.State != genai.JobStateSucceeded {
		t.Fatalf("embeddings batch get: %v %+v", err, got)
	}
}

// The vertex-express models list and get use the vertex pool, not a Gemini key.
func TestVertexExpressModelsComeFromTheVertexPool(t *testing.T) {
	const vertexKey = "AQ.vertex-express-key-00000000000000000000000000000000001"
	e := newEnv(t, envOptions{gemini: []string{keyGood1}, vertex: []string{vertexKey}})
	for _, path := range []string{"/vertex-express/v1beta/models", "/vertex-express/v1beta/models/gemini-2.5-flash"} {
		req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		req.Header.Set("x-goog-api-key", token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(body), "models/gemini-2.5-flash") {
			t.Fatalf("%s: %d %s", path, res.StatusCode, body)
		}
		last, _ := e.fake.Last(fakegemini.Filter{})
		if last.Key != vertexKey || !strings.HasPrefix(last.Path, "/v1beta1/publishers/google/models") {
			t.Errorf("%s went to %s with the %s key", path, last.Path, map[bool]string{true: "vertex", false: "Gemini"}[last.Key == vertexKey])
		}
	}
}

// Injected tools cannot ride along with a cache (Gemini refuses tools beside
// a cachedContent), so a request naming one goes without them.
func TestInjectedToolsStayOffARequestThatNamesACache(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyGood1}, settings: func(s *config.Settings) {
		s.CodeExecutionEnabled = true
	}})
	ctx := ctxTimeout(t)
	c := e.client(token)
	if _, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("plain"), nil); err != nil {
		t.Fatal(err)
	}
	if last, _ := e.fake.Last(fakegemini.Filter{Method: "generateContent"}); !strings.Contains(string(last.Body), "codeExecution") {
		t.Skip("code execution is not injected for this model; nothing to observe")
	}
	cc, err := c.Caches.Create(ctx, "gemini-2.5-flash", &genai.CreateCachedContentConfig{Contents: genai.Text("context")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("x"), &genai.GenerateContentConfig{CachedContent: cc.Name}); err != nil {
		t.Fatalf("generate with a cache and code execution on: %v", err)
	}
}

// Bad input on the resource routes gets a clear Gemini-shaped error with a
// truthful status, and nothing goes upstream.
func TestBadResourceRequestsAreRefusedInGeminiShape(t *testing.T) {
	e := newEnv(t, envOptions{gemini: []string{keyGood1}})
	cases := []struct {
		method, path, body, tok string
		status                  int
		status2, msg            string
	}{
		{"POST", "/v1beta/cachedContents", `{"contents":`, token, 400, "INVALID_ARGUMENT", "JSON object"},
		{"POST", "/v1beta/cachedContents", `{"contents":[]}`, token, 400, "INVALID_ARGUMENT", "model is required"},
		{"POST", "/v1beta/cachedContents", `{"model":"models/gemini-2.5-flash"}`, "", 401, "UNAUTHENTICATED", "client token"},
		{"GET", "/v1beta/cachedContents/nope", "", token, 403, "PERMISSION_DENIED", "cachedContents/nope"},
		{"PATCH", "/v1beta/cachedContents/nope", `{"ttl":"60s"}`, token, 403, "PERMISSION_DENIED", "cachedContents/nope"},
		{"POST", "/v1beta/batches/abc", `{}`, token, 404, "NOT_FOUND", "unknown method"},
		{"POST", "/v1beta/batches/abc:cancel", `{}`, token, 403, "PERMISSION_DENIED", "batches/abc"},
		{"GET", "/v1beta/models/veo-3.0-generate-001/operations/x", "", token, 403, "PERMISSION_DENIED", "operations/x"},
		{"GET", "/v1beta/files/zzz:download?alt=media", "", token, 403, "PERMISSION_DENIED", "zzz"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, e.url+tc.path, strings.NewReader(tc.body))
		if tc.tok != "" {
			req.Header.Set("x-goog-api-key", tc.tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || !strings.Contains(string(body), `"status": "`+tc.status2+`"`) && !strings.Contains(string(body), `"status":"`+tc.status2+`"`) ||
			!strings.Contains(string(body), tc.msg) {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, res.StatusCode, body)
		}
	}
	if n := e.fake.Stats().Total; n != 0 {
		t.Errorf("%d refused calls reached the upstream", n)
	}
}

// With the real keyd (FerretDB) and file isolation off, caches still belong
// to their client token: keyd lists only the owner's, and a cache is never
// listed as a file.
func TestWithTheRealKeydCachesBelongToTheirTokenEvenWithoutFileIsolation(t *testing.T) {
	keys := []string{keyGood1, keyGood2}
	e := newEnv(t, envOptions{gemini: keys, settings: func(s *config.Settings) {
		twoTokens(s)
		s.FilesUserIsolation = false
	}})
	startRealKeyd(t, e, keys)
	ctx := ctxTimeout(t)
	mine, theirs := e.client(token), e.client(otherToken)
	cc, err := mine.Caches.Create(ctx, "gemini-2.5-flash", &genai.CreateCachedContentConfig{Contents: genai.Text("context")})
	if err != nil {
		t.Fatal(err)
	}
	if page, err := theirs.Caches.List(ctx, nil); err != nil || len(page.Items) != 0 {
		t.Errorf("another token lists %d caches (%v)", len(page.Items), err)
	}
	if _, err := theirs.Caches.Get(ctx, cc.Name, nil); apiStatus(err) != 403 {
		t.Errorf("another token read my cache: %v", err)
	}
	if page, err := mine.Caches.List(ctx, nil); err != nil || len(page.Items) != 1 {
		t.Errorf("my caches: %d (%v)", len(page.Items), err)
	}
	for _, c := range []*genai.Client{mine, theirs} {
		for f, err := range c.Files.All(ctx) {
			if err != nil || f.Name == cc.Name {
				t.Fatalf("files list shows %v (%v)", f, err)
			}
		}
	}
}
