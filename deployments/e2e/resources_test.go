package e2e_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/shared/redact"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

func genaiStatus(err error) int {
	var ae genai.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// Caches, batches and video operations live with the key that created them and
// belong to the client token that did, across edge replicas: created through
// edge-0, they are used through edge-1 on the creating key only (the fake, like
// Google, refuses any other key), another token gets 403 through either edge and
// lists nothing, every call is a request event with its key, and when the owning
// key is disabled the answer says so instead of trying another key.
func TestCachesBatchesAndOperationsKeepTheirKeyAndTokenAcrossEdges(t *testing.T) {
	tokA, tokB := "sk-e2e-owner-token-0123456789abcdef", "sk-e2e-other-token-fedcba9876543210"
	s := stack.Start(t, stack.Options{Edges: 2, Tokens: []string{tokA, tokB}, Without: []string{"schedulerd"}})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	tap := tapEvents(t, s)
	a0, a1 := s.GeminiAs(t, 0, tokA), s.GeminiAs(t, 1, tokA)
	b0, b1 := s.GeminiAs(t, 0, tokB), s.GeminiAs(t, 1, tokB)
	fake := s.Fake()
	ownerOf := func(method string) string {
		t.Helper()
		r, ok, err := fake.Last(ctx, fakegemini.Filter{Method: method})
		if err != nil || !ok || r.Status != 200 {
			t.Fatalf("fake saw no successful %s: %v", method, err)
		}
		return r.Key
	}
	onlyOn := func(method, owner string) {
		t.Helper()
		reqs, err := fake.Requests(ctx, fakegemini.Filter{Method: method})
		if err != nil || len(reqs) == 0 {
			t.Fatalf("fake saw no %s: %v", method, err)
		}
		for _, r := range reqs {
			if r.Key != owner {
				t.Errorf("%s went out on another key than the owner's (status %d)", method, r.Status)
			}
		}
	}

	// Context cache.
	cc, err := a0.Caches.Create(ctx, "gemini-2.5-flash", &genai.CreateCachedContentConfig{
		TTL: 10 * time.Minute, SystemInstruction: genai.NewContentFromText("You review Go code.", genai.RoleUser),
		Contents: genai.Text("package main\nfunc main() {}"),
	})
	if err != nil {
		t.Fatalf("create cache through edge-0: %v", err)
	}
	cacheOwner := ownerOf("cachedContents.create")
	for i := range 4 { // more calls than keys: rotation alone would reach another key
		res, err := a1.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("review"), &genai.GenerateContentConfig{CachedContent: cc.Name})
		if err != nil || res.UsageMetadata == nil || res.UsageMetadata.CachedContentTokenCount == 0 {
			t.Fatalf("generate %d with the cache through edge-1: %v", i, err)
		}
	}
	for _, err := range a1.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("again"), &genai.GenerateContentConfig{CachedContent: cc.Name}) {
		if err != nil {
			t.Fatalf("stream with the cache through edge-1: %v", err)
		}
	}
	if _, err := a1.Caches.Get(ctx, cc.Name, nil); err != nil {
		t.Fatalf("get cache through edge-1: %v", err)
	}
	if _, err := a1.Caches.Update(ctx, cc.Name, &genai.UpdateCachedContentConfig{TTL: time.Hour}); err != nil {
		t.Fatalf("update cache through edge-1: %v", err)
	}
	for _, m := range []string{"generateContent", "streamGenerateContent", "cachedContents.get", "cachedContents.patch"} {
		onlyOn(m, cacheOwner)
	}
	for i, b := range []*genai.Client{b0, b1} {
		if _, err := b.Caches.Get(ctx, cc.Name, nil); genaiStatus(err) != 403 {
			t.Errorf("edge-%d: another token read the cache: %v", i, err)
		}
		if _, err := b.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("x"), &genai.GenerateContentConfig{CachedContent: cc.Name}); genaiStatus(err) != 403 {
			t.Errorf("edge-%d: another token used the cache: %v", i, err)
		}
		if _, err := b.Caches.Delete(ctx, cc.Name, nil); genaiStatus(err) != 403 {
			t.Errorf("edge-%d: another token deleted the cache: %v", i, err)
		}
		if page, err := b.Caches.List(ctx, nil); err != nil || len(page.Items) != 0 {
			t.Errorf("edge-%d: another token lists %d caches (%v)", i, len(page.Items), err)
		}
	}
	if page, err := a1.Caches.List(ctx, nil); err != nil || len(page.Items) != 1 || page.Items[0].Name != cc.Name {
		t.Errorf("owner's cache list through edge-1: %v", err)
	}

	// Batch.
	job, err := a0.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{
		{Contents: genai.Text("first")}, {Contents: genai.Text("second")}}}, &genai.CreateBatchJobConfig{DisplayName: "e2e"})
	if err != nil {
		t.Fatalf("create batch through edge-0: %v", err)
	}
	batchOwner := ownerOf("batchGenerateContent")
	for i, b := range []*genai.Client{b0, b1} {
		if _, err := b.Batches.Get(ctx, job.Name, nil); genaiStatus(err) != 403 {
			t.Errorf("edge-%d: another token read the batch: %v", i, err)
		}
		if err := b.Batches.Cancel(ctx, job.Name, nil); genaiStatus(err) != 403 {
			t.Errorf("edge-%d: another token cancelled the batch: %v", i, err)
		}
		if page, err := b.Batches.List(ctx, nil); err != nil || len(page.Items) != 0 {
			t.Errorf("edge-%d: another token lists %d batches (%v)", i, len(page.Items), err)
		}
	}
	for range 3 {
		done, err := a1.Batches.Get(ctx, job.Name, nil)
		if err != nil || done.State != genai.JobStateSucceeded || done.Dest == nil || len(done.Dest.InlinedResponses) != 2 ||
			done.Dest.InlinedResponses[1].Response.Text() != "echo: second" {
			t.Fatalf("batch through edge-1: %v %+v", err, done)
		}
	}
	onlyOn("batches.get", batchOwner)
	if page, err := a1.Batches.List(ctx, nil); err != nil || len(page.Items) != 1 {
		t.Errorf("owner's batch list through edge-1: %v", err)
	}
	if _, err := a1.Batches.Delete(ctx, job.Name, nil); err != nil {
		t.Fatalf("delete batch through edge-1: %v", err)
	}
	onlyOn("batches.delete", batchOwner)

	// Long-running video operation and its file.
	op, err := a0.Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001", &genai.GenerateVideosSource{Prompt: "a lighthouse"}, nil)
	if err != nil {
		t.Fatalf("start video through edge-0: %v", err)
	}
	opOwner := ownerOf("predictLongRunning")
	if _, err := b1.Operations.GetVideosOperation(ctx, op, nil); genaiStatus(err) != 403 {
		t.Errorf("another token polled the operation: %v", err)
	}
	for range 2 {
		if op, err = a1.Operations.GetVideosOperation(ctx, op, nil); err != nil {
			t.Fatalf("poll through edge-1: %v", err)
		}
	}
	if !op.Done || op.Response == nil || len(op.Response.GeneratedVideos) != 1 {
		t.Fatalf("operation: %+v", op)
	}
	video := genai.NewDownloadURIFromGeneratedVideo(op.Response.GeneratedVideos[0])
	if data, err := a0.Files.Download(ctx, video, nil); err != nil || string(data) != "fake-mp4 0: a lighthouse" {
		t.Fatalf("download through edge-0: %v %q", err, data)
	}
	if data, _ := b0.Files.Download(ctx, video, nil); strings.Contains(string(data), "fake-mp4") {
		t.Error("another token downloaded the video")
	}
	onlyOn("operations.get", opOwner)
	onlyOn("files.download", opOwner)

	// Every route is a request event naming its key by hint; no secret travels.
	routes := []string{"gemini.cachedContents.create", "gemini.cachedContents.get", "gemini.cachedContents.patch",
		"gemini.batchGenerateContent", "gemini.batches.get", "gemini.predictLongRunning", "gemini.operations.get", "gemini.files.download"}
	tap.waitFor(t, ctx, func(msgs []*nats.Msg) bool {
		seen := map[string]bool{}
		for _, ev := range requestEvents(msgs) {
			if ev.Success && ev.KeyHint != "" {
				seen[ev.Route] = true
			}
		}
		for _, r := range routes {
			if !seen[r] {
				return false
			}
		}
		return true
	}, "a successful request event with a key for each resource route")
	noSecrets(t, s, tap)

	// The key holding the cache is disabled: the cache is out of reach, said
	// plainly, and no other key is tried.
	code, body, _ := adminDo(t, s, http.MethodPost, "/api/keys/disable", `{"ids":["`+redact.ID(cacheOwner)+`"],"reason":"e2e"}`)
	if code != http.StatusOK {
		t.Fatalf("disable the cache's key: %d %s", code, body)
	}
	if err := fake.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = a1.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("x"), &genai.GenerateContentConfig{CachedContent: cc.Name})
	if genaiStatus(err) != 503 || !strings.Contains(err.Error(), "disabled or was removed") {
		t.Errorf("generate on the cache of a disabled key: %v", err)
	}
	if _, err := a0.Caches.Get(ctx, cc.Name, nil); genaiStatus(err) != 503 {
		t.Errorf("get of the cache of a disabled key: %v", err)
	}
	if st, err := fake.Stats(ctx); err != nil || st.Total != 0 {
		t.Errorf("%d calls went upstream on another key (%v)", st.Total, err)
	}
}
