package e2e_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
)

// The distributed deployment's NATS config gives each service its own user
// with least privileges. The whole flow must work under it: edge acquires a
// key from keyd and publishes events, logd stores them, admind sees every
// service, and an operator's read-only tap user sees the events.
func TestWholeStackWorksUnderTheDeploymentNATSPermissions(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, NATSConfig: "../nats/nats.conf"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tap := tapEvents(t, s)

	res, err := s.Gemini(t, 0).Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("under permissions"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text() != "echo: under permissions" {
		t.Fatalf("answer %q", res.Text())
	}

	var id string
	tap.waitFor(t, ctx, func(msgs []*nats.Msg) bool {
		for _, ev := range requestEvents(msgs) {
			if ev.Success {
				id = ev.ID
			}
		}
		return id != ""
	}, "the request event, seen by the tap user")

	db := s.Mongo(t)
	for {
		n, err := countRequestLogs(ctx, db, func(r *logstore.RequestLog) bool { return r.ID == id })
		if err == nil && n == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("logd did not store request %s under its NATS user: n=%d err=%v", id, n, err)
		case <-time.After(200 * time.Millisecond):
		}
	}

	// admind (its own user) discovers every service.
	resp, err := http.Get(s.AdminURL() + "/api/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var health struct {
		Services []struct {
			Name     string `json:"name"`
			Replicas int    `json:"replicas"`
		} `json:"services"`
	}
	if err := json.Unmarshal(body, &health); err != nil {
		t.Fatalf("health body %s: %v", body, err)
	}
	seen := map[string]int{}
	for _, svc := range health.Services {
		seen[svc.Name] = svc.Replicas
	}
	for _, name := range bus.AllServices {
		if seen[name] < 1 {
			t.Errorf("admind does not see %s under the deployment permissions: %s", name, body)
		}
	}
	// Nothing was refused along the way: a refused subscription or publish
	// is logged by nats-server and by the client that hit it.
	for name, log := range s.Logs() {
		if strings.Contains(strings.ToLower(log), "permissions violation") || strings.Contains(log, "Subscription Violation") {
			t.Errorf("%s hit a NATS permission violation:\n%s", name, log)
		}
	}
	noSecrets(t, s, tap)
}
