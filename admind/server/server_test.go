package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/admind/server"
	"github.com/gemini-balance-go/admind/settings"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/testkit/natstest"
	"github.com/gemini-balance-go/testkit/storetest"
	"github.com/gemini-balance-go/testkit/wait"
)

const (
	adminPW     = "admin-password-123"
	clientToken = "sk-client-token-aaaaaaaaaaaaaaaaaaaa"
	apiKey1     = "AIzaSyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	apiKey2     = "AIzaSyBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
)

type env struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	db   *mongo.Database
	live *natsx.Settings
	http *httptest.Server
	srv  *server.Server
}

func seed() config.Settings {
	s := config.Defaults()
	s.AuthToken = adminPW
	s.AllowedTokens = []string{clientToken}
	s.APIKeys = []string{apiKey1, apiKey2}
	return s
}

// start runs admind on embedded NATS and FerretDB. db may be reused across
// starts to model a restart.
func start(t *testing.T, nc *nats.Conn, db *mongo.Database, sd config.Settings, opts ...func(*server.Deps)) *env {
	t.Helper()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithCancel(context.Background())
	live := natsx.NewSettings(sd)
	d := server.Deps{NC: nc, DB: db, Settings: live, Seed: &sd, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Replica: "t1", PingWindow: 200 * time.Millisecond}
	for _, o := range opts {
		o(&d)
	}
	srv, err := server.New(d)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	e := &env{nc: nc, js: js, db: db, live: live, http: hs, srv: srv}
	// Run has bootstrapped once the settings are in the bucket and admind's
	// micro service (registered last, after the token sync) answers.
	waitFor(t, func() bool {
		_, ok, _ := natsx.FetchSettings(context.Background(), js)
		if !ok {
			return false
		}
		_, err := nc.Request("$SRV.PING.admind", nil, 200*time.Millisecond)
		return err == nil
	})
	return e
}

// infra starts embedded NATS with the bus provisioned (as every service
// does at start) and FerretDB.
func infra(t *testing.T) (*nats.Conn, *mongo.Database) {
	t.Helper()
	return natstest.StartBus(t).NC, storetest.Database(t, storetest.Start(t), "gb_test")
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	wait.For(t, "condition", ok)
}

func (e *env) do(t *testing.T, method, path, bearer, body string) (int, string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

func TestFirstStartSeedsSettingsWithoutAnySecretAndPublishesThem(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	stored, ok, err := settings.NewStore(db, e.js, nil).Load(context.Background())
	if err != nil || !ok {
		t.Fatalf("no stored settings: %v", err)
	}
	if len(stored.AllowedTokens) != 1 || stored.AuthToken != "" || len(stored.APIKeys) != 0 {
		t.Fatalf("stored: tokens %d, password %q, keys %d", len(stored.AllowedTokens), stored.AuthToken, len(stored.APIKeys))
	}
	raw := e.rawSecrets(t)
	for _, secret := range []string{adminPW, apiKey1, apiKey2} {
		if strings.Contains(raw, secret) {
			t.Fatalf("a secret sits in the settings document or bucket: %s", secret[:4])
		}
	}
	if !strings.Contains(raw, "$argon2id$") {
		t.Fatal("no argon2id hash of the admin password stored")
	}
	if code, _, _ := e.do(t, "GET", "/api/config", adminPW, ""); code != 200 {
		t.Fatalf("the environment's AUTH_TOKEN does not log in: %d", code)
	}
}

// rawSecrets is everything stored about settings and the admin, as text:
// the settings and admins collections and the settings bucket's value.
func (e *env) rawSecrets(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	var out strings.Builder
	for _, coll := range []string{settings.Collection, "admins"} {
		cur, err := e.db.Collection(coll).Find(ctx, bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		var docs []bson.M
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(docs)
		out.Write(b)
	}
	kv, err := e.js.KeyValue(ctx, "gb_settings")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(ctx, "current")
	if err != nil {
		t.Fatal(err)
	}
	out.Write(entry.Value())
	return out.String()
}

func TestRestartRepublishesStoredSettingsNotTheEnvironment(t *testing.T) {
	nc, db := infra(t)
	first := seed()
	first.MaxRetries = 7
	st := settings.NewStore(db, mustJS(t, nc), nil)
	ctx := context.Background()
	if err := st.Save(ctx, first); err != nil {
		t.Fatal(err)
	}
	// Wipe the bucket's value, as after a NATS reset, then start with another environment.
	kv, _ := mustJS(t, nc).KeyValue(ctx, "gb_settings")
	_ = kv.Purge(ctx, "current")
	e := start(t, nc, db, seed()) // MAX_RETRIES=3 in the environment
	got, _, _ := natsx.FetchSettings(ctx, e.js)
	if got.MaxRetries != 7 {
		t.Fatalf("published MAX_RETRIES = %d, want the stored 7", got.MaxRetries)
	}
}

func mustJS(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestHealthCountsReplicasOfEveryServiceWithoutLogin(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	for _, name := range []string{"edge", "edge", "keyd"} {
		svc, err := micro.AddService(nc, micro.Config{Name: name, Version: "1.0.0"})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Stop()
	}
	code, body, _ := e.do(t, "GET", "/api/health", "", "")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var rep struct {
		Status   string
		Services []struct {
			Name, Status string
			Replicas     int
		}
	}
	_ = json.Unmarshal([]byte(body), &rep)
	got := map[string]int{}
	for _, s := range rep.Services {
		got[s.Name] = s.Replicas
	}
	want := map[string]int{"edge": 2, "keyd": 1, "logd": 0, "admind": 1, "schedulerd": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s replicas = %d, want %d (%s)", k, got[k], v, body)
		}
	}
	if rep.Status != "degraded" {
		t.Errorf("overall status %q with logd down", rep.Status)
	}
	if strings.Contains(body, adminPW) || strings.Contains(body, apiKey1) {
		t.Error("health leaks a secret")
	}
}

func TestAdminAPINeedsTheAdminPasswordAndNeverAcceptsAClientToken(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	for _, cred := range []string{"", "wrong", clientToken} {
		if code, _, _ := e.do(t, "GET", "/api/config", cred, ""); code != http.StatusUnauthorized {
			t.Errorf("credential %q: status %d, want 401", cred, code)
		}
	}
	if code, _, _ := e.do(t, "GET", "/api/config", adminPW, ""); code != 200 {
		t.Errorf("admin bearer: %d", code)
	}
}

func TestLoginSetsASessionCookieThatIsNotThePassword(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	resp, err := http.PostForm(e.http.URL+"/auth", url.Values{"auth_token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp, err = http.PostForm(e.http.URL+"/auth", url.Values{"auth_token": {adminPW}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "auth_token" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly {
		t.Fatalf("no HttpOnly session cookie: %v", resp.Cookies())
	}
	if strings.Contains(cookie.Value, adminPW) {
		t.Fatal("cookie carries the password")
	}
	req, _ := http.NewRequest("GET", e.http.URL+"/api/config", nil)
	req.AddCookie(cookie)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 {
		t.Fatalf("with session cookie: %d", r2.StatusCode)
	}
	// JSON login works as well.
	if code, _, _ := e.do(t, "POST", "/auth", "", `{"auth_token":"`+adminPW+`"}`); code != 200 {
		t.Fatalf("json login: %d", code)
	}
}

func TestConfigIsShownMaskedAndAMaskedRoundTripKeepsTheSecrets(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	code, body, _ := e.do(t, "GET", "/api/config", adminPW, "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	for _, secret := range []string{apiKey1, apiKey2, clientToken, adminPW} {
		if strings.Contains(body, secret) {
			t.Fatalf("config shows %q in full", secret)
		}
	}
	// Send everything back with one change.
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	m["MAX_RETRIES"] = 5
	patch, _ := json.Marshal(m)
	if code, body, _ := e.do(t, "PUT", "/api/config", adminPW, string(patch)); code != 200 {
		t.Fatalf("put: %d %s", code, body)
	}
	stored, _, _ := settings.NewStore(db, e.js, nil).Load(context.Background())
	if stored.MaxRetries != 5 || len(stored.AllowedTokens) != 1 || stored.AllowedTokens[0] != clientToken {
		t.Fatalf("stored after round trip = tokens %v retries %d", len(stored.AllowedTokens), stored.MaxRetries)
	}
	if code, _, _ := e.do(t, "GET", "/api/config", adminPW, ""); code != 200 {
		t.Fatalf("the masked round trip changed the admin password: %d", code)
	}
}

func TestSavedSettingsApplyLiveThroughTheBucket(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	// Another service's view of the settings.
	other := natsx.NewSettings(config.Defaults())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := other.Watch(ctx, e.js, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := e.do(t, "PUT", "/api/config", adminPW, `{"MAX_FAILURES": 9, "SHOW_SEARCH_LINK": false}`); code != 200 {
		t.Fatalf("put: %d %s", code, body)
	}
	waitFor(t, func() bool { return other.Get().MaxFailures == 9 })
	if other.Get().ShowSearchLink {
		t.Fatal("SHOW_SEARCH_LINK not applied")
	}
	if e.live.Get().MaxFailures != 9 {
		t.Fatal("admind's own live settings not updated")
	}
}

func TestInvalidSettingsAreRejectedNamingTheVariable(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	cases := map[string]string{
		`{"MAX_RETRIES": 0}`:                    "MAX_RETRIES",
		`{"LOG_LEVEL": "loud"}`:                 "LOG_LEVEL",
		`{"MAX_RETRYS": 2}`:                     "MAX_RETRYS",
		`{"AUTH_TOKEN": "` + clientToken + `"}`: "AUTH_TOKEN",
		`{"AUTH_TOKEN": ""}`:                    "AUTH_TOKEN",
		`{"TIMEZONE": "Mars/Olympus"}`:          "TIMEZONE",
		`{"BASE_URL": "generativelanguage"}`:    "BASE_URL",
	}
	for patch, name := range cases {
		code, body, _ := e.do(t, "PUT", "/api/config", adminPW, patch)
		if code != 400 || !strings.Contains(body, name) {
			t.Errorf("%s: %d %s, want 400 naming %s", patch, code, body, name)
		}
	}
	stored, _, _ := settings.NewStore(db, e.js, nil).Load(context.Background())
	if stored.MaxRetries != 3 {
		t.Fatalf("a rejected update was stored: MAX_RETRIES=%d", stored.MaxRetries)
	}
}

func TestFirstRunSetupSetsThePasswordOnceOnly(t *testing.T) {
	nc, db := infra(t)
	sd := seed()
	sd.AuthToken = ""
	e := start(t, nc, db, sd)
	code, body, _ := e.do(t, "GET", "/api/config", "", "")
	if code != 401 || !strings.Contains(body, "setup") {
		t.Fatalf("before setup: %d %s", code, body)
	}
	if code, _, _ := e.do(t, "POST", "/api/setup", "", `{"password":"`+clientToken+`"}`); code != 400 {
		t.Fatalf("client token as admin password: %d", code)
	}
	if code, body, _ := e.do(t, "POST", "/api/setup", "", `{"password":"new-admin-pass"}`); code != 200 {
		t.Fatalf("setup: %d %s", code, body)
	}
	if code, _, _ := e.do(t, "GET", "/api/config", "new-admin-pass", ""); code != 200 {
		t.Fatalf("after setup: %d", code)
	}
	if code, _, _ := e.do(t, "POST", "/api/setup", "", `{"password":"attacker-pass"}`); code != http.StatusConflict {
		t.Fatalf("second setup: %d, want 409", code)
	}
}
