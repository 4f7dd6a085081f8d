package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/testkit/fakegemini"
	"github.com/gemini-balance-go/testkit/wait"
)

// keyShape is any Google API key: the gateway must mask every one, not only
// the key of the attempt.
var keyShape = regexp.MustCompile(`AIza[0-9A-Za-z_\-]{35}`)

// realKeys are n keys of Google's real shape (AIza + 35).
func realKeys(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("AIzaSyE2E_secret_key_%017d", i))
	}
	return out
}

// leak names the secret text carries (a key, any AIza-shaped run, a token
// or the consumer/container metadata), or "".
func leak(text string, secrets []string) string {
	text = strings.ReplaceAll(text, `\/`, "/")
	for _, s := range secrets {
		if strings.Contains(text, s) {
			return s[:8] + "…"
		}
	}
	if m := keyShape.FindString(text); m != "" {
		return m[:8] + "…"
	}
	for _, w := range []string{"containerInfo", "projects/"} {
		if strings.Contains(text, w) {
			return w
		}
	}
	return ""
}

// (a) Every key answers Google's CONSUMER_SUSPENDED, which names the key three
// times. Whatever the route (native generate, stream and files with the genai
// SDK; the /openai/v1 passthrough, stream too, and the converted route with
// openai-go; a stream cut midway), the client never sees a key, nor do the
// stored error and request logs, the events or any process log; and every
// suspended key is disabled.
func TestConsumerSuspendedNeverShowsAKeyToClientsLogsOrEvents(t *testing.T) {
	keys := realKeys(8)
	s := stack.Start(t, stack.Options{Edges: 1, Keys: keys, Without: []string{"admind", "schedulerd"},
		Env: map[string]string{"MAX_RETRIES": "1", "ERROR_LOG_RECORD_REQUEST_BODY": "true"}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tap := tapEvents(t, s)
	secrets := append(append(s.Keys(), s.Tokens()...), s.AuthToken())
	check := func(what, text string) {
		t.Helper()
		if l := leak(text, secrets); l != "" {
			t.Errorf("%s shows %s: %s", what, l, text)
		}
	}
	gc := s.Gemini(t, 0)

	// A stream that breaks midway with CONSUMER_SUSPENDED: the error tail.
	if err := s.Fake().Script(ctx, "gemini-2.5-flash", fakegemini.Reply{
		Chunks:    [][]fakegemini.Part{{fakegemini.Text("alpha ")}, {fakegemini.Text("beta")}},
		Behaviour: &fakegemini.Behaviour{FailAfter: 1, StreamError: fakegemini.Suspended}}); err != nil {
		t.Fatal(err)
	}
	var streamErr error
	for _, err := range gc.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("hi"), nil) {
		if err != nil {
			streamErr = err
			break
		}
	}
	if streamErr == nil || !strings.Contains(streamErr.Error(), "has been suspended") {
		t.Fatalf("mid-stream suspension: %v", streamErr)
	}
	check("mid-stream error", streamErr.Error())

	// Then every key is suspended before the first byte; MAX_RETRIES=1 makes
	// each request's only attempt its last.
	suspended := map[string]fakegemini.Behaviour{}
	for _, k := range keys {
		suspended[k] = fakegemini.Behaviour{Status: fakegemini.Suspended}
	}
	if err := s.Fake().SetKeys(ctx, suspended); err != nil {
		t.Fatal(err)
	}
	apiErr := func(what string, err error) {
		t.Helper()
		var ae genai.APIError
		if !errors.As(err, &ae) || ae.Code != 403 {
			// uploads wrap the APIError in text
			if err == nil || !strings.Contains(err.Error(), "403") {
				t.Fatalf("%s: want a 403, got %v", what, err)
			}
		}
		check(what, fmt.Sprintf("%v %+v", err, ae))
	}
	_, err := gc.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
	apiErr("genai generate", err)
	for _, err := range gc.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("hi"), nil) {
		apiErr("genai stream", err)
		break
	}
	_, err = gc.Files.Upload(ctx, strings.NewReader("data"), &genai.UploadFileConfig{MIMEType: "text/plain"})
	apiErr("genai upload", err)

	oaiErr := func(what string, err error) {
		t.Helper()
		var oe *openai.Error
		if !errors.As(err, &oe) || oe.StatusCode < 400 {
			t.Fatalf("%s: want an API error, got %v", what, err)
		}
		check(what, string(oe.DumpResponse(true)))
	}
	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}
	for _, base := range []string{"/openai/v1/", "/v1/"} {
		c := openai.NewClient(option.WithBaseURL(s.EdgeURL(0)+base), option.WithAPIKey(s.Tokens()[0]), option.WithMaxRetries(0))
		_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gemini-2.5-flash", Messages: msgs})
		oaiErr("openai-go "+base, err)
	}
	pc := openai.NewClient(option.WithBaseURL(s.EdgeURL(0)+"/openai/v1/"), option.WithAPIKey(s.Tokens()[0]), option.WithMaxRetries(0))
	st := pc.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "gemini-2.5-flash", Messages: msgs})
	for st.Next() {
	}
	oaiErr("openai-go passthrough stream", st.Err())

	// The same raw, byte for byte, on the native route: whatever key is left.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.EdgeURL(0)+"/v1beta/models/gemini-2.5-flash:generateContent",
		strings.NewReader(`{"contents":[{"parts":[{"text":"hi"}]}]}`))
	req.Header.Set("x-goog-api-key", s.Tokens()[0])
	if res, err := http.DefaultClient.Do(req); err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		check("raw native body", string(b))
	}

	// The stored logs: one error row per failed attempt, and the request rows.
	db := s.Mongo(t)
	var rows []bson.M
	wait.Poll(ctx, func() bool {
		cur, err := db.Collection("error_logs").Find(ctx, bson.D{})
		if err == nil {
			rows = rows[:0]
			_ = cur.All(ctx, &rows)
		}
		return len(rows) >= 7
	})
	if len(rows) < 7 {
		t.Fatalf("logd stored %d error rows, want 7", len(rows))
	}
	suspendedRows := 0
	for _, r := range rows {
		j, _ := bson.MarshalExtJSON(r, false, false)
		check("stored error log", string(j))
		if strings.Contains(string(j), "has been suspended") {
			suspendedRows++
		}
	}
	if suspendedRows == 0 {
		t.Error("no stored error names the suspension (the message was lost, not masked)")
	}
	// Request events leave after the attempts' error events (a request's
	// event is sent when it ends), so the error rows above may be stored
	// first: wait for the seven requests' rows, or what is there after 15 s.
	var reqRows []logstore.RequestLog
	rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
	wait.Poll(rctx, func() bool {
		reqRows, err = requestLogs(ctx, db)
		return err == nil && len(reqRows) >= 7
	})
	rcancel()
	if err != nil || len(reqRows) == 0 {
		t.Errorf("stored request logs: %d (%v)", len(reqRows), err)
	}
	for _, r := range reqRows {
		j, _ := bson.MarshalExtJSON(r, false, false)
		check("stored request log", string(j))
	}
	for _, m := range tap.all() {
		check("event on "+m.Subject, string(eventPayload(t, m)))
	}
	noSecrets(t, s, tap)
	for name, log := range s.Logs() {
		if name != "fake" {
			if l := leak(log, secrets); l != "" {
				t.Errorf("log of %s shows %s", name, l)
			}
		}
	}
}

// (b) Token B cannot use token A's uploaded file, however the reference is
// written: native with escaped slashes, mixed spelling, in systemInstruction
// or as a second reference; OpenAI file part or image_url; the passthrough.
// Each answer is a 403 and the upstream never sees the call.
func TestAnotherTokensFileCannotBeUsedOnAnyRoute(t *testing.T) {
	tokA, tokB := "sk-e2e-token-A-0123456789abcdef", "sk-e2e-token-B-fedcba9876543210"
	s := stack.Start(t, stack.Options{Edges: 2, Tokens: []string{tokA, tokB}, Without: []string{"admind", "schedulerd"}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	f, err := geminiWith(t, s, 0, tokA).Files.Upload(ctx, strings.NewReader("%PDF-1.4 A's secret"), &genai.UploadFileConfig{MIMEType: "application/pdf"})
	if err != nil {
		t.Fatal(err)
	}
	own, err := geminiWith(t, s, 0, tokB).Files.Upload(ctx, strings.NewReader("%PDF-1.4 B's own"), &genai.UploadFileConfig{MIMEType: "application/pdf"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Fake().Reset(ctx); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(f.Name, "files/")
	esc := strings.ReplaceAll(f.URI, "/", `\/`)
	const gen = "/v1beta/models/gemini-2.5-flash:generateContent"
	for _, c := range []struct{ name, path, body string }{
		{"escaped slashes", gen, `{"contents":[{"parts":[{"fileData":{"fileUri":"` + esc + `"}}]}]}`},
		{"mixed spelling", gen, `{"contents":[{"parts":[{"fileData":{"file_uri":"` + f.URI + `"}}]}]}`},
		{"systemInstruction", gen, `{"systemInstruction":{"parts":[{"fileData":{"fileUri":"` + f.URI + `"}}]},"contents":[{"parts":[{"text":"hi"}]}]}`},
		{"second reference", gen, `{"contents":[{"parts":[{"fileData":{"fileUri":"` + own.URI + `"}},{"fileData":{"fileUri":"` + f.URI + `"}}]}]}`},
		{"stream", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", `{"contents":[{"parts":[{"file_data":{"file_uri":"` + esc + `"}}]}]}`},
	} {
		for i := range 2 { // through either edge
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.EdgeURL(i)+c.path, strings.NewReader(c.body))
			req.Header.Set("x-goog-api-key", tokB)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 403 || !strings.Contains(string(b), "PERMISSION_DENIED") {
				t.Errorf("%s via edge-%d: %d %s", c.name, i, res.StatusCode, b)
			}
		}
	}
	_, err = geminiWith(t, s, 1, tokB).Models.GenerateContent(ctx, "gemini-2.5-flash", []*genai.Content{{Role: "user", Parts: []*genai.Part{
		genai.NewPartFromURI(own.URI, "application/pdf"), genai.NewPartFromURI(f.URI, "application/pdf")}}}, nil)
	if apiCode(err) != 403 {
		t.Errorf("genai second reference: %v", err)
	}
	for _, c := range []struct {
		name, base string
		part       openai.ChatCompletionContentPartUnionParam
	}{
		{"openai file part", "/v1/", openai.FileContentPart(openai.ChatCompletionContentPartFileFileParam{FileID: openai.String(id), Filename: openai.String("a.pdf")})},
		{"openai image_url", "/v1/", openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: f.URI})},
		{"passthrough image_url", "/openai/v1/", openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: f.URI})},
		{"passthrough file part", "/openai/v1/", openai.FileContentPart(openai.ChatCompletionContentPartFileFileParam{FileID: openai.String(f.Name)})},
	} {
		oc := openai.NewClient(option.WithBaseURL(s.EdgeURL(1)+c.base), option.WithAPIKey(tokB), option.WithMaxRetries(0))
		_, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gemini-2.5-flash",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{openai.TextContentPart("read"), c.part})}})
		var oe *openai.Error
		if !errors.As(err, &oe) || oe.StatusCode != 403 || oe.Type != "permission_error" {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	st, err := s.Fake().Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 0 {
		t.Errorf("the upstream saw %d calls from token B: %v", st.Total, st.MethodHits)
	}
	// The owner still can.
	if _, err := geminiWith(t, s, 1, tokA).Models.GenerateContent(ctx, "gemini-2.5-flash", []*genai.Content{{Role: "user", Parts: []*genai.Part{
		genai.NewPartFromURI(f.URI, "application/pdf"), genai.NewPartFromText("read")}}}, nil); err != nil {
		t.Errorf("owner: %v", err)
	}
}

// (c) A 403 whose reason is not about the key (Google's "The caller does not
// have permission") goes back to the client as is: no other key is tried and
// the key stays in service.
func TestA403ThatIsNotAboutTheKeyIsNotRetriedAndKeepsTheKey(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, Keys: realKeys(2), Without: []string{"admind", "schedulerd"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fake := s.Fake()
	if err := fake.Script(ctx, "gemini-2.5-flash", fakegemini.Reply{Fail: fakegemini.PermissionDenied}); err != nil {
		t.Fatal(err)
	}
	gc := s.Gemini(t, 0)
	_, err := gc.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
	var ae genai.APIError
	if !errors.As(err, &ae) || ae.Code != 403 || ae.Message != "The caller does not have permission" {
		t.Fatalf("want upstream's 403, got %v", err)
	}
	st, _ := fake.Stats(ctx)
	if st.Total != 1 {
		t.Fatalf("upstream called %d times for one client 403 (retried on another key?)", st.Total)
	}
	last, _, _ := fake.Last(ctx, fakegemini.Filter{Method: "generateContent"})
	// The key still serves: with every other key down, a request succeeds on it.
	others := map[string]fakegemini.Behaviour{}
	for _, k := range s.Keys() {
		if k != last.Key {
			others[k] = fakegemini.Behaviour{Status: fakegemini.Unavailable}
		}
	}
	if err := fake.SetKeys(ctx, others); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil); err != nil {
		t.Fatalf("the key that got a client's 403 no longer serves: %v", err)
	}
	if ok, _, _ := fake.Last(ctx, fakegemini.Filter{Key: last.Key, Method: "generateContent"}); ok.Status != 200 {
		t.Errorf("the last call on the key answered %d", ok.Status)
	}
}

func apiCode(err error) int {
	var ae genai.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}
