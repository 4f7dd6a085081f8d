package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/e2e/stack"
)

// A client token with a model allow-list may use its models (and their
// derived variants) on every route, is refused any other model with 403 in
// the route's own error shape, and sees only its models in the model lists;
// lifting the list opens everything. Clients are the official SDKs.
func TestTokenModelAllowListIsEnforcedByEdgeInEachRoutesShape(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, NATSConfig: "../nats/nats.conf"})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var tok struct {
		ID     string   `json:"id"`
		Token  string   `json:"token"`
		Models []string `json:"models"`
	}
	adminCall(t, s, "POST", "/api/tokens", `{"name":"flash only","models":["gemini-2.5-flash"]}`, http.StatusCreated, &tok)
	gc := geminiWith(t, s, 0, tok.Token)
	eventually(t, ctx, "edge accepts the new token", func() (bool, string) {
		_, err := gc.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
		return err == nil, fmt.Sprint(err)
	})
	// A derived variant counts as its base.
	if _, err := gc.Models.GenerateContent(ctx, "gemini-2.5-flash-non-thinking", genai.Text("hi"), nil); err != nil {
		t.Fatalf("derived variant of an allowed model: %v", err)
	}
	_, err := gc.Models.GenerateContent(ctx, "gemini-2.5-pro", genai.Text("hi"), nil)
	var gerr genai.APIError
	if !errors.As(err, &gerr) || gerr.Code != http.StatusForbidden || gerr.Status != "PERMISSION_DENIED" {
		t.Fatalf("native call to a model outside the list: %v, want 403 PERMISSION_DENIED", err)
	}
	var names []string
	for m, err := range gc.Models.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.TrimPrefix(m.Name, "models/"))
	}
	if !slices.Contains(names, "gemini-2.5-flash") || slices.Contains(names, "gemini-2.5-pro") || slices.Contains(names, "gemini-2.0-flash") {
		t.Fatalf("native model list for the token = %v, want only gemini-2.5-flash and its variants", names)
	}

	oc := openai.NewClient(option.WithBaseURL(s.EdgeURL(0)+"/v1/"), option.WithAPIKey(tok.Token), option.WithMaxRetries(0))
	chat := func(model string) error {
		_, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
		return err
	}
	if err := chat("gemini-2.5-flash"); err != nil {
		t.Fatalf("OpenAI chat with the allowed model: %v", err)
	}
	var oerr *openai.Error
	if err := chat("gemini-2.5-pro"); !errors.As(err, &oerr) || oerr.StatusCode != http.StatusForbidden || oerr.Code != "model_not_allowed" {
		t.Fatalf("OpenAI chat with a model outside the list: %v, want 403 model_not_allowed", err)
	}
	if _, err := oc.Responses.New(ctx, responses.ResponseNewParams{Model: "gemini-2.5-pro",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}); !errors.As(err, &oerr) || oerr.StatusCode != http.StatusForbidden || oerr.Code != "model_not_allowed" {
		t.Fatalf("Responses API with a model outside the list: %v, want 403 model_not_allowed", err)
	}
	page, err := oc.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if !slices.Contains(ids, "gemini-2.5-flash") || slices.Contains(ids, "gemini-2.5-pro") {
		t.Fatalf("OpenAI model list for the token = %v", ids)
	}

	// Lifted: every model again, once the change reaches edge.
	adminCall(t, s, "PATCH", "/api/tokens/"+tok.ID, `{"models":[]}`, http.StatusOK, nil)
	eventually(t, ctx, "edge lifts the restriction", func() (bool, string) {
		err := chat("gemini-2.5-pro")
		return err == nil, fmt.Sprint(err)
	})
}

// The live tail (GET /api/live on admind) shows a request through edge as it
// happens, fed from NATS, with masked hints only.
func TestLiveTailShowsARequestAsItHappens(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, NATSConfig: "../nats/nats.conf"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.AdminURL()+"/api/live?model=gemini-2.5-flash", nil)
	req.Header.Set("Authorization", "Bearer "+s.AuthToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("live: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	frames := make(chan [2]string, 64)
	go func() {
		defer close(frames)
		r := bufio.NewReader(resp.Body)
		var ev string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				ev = line[7:]
			case strings.HasPrefix(line, "data: "):
				frames <- [2]string{ev, line[6:]}
			}
		}
	}()
	if f := <-frames; f[0] != "ready" {
		t.Fatalf("first frame %v, want ready", f)
	}
	prompt := "live tail " + time.Now().Format(time.RFC3339Nano)
	if _, err := s.Gemini(t, 0).Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text(prompt), nil); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatal("the live stream ended")
			}
			if f[0] != "request" {
				continue
			}
			var row struct {
				Model, KeyHint, TokenHint, Route string
				KeyID                            string `json:"key_id"`
				Status                           int
			}
			_ = json.Unmarshal([]byte(f[1]), &row)
			for _, secret := range append(s.Keys(), s.Tokens()...) {
				if strings.Contains(f[1], secret) {
					t.Fatalf("a live event carries a secret: %s", f[1])
				}
			}
			if row.Model != "gemini-2.5-flash" || row.Status != 200 || row.KeyID == "" {
				t.Fatalf("live row = %s", f[1])
			}
			return
		case <-ctx.Done():
			t.Fatal("the request never showed in the live tail")
		}
	}
}

// The scheduler page's status and run-now, the model pickers' list and the
// key export work across the real processes.
func TestSchedulerRunNowModelListAndKeyExportAcrossProcesses(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, NATSConfig: "../nats/nats.conf"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type tick struct {
		Name, Last string
		Enabled    bool
		Next       time.Time
	}
	var st struct{ Ticks []tick }
	adminCall(t, s, "GET", "/api/scheduler", "", http.StatusOK, &st)
	if len(st.Ticks) != 2 || st.Ticks[0].Name != "recover" || st.Ticks[1].Next.IsZero() {
		t.Fatalf("scheduler status = %+v", st)
	}
	var run struct{ Slot string }
	adminCall(t, s, "POST", "/api/scheduler/retention/run", "", http.StatusAccepted, &run)
	eventually(t, ctx, "status shows the manual tick", func() (bool, string) {
		adminCall(t, s, "GET", "/api/scheduler", "", http.StatusOK, &st)
		return st.Ticks[1].Last == run.Slot, st.Ticks[1].Last
	})

	var models struct {
		Source string
		Models []struct{ Name string }
	}
	adminCall(t, s, "GET", "/api/models", "", http.StatusOK, &models)
	if models.Source != "upstream" || !slices.ContainsFunc(models.Models, func(m struct{ Name string }) bool { return m.Name == "gemini-2.5-pro" }) {
		t.Fatalf("models = %+v", models)
	}

	code, body, h := adminDo(t, s, "GET", "/api/keys/export?status=valid", "")
	lines := strings.Fields(body)
	slices.Sort(lines)
	want := s.Keys()
	slices.Sort(want)
	if code != 200 || h.Get("Cache-Control") != "no-store" || !slices.Equal(lines, want) {
		t.Fatalf("export: %d %v, want the stack's keys", code, h)
	}
}
