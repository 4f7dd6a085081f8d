package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/allinone/app"
	"github.com/gemini-balance-go/deployments/embedded/ferret"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/testkit/fakegemini"
	"github.com/gemini-balance-go/testkit/wait"
)

const (
	key1     = "AIzaSyAllInOneKeyAAAAAAAAAAAAAAAAAAAAA"
	key2     = "AIzaSyAllInOneKeyBBBBBBBBBBBBBBBBBBBBB"
	token    = "sk-allinone-client-token-0123456789"
	adminPW  = "allinone-admin-password"
	testWait = 30 * time.Second
)

var debugLogs = &syncBuffer{}

// syncBuffer collects the JSON log lines of every service.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t testing.TB, dataDir, baseURL string, logs io.Writer) *app.App {
	t.Helper()
	a, err := tryStart(t, dataDir, baseURL, logs)
	if err != nil {
		t.Fatalf("%v; logs:\n%s", err, debugLogs.String())
	}
	return a
}

func tryStart(t testing.TB, dataDir, baseURL string, logs io.Writer, adjust ...func(*config.Infra)) (*app.App, error) {
	t.Helper()
	in, err := config.LoadInfra()
	if err != nil {
		t.Fatal(err)
	}
	in.DataDir, in.NATSListen, in.Replica, in.NATSURL, in.MongoURI = dataDir, "127.0.0.1:0", "aio", "", ""
	in.MetricsAddr, in.TickInterval = "127.0.0.1:0", 300*time.Millisecond
	for _, f := range adjust {
		f(&in)
	}
	st := config.Defaults()
	st.APIKeys = []string{key1, key2}
	st.AllowedTokens = []string{token}
	st.AuthToken = adminPW
	st.BaseURL = baseURL
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	return app.Start(ctx, app.Options{Infra: in, Settings: st, Listener: ln, LogOutput: logs})
}

func stop(t testing.TB, a *app.App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if !wait.Poll(ctx, ok) {
		t.Fatalf("timed out waiting for %s; logs:\n%s", what, debugLogs.String())
	}
}

func get(t *testing.T, url, bearer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The "done when", in one process: a call through the one port is
// answered, its event is seen by a plain `nats sub 'gb.>'`, logd stores the
// row, admind sees all five services, keyd gets recover ticks, and after a
// restart the row and the admin's saved settings are still there.
func TestAllInOneAnswersRecordsAndKeepsDataAcrossRestart(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{key1, key2}})
	dir := t.TempDir()
	logs := debugLogs
	a := start(t, dir, fake.URL, logs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWait)
	defer cancel()

	if code, body := get(t, a.URL+"/health", ""); code != 200 {
		t.Fatalf("/health: %d %s", code, body)
	}

	// A plain subscriber on the NATS_LISTEN address. Not 'gb.>': logd's push
	// consumer delivers on gb.logd._deliver.*, and a plain 'gb.>' subscriber
	// present before logd's own subscriptions takes those deliveries, which
	// then wait out logd's 30 s AckWait (reported to the logd owner).
	if nc, err := nats.Connect(a.NATSURL); err == nil {
		nc.Close()
		t.Fatal("the embedded NATS server accepted a connection without the generated credentials")
	}
	tap, err := nats.Connect(a.TapURL)
	if err != nil {
		t.Fatal(err)
	}
	closedToOthers(t, a, dir)
	var mu sync.Mutex
	var seen []*nats.Msg
	if _, err := tap.Subscribe("gb.events.>", func(m *nats.Msg) { mu.Lock(); seen = append(seen, m); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	_ = tap.Flush()

	c, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: token, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: a.URL + "/", APIVersion: "v1beta"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hello all-in-one"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text() != "echo: hello all-in-one" {
		t.Fatalf("answer %q", res.Text())
	}

	var eventID string
	eventually(t, "a request event on gb.events.>", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range seen {
			var b bus.RequestBatch
			data, err := bus.DecodeBatch(m.Header.Get(bus.HeaderEncoding), m.Data)
			if m.Subject != bus.SubjectEventRequests || err != nil || json.Unmarshal(data, &b) != nil {
				continue
			}
			for _, ev := range b.Events {
				if ev.Success {
					eventID = ev.ID
					return true
				}
			}
		}
		return false
	})
	rows := func(a *app.App) int64 {
		n, _ := requestLogsWithID(ctx, a.Mongo.Database("gemini_balance"), eventID)
		return n
	}
	eventually(t, "logd to store the request row", func() bool {
		return rows(a) == 1
	})

	// admind finds every service over NATS micro discovery.
	eventually(t, "all five services up in /api/health", func() bool {
		_, body := get(t, a.URL+"/api/health", "")
		return strings.Contains(body, `"status":"ok"`)
	})

	// keyd's durable consumer receives schedulerd's recover ticks.
	// The tap may read events only; the operator's credentials may do this.
	op, err := nats.Connect(a.OperatorURL)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	legacy, _ := op.JetStream()
	eventually(t, "keyd to receive a recover tick", func() bool {
		info, err := legacy.ConsumerInfo(bus.StreamTicks, "keyd_recover")
		return err == nil && info.Delivered.Consumer > 0
	})

	// An admin change, to prove settings survive the restart too.
	req, _ := http.NewRequest("PUT", a.URL+"/api/config", strings.NewReader(`{"MAX_RETRIES": 4}`))
	req.Header.Set("Authorization", "Bearer "+adminPW)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT /api/config: %v %v", err, resp)
	}
	resp.Body.Close()
	// Nothing carries a configured secret in full: events, and every log line.
	checkNoSecrets := func() {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		for _, sec := range []string{key1, key2, token, adminPW} {
			for _, m := range seen {
				data, err := bus.DecodeBatch(m.Header.Get(bus.HeaderEncoding), m.Data)
				if err != nil {
					t.Errorf("event on %s does not decode: %v", m.Subject, err)
				}
				if strings.Contains(string(data), sec) { // decoded: compressed bytes hide nothing
					t.Errorf("event on %s carries %s…", m.Subject, sec[:6])
				}
			}
			if strings.Contains(logs.String(), sec) {
				t.Errorf("logs carry %s…", sec[:6])
			}
		}
	}
	checkNoSecrets()
	tap.Close()
	stop(t, a)

	b, err := tryStart(t, dir, fake.URL, logs)
	if err != nil && strings.Contains(err.Error(), "services not up") && strings.Contains(err.Error(), "logd") &&
		strings.Contains(debugLogs.String(), "create indexes; retrying") {
		// Known: logd's EnsureIndexes uses CreateMany, which FerretDB 1.24
		// cannot repeat (docs/ARCHITECTURE.md, FerretDB pitfalls). Remove this
		// skip once logd creates its indexes one at a time. The stored row
		// can still be checked straight in the store.
		st, err := ferret.Start(ctx, ferret.Options{DataDir: filepath.Join(dir, "store")})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Stop()
		cl, err := mongo.Connect(options.Client().ApplyURI(st.URI))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cl.Disconnect(context.Background()) }()
		if n, err := requestLogsWithID(ctx, cl.Database("gemini_balance"), eventID); err != nil || n != 1 {
			t.Fatalf("request row lost across a restart: n=%d err=%v", n, err)
		}
		t.Skip("logd does not come back after a restart: FerretDB 1.24 repeated multi-index createIndexes bug in logd's EnsureIndexes")
	}
	if err != nil {
		t.Fatalf("restart: %v; logs:\n%s", err, debugLogs.String())
	}
	defer stop(t, b)
	closedToOthers(t, b, dir)
	if nc, err := nats.Connect(a.TapURL); err == nil {
		nc.Close()
		t.Fatal("the previous start's tap credentials still work")
	}
	if rows(b) != 1 {
		t.Fatal("request row lost across a restart")
	}
	_, body := get(t, b.URL+"/api/config", adminPW)
	if !strings.Contains(body, `"MAX_RETRIES":4`) {
		t.Fatalf("saved setting lost across restart: %s", body)
	}

	checkNoSecrets()
}

// NATS_LISTEN=off: the services still talk over the in-process bus, and no
// NATS port or credentials file exists.
func TestNATSListenOffOpensNoBusPort(t *testing.T) {
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{key1, key2}})
	dir := t.TempDir()
	a, err := tryStart(t, dir, fake.URL, io.Discard, func(in *config.Infra) { in.NATSListen = "off" })
	if err != nil {
		t.Fatal(err)
	}
	defer stop(t, a)
	if a.NATSURL != "" || a.TapURL != "" {
		t.Fatalf("NATS_LISTEN=off still listens: %q %q", a.NATSURL, a.TapURL)
	}
	for _, f := range []string{app.TapURLFile, app.OperatorURLFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s exists without a listener: %v", f, err)
		}
	}
	eventually(t, "all five services up over the in-process bus", func() bool {
		_, body := get(t, a.URL+"/api/health", "")
		return strings.Contains(body, `"status":"ok"`)
	})
}

// closedToOthers checks what keeps another local user out: DATA_DIR and its
// subdirectories are the owner's alone, the generated NATS credentials are in
// 0600 files, and the store listens on a socket inside DATA_DIR, not on TCP.
func closedToOthers(t *testing.T, a *app.App, dir string) {
	t.Helper()
	for _, d := range []string{dir, filepath.Join(dir, "nats"), filepath.Join(dir, "store")} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want mode 0700", d, fi.Mode().Perm(), err)
		}
	}
	for name, want := range map[string]string{app.TapURLFile: a.TapURL, app.OperatorURLFile: a.OperatorURL} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, want mode 0600", name, err)
			continue
		}
		if b, _ := os.ReadFile(filepath.Join(dir, name)); strings.TrimSpace(string(b)) != want || want == "" {
			t.Errorf("%s holds %q, want the generated URL", name, b)
		}
	}
	if !strings.Contains(a.MongoURI, "store.sock") || strings.Contains(a.MongoURI, "127.0.0.1") {
		t.Errorf("store URI %q, want the Unix socket in DATA_DIR", a.MongoURI)
	}
}

func TestRoutingSendsThePublicAPIToEdgeAndTheRestToAdmin(t *testing.T) {
	edge := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "edge") })
	admin := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "admin") })
	h := app.Route(edge, admin)
	cases := map[string]string{
		"/v1beta/models/x:generateContent": "edge", "/v1/chat/completions": "edge", "/hf/v1/models": "edge",
		"/openai/v1/models": "edge", "/gemini/v1beta/models": "edge", "/vertex-express/v1beta/models": "edge",
		"/upload/v1beta/files": "edge", "/download/v1beta/files/f1:download": "edge", "/health": "edge",
		"/api/health": "admin", "/auth": "admin", "/": "admin", "/metrics": "admin", "/healthz": "admin", "/v1betax": "admin",
	}
	for path, want := range cases {
		rec := &recorder{h: http.Header{}}
		h.ServeHTTP(rec, &http.Request{Method: "GET", URL: mustURL(path)})
		if rec.body.String() != want {
			t.Errorf("%s went to %s, want %s", path, rec.body.String(), want)
		}
	}
}

// requestLogsWithID counts the stored request logs with id (logd keeps them
// in buckets: read through its store).
func requestLogsWithID(ctx context.Context, db *mongo.Database, id string) (int64, error) {
	rows, err := logstore.ReadRequestLogs(ctx, db)
	var n int64
	for _, r := range rows {
		if r.ID == id {
			n++
		}
	}
	return n, err
}
