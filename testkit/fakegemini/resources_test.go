package fakegemini_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

// forbidden reports a genai error with HTTP 403.
func forbidden(err error) bool {
	var ae genai.APIError
	return errors.As(err, &ae) && ae.Code == 403
}

// The genai SDK pointed straight at the fake parses every cache answer, and a
// cache is usable only with the key that created it, as on Google.
func TestCachesBelongToTheKeyThatCreatedThem(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"k1", "k2"}})
	ctx := context.Background()
	c1, c2 := client(t, fake.URL, "k1"), client(t, fake.URL, "k2")
	cc, err := c1.Caches.Create(ctx, "gemini-2.5-flash", &genai.CreateCachedContentConfig{
		DisplayName: "repo", TTL: 10 * time.Minute,
		SystemInstruction: genai.NewContentFromText("You review Go code.", genai.RoleUser),
		Contents:          genai.Text("package main func main() {}"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cc.Name, "cachedContents/") || cc.Model != "models/gemini-2.5-flash" || cc.DisplayName != "repo" ||
		cc.ExpireTime.Before(time.Now().Add(9*time.Minute)) || cc.UsageMetadata == nil || cc.UsageMetadata.TotalTokenCount == 0 {
		t.Fatalf("created %+v", cc)
	}
	if owner, _ := fake.ResourceOwner(cc.Name); owner != "k1" {
		t.Fatalf("owner %q", owner)
	}
	res, err := c1.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("review"), &genai.GenerateContentConfig{CachedContent: cc.Name})
	if err != nil || res.UsageMetadata.CachedContentTokenCount != cc.UsageMetadata.TotalTokenCount {
		t.Fatalf("generate with cache: %v %+v", err, res)
	}
	if _, err := c1.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("x"), &genai.GenerateContentConfig{
		CachedContent: cc.Name, SystemInstruction: genai.NewContentFromText("no", genai.RoleUser)}); err == nil {
		t.Error("a systemInstruction beside a cache was accepted")
	}
	if _, err := c2.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("review"), &genai.GenerateContentConfig{CachedContent: cc.Name}); !forbidden(err) {
		t.Errorf("another key used the cache: %v", err)
	}
	if _, err := c2.Caches.Get(ctx, cc.Name, nil); !forbidden(err) {
		t.Errorf("another key read the cache: %v", err)
	}
	page, err := c2.Caches.List(ctx, nil)
	if err != nil || len(page.Items) != 0 {
		t.Errorf("another key lists %d caches (%v)", len(page.Items), err)
	}
	up, err := c1.Caches.Update(ctx, cc.Name, &genai.UpdateCachedContentConfig{TTL: time.Hour})
	if err != nil || !up.ExpireTime.After(cc.ExpireTime) {
		t.Fatalf("update: %v %+v", err, up)
	}
	if _, err := c1.Caches.Delete(ctx, cc.Name, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Caches.Get(ctx, cc.Name, nil); !forbidden(err) {
		t.Errorf("deleted cache still readable: %v", err)
	}
}

// Batches finish on their first poll with one answer per request, in order,
// and only the creating key sees, cancels or deletes them.
func TestBatchesFinishOnFirstPollForTheirKeyOnly(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"k1", "k2"}})
	ctx := context.Background()
	c1, c2 := client(t, fake.URL, "k1"), client(t, fake.URL, "k2")
	job, err := c1.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{
		{Contents: genai.Text("first")}, {Contents: genai.Text("second")}}}, &genai.CreateBatchJobConfig{DisplayName: "eval"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(job.Name, "batches/") || job.State != genai.JobStatePending || job.DisplayName != "eval" {
		t.Fatalf("created %+v", job)
	}
	if _, err := c2.Batches.Get(ctx, job.Name, nil); !forbidden(err) {
		t.Errorf("another key read the batch: %v", err)
	}
	if err := c2.Batches.Cancel(ctx, job.Name, nil); !forbidden(err) {
		t.Errorf("another key cancelled the batch: %v", err)
	}
	done, err := c1.Batches.Get(ctx, job.Name, nil)
	if err != nil || done.State != genai.JobStateSucceeded || done.Dest == nil || len(done.Dest.InlinedResponses) != 2 ||
		done.Dest.InlinedResponses[1].Response.Text() != "echo: second" {
		t.Fatalf("finished batch: %v %+v", err, done)
	}
	page, err := c1.Batches.List(ctx, nil)
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("owner lists %d batches (%v)", len(page.Items), err)
	}
	if _, err := c2.Batches.Delete(ctx, job.Name, nil); !forbidden(err) {
		t.Errorf("another key deleted the batch: %v", err)
	}
	if _, err := c1.Batches.Delete(ctx, job.Name, nil); err != nil {
		t.Fatal(err)
	}
}

// A video operation is polled with its key; the finished video is a file of
// that key, downloadable with it only.
func TestVideoOperationAndItsFileBelongToTheStartingKey(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{"k1", "k2"}})
	ctx := context.Background()
	c1, c2 := client(t, fake.URL, "k1"), client(t, fake.URL, "k2")
	op, err := c1.Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001", &genai.GenerateVideosSource{Prompt: "a lighthouse"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if op.Done || !strings.Contains(op.Name, "/operations/") {
		t.Fatalf("started %+v", op)
	}
	if _, err := c2.Operations.GetVideosOperation(ctx, op, nil); !forbidden(err) {
		t.Errorf("another key polled the operation: %v", err)
	}
	op, err = c1.Operations.GetVideosOperation(ctx, op, nil)
	if err != nil || !op.Done || op.Response == nil || len(op.Response.GeneratedVideos) != 1 {
		t.Fatalf("poll: %v %+v", err, op)
	}
	v := op.Response.GeneratedVideos[0]
	// The SDK's Download returns any body without looking at the status.
	if data, _ := c2.Files.Download(ctx, genai.NewDownloadURIFromGeneratedVideo(v), nil); !strings.Contains(string(data), "PERMISSION_DENIED") {
		t.Errorf("another key downloaded the video: %q", data)
	}
	data, err := c1.Files.Download(ctx, genai.NewDownloadURIFromGeneratedVideo(v), nil)
	if err != nil || string(data) != "fake-mp4 0: a lighthouse" {
		t.Fatalf("download: %v %q", err, data)
	}
}
