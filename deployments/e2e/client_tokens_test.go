package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/testkit/wait"
)

// A client token created through admind's REST API works on every edge
// replica without a restart; disabling it and revoking it shut it out on its
// next request, with Gemini's 401. The token is shown once, in the creation
// answer, and appears in no event and no process log. The stack runs under
// the deployment's least-privilege NATS users, where admind writes the
// token bucket and edge only watches it.
func TestClientTokenFromAdmindWorksOnEveryEdgeUntilRevoked(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 2, NATSConfig: "../nats/nats.conf"})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tap := tapEvents(t, s)

	var created struct {
		ID    string `json:"id"`
		Hint  string `json:"hint"`
		Token string `json:"token"`
	}
	adminCall(t, s, "POST", "/api/tokens", `{"name":"e2e user"}`, http.StatusCreated, &created)
	if created.Token == "" || created.ID == "" {
		t.Fatalf("creation answer without token or id: %+v", created)
	}
	token := created.Token

	// edge's NATS user can watch the bucket but not change it.
	edgeCannotWriteTheTokenBucket(t, ctx, s, created.ID)

	// Propagation to the edges is asynchronous: call until the token works.
	for i := range 2 {
		c := geminiWith(t, s, i, token)
		prompt := fmt.Sprintf("managed token on edge %d", i)
		var res *genai.GenerateContentResponse
		eventually(t, ctx, fmt.Sprintf("edge-%d accepts the new token", i), func() (bool, string) {
			var err error
			res, err = c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text(prompt), nil)
			return err == nil, fmt.Sprint(err)
		})
		if res.Text() != "echo: "+prompt {
			t.Fatalf("edge-%d answered %q", i, res.Text())
		}
	}
	// Request events name the token by the id admind gave it.
	tap.waitFor(t, ctx, func(msgs []*nats.Msg) bool {
		n := 0
		for _, ev := range requestEvents(msgs) {
			if ev.Success && ev.TokenID == created.ID && ev.TokenHint == created.Hint {
				n++
			}
		}
		return n >= 2
	}, "request events with the managed token's id, one per edge")

	// Disabled: refused on every edge; enabled again: accepted.
	adminCall(t, s, "PATCH", "/api/tokens/"+created.ID, `{"disabled":true}`, http.StatusOK, nil)
	for i := range 2 {
		waitRefused(t, ctx, s, i, token)
	}
	adminCall(t, s, "PATCH", "/api/tokens/"+created.ID, `{"disabled":false}`, http.StatusOK, nil)
	for i := range 2 {
		c := geminiWith(t, s, i, token)
		eventually(t, ctx, fmt.Sprintf("edge-%d accepts the re-enabled token", i), func() (bool, string) {
			_, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("again"), nil)
			return err == nil, fmt.Sprint(err)
		})
	}

	// Revoked: refused on every edge, in Gemini's error shape.
	adminCall(t, s, "DELETE", "/api/tokens/"+created.ID, "", http.StatusOK, nil)
	for i := range 2 {
		waitRefused(t, ctx, s, i, token)
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", s.EdgeURL(0)+"/v1beta/models/gemini-2.5-flash:generateContent",
		strings.NewReader(`{"contents":[{"parts":[{"text":"after revoke"}]}]}`))
	req.Header.Set("x-goog-api-key", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var gerr struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if resp.StatusCode != 401 || json.Unmarshal(body, &gerr) != nil || gerr.Error.Code != 401 || gerr.Error.Status != "UNAUTHENTICATED" || gerr.Error.Message == "" {
		t.Fatalf("revoked token: %d %s, want Gemini's 401 error", resp.StatusCode, body)
	}

	// The token was shown once and went nowhere else: no event, no process
	// log (the fake upstream's included: the token is never forwarded).
	for _, m := range tap.all() {
		if bytes.Contains(eventPayload(t, m), []byte(token)) {
			t.Errorf("event on %s carries the managed token", m.Subject)
		}
	}
	for name, log := range s.Logs() {
		if strings.Contains(log, token) {
			t.Errorf("log of %s carries the managed token", name)
		}
		if name == "nats" {
			continue // it logged the refusals edgeCannotWriteTheTokenBucket provoked
		}
		if strings.Contains(strings.ToLower(log), "permissions violation") || strings.Contains(log, "Subscription Violation") {
			t.Errorf("%s hit a NATS permission violation:\n%s", name, log)
		}
	}
	noSecrets(t, s, tap)
}

// adminCall calls admind's REST API with the admin password (adminDo),
// checks the status and decodes the answer into out (when not nil).
func adminCall(t *testing.T, s *stack.Stack, method, path, body string, want int, out any) {
	t.Helper()
	code, data, _ := adminDo(t, s, method, path, body)
	if code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, data, want)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(data), out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
}

// geminiWith is the official SDK on edge i with the given client token.
func geminiWith(t *testing.T, s *stack.Stack, i int, token string) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: token, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: s.EdgeURL(i) + "/", APIVersion: "v1beta"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitRefused calls edge i with token until it answers 401; any other error
// or a success after the deadline fails the test.
func waitRefused(t *testing.T, ctx context.Context, s *stack.Stack, i int, token string) {
	t.Helper()
	c := geminiWith(t, s, i, token)
	eventually(t, ctx, fmt.Sprintf("edge-%d refuses the token with 401", i), func() (bool, string) {
		_, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("refused?"), nil)
		var apiErr genai.APIError
		if errors.As(err, &apiErr) && apiErr.Code == http.StatusUnauthorized {
			return true, ""
		}
		return false, fmt.Sprint(err)
	})
}

// eventually retries cond until it holds or ctx ends; last says what the
// final attempt saw.
func eventually(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	if !wait.Poll(ctx, func() (ok bool) { ok, last = cond(); return ok }) {
		t.Fatalf("%s: never happened; last attempt: %s", what, last)
	}
}

// edgeCannotWriteTheTokenBucket logs in as the deployment's edge user and
// tries to forge an entry and to purge the bucket's stream: NATS refuses
// both. (Had either gone through, the token would never start working on the
// edges, which the caller checks next.)
func edgeCannotWriteTheTokenBucket(t *testing.T, ctx context.Context, s *stack.Stack, id string) {
	t.Helper()
	// The stack gives every deployment user the password e2e-<user>-secret;
	// TapURL carries the tap user's.
	url := strings.Replace(s.TapURL(), "tap:e2e-tap-secret@", "edge:e2e-edge-secret@", 1)
	refused := make(chan error, 4)
	nc, err := nats.Connect(url, nats.Name("e2e-as-edge"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			refused <- err
		}
	}))
	if err != nil {
		t.Fatalf("connect as edge: %v", err)
	}
	defer nc.Close()
	forged, _ := json.Marshal(map[string]any{"v": 1, "id": id, "sha256": strings.Repeat("0", 64)})
	for _, subject := range []string{"$KV." + bus.BucketClientTokens + "." + id, "$JS.API.STREAM.PURGE.KV_" + bus.BucketClientTokens} {
		if err := nc.Publish(subject, forged); err != nil {
			t.Fatal(err)
		}
		select {
		case <-refused:
		case <-ctx.Done():
			t.Fatalf("edge's NATS user may publish to %s", subject)
		}
	}
}
