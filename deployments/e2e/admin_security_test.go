package e2e_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/shared/bus"
)

// call sends one request to base+path with optional headers and cookie.
func call(t *testing.T, base, method, path, body string, hdr map[string]string, cookie *http.Cookie) (int, string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp
}

func cookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "auth_token" && c.Value != "" {
			return c
		}
	}
	return nil
}

func loginAt(t *testing.T, base, pw string, hdr map[string]string) (int, *http.Cookie, *http.Response) {
	t.Helper()
	code, _, resp := call(t, base, "POST", "/auth", `{"auth_token":"`+pw+`"}`, hdr, nil)
	return code, cookieOf(resp), resp
}

// Two admind processes on one store, first run (no AUTH_TOKEN), no
// ENCRYPTION_KEY; admind-1 trusts loopback as its TLS-terminating proxy.
// Covers setup racing across replicas, the encryption warning, login
// throttling, CSRF, the Secure cookie, session revocation across replicas,
// the body cap on unauthenticated routes, and the admin password never
// becoming a client token on edge.
func TestAdminSessionsAcrossTwoAdmindReplicas(t *testing.T) {
	s := stack.Start(t, stack.Options{Edges: 1, Admins: 2,
		Env:        map[string]string{"AUTH_TOKEN": ""},
		ServiceEnv: map[string]map[string]string{"admind-1": {"TRUSTED_PROXIES": "127.0.0.0/8"}},
	})
	a, b := s.AdminURL(), s.URL("admind-1")

	// Racing setups on both replicas: exactly one wins.
	const racers = 6
	codes := make([]int, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			base := a
			if i%2 == 1 {
				base = b
			}
			codes[i], _, _ = call(t, base, "POST", "/api/setup", `{"password":"racing-admin-pw-`+strconv.Itoa(i)+`"}`, nil, nil)
		})
	}
	wg.Wait()
	winner := -1
	for i, c := range codes {
		if c == 200 {
			if winner >= 0 {
				t.Fatalf("two setups won: %v", codes)
			}
			winner = i
		} else if c != 409 {
			t.Fatalf("setup answers %v, want one 200 and 409s", codes)
		}
	}
	if winner < 0 {
		t.Fatalf("no setup won: %v", codes)
	}
	pw := "racing-admin-pw-" + strconv.Itoa(winner)
	for _, base := range []string{a, b} {
		if code, _, _ := call(t, base, "GET", "/api/config", "", map[string]string{"Authorization": "Bearer " + pw}, nil); code != 200 {
			t.Fatalf("the winning password on %s: %d", base, code)
		}
	}

	// No ENCRYPTION_KEY: health says so, and start-up warned.
	_, body, _ := call(t, a, "GET", "/api/health", "", nil, nil)
	var h struct {
		Encryption *bool    `json:"encryption"`
		Warnings   []string `json:"warnings"`
	}
	_ = json.Unmarshal([]byte(body), &h)
	if h.Encryption == nil || *h.Encryption || len(h.Warnings) == 0 || !strings.Contains(h.Warnings[0], "ENCRYPTION_KEY") {
		t.Errorf("health without ENCRYPTION_KEY: %s", body)
	}
	for _, name := range []string{"admind", "keyd-0"} {
		if !strings.Contains(s.Log(name), "ENCRYPTION_KEY is not set") {
			t.Errorf("%s did not warn about the missing ENCRYPTION_KEY", name)
		}
	}
	bearer := map[string]string{"Authorization": "Bearer " + pw}
	if code, body, _ := call(t, a, "PUT", "/api/config", `{"PROXIES":["http://u:proxy-pw@127.0.0.1:9"]}`, bearer, nil); code != 400 || !strings.Contains(body, "ENCRYPTION_KEY") {
		t.Errorf("proxy credentials without ENCRYPTION_KEY: %d %s, want 400", code, body)
	}

	// Unauthenticated routes read at most 4 KiB.
	big := `{"auth_token":"` + strings.Repeat("x", 5000) + `"}`
	for _, path := range []string{"/auth", "/api/setup", "/auth/logout"} {
		if code, body, _ := call(t, a, "POST", path, big, nil, nil); code != 413 || !strings.Contains(body, `"error"`) {
			t.Errorf("%s with 5 KB: %d %s, want 413", path, code, body)
		}
	}

	// The admin password is never a client token: refused on every write
	// path, and edge does not take it, with or without spaces.
	if code, body, _ := call(t, a, "PUT", "/api/config", `{"ALLOWED_TOKENS":["`+s.Tokens()[0]+`"," `+pw+` "]}`, bearer, nil); code != 400 || !strings.Contains(body, "ALLOWED_TOKENS") {
		t.Errorf("admin password into ALLOWED_TOKENS: %d %s, want 400", code, body)
	}
	if code, _, _ := call(t, a, "PUT", "/api/config", `{"AUTH_TOKEN":"  `+s.Tokens()[0]+`  "}`, bearer, nil); code != 400 {
		t.Errorf("a client token as the admin password: %d, want 400", code)
	}
	for _, tok := range []string{pw, " " + pw + " "} {
		req := `{"contents":[{"parts":[{"text":"hi"}]}]}`
		code, _, _ := call(t, s.EdgeURL(0), "POST", "/v1beta/models/gemini-2.5-flash:generateContent", req, map[string]string{"x-goog-api-key": tok}, nil)
		if code != 401 && code != 403 {
			t.Errorf("edge with the admin password %q as client token: %d, want 401/403", tok, code)
		}
	}

	// CSRF: a cookie-authenticated change needs the same origin; Bearer does not.
	_, c, _ := loginAt(t, a, pw, nil)
	if c == nil {
		t.Fatal("no session cookie")
	}
	if code, body, _ := call(t, a, "PUT", "/api/config", `{"MAX_RETRIES":2}`, map[string]string{"Origin": "https://evil.example"}, c); code != 403 || !strings.Contains(body, `"error"`) {
		t.Errorf("cookie + foreign Origin: %d %s, want 403", code, body)
	}
	if code, _, _ := call(t, a, "PUT", "/api/config", `{"MAX_RETRIES":2}`, map[string]string{"Origin": a}, c); code != 200 {
		t.Errorf("cookie + same Origin: %d", code)
	}
	if code, _, _ := call(t, a, "PUT", "/api/config", `{"MAX_RETRIES":3}`, map[string]string{"Authorization": "Bearer " + pw, "Origin": "https://evil.example"}, nil); code != 200 {
		t.Errorf("Bearer with a foreign Origin: %d", code)
	}

	// Secure cookie: X-Forwarded-Proto counts only from TRUSTED_PROXIES.
	https := map[string]string{"X-Forwarded-Proto": "https"}
	if _, c, _ := loginAt(t, b, pw, https); c == nil || !c.Secure {
		t.Errorf("admind-1 behind a trusted TLS proxy: cookie %+v, want Secure", c)
	}
	if _, c, _ := loginAt(t, a, pw, https); c == nil || c.Secure {
		t.Errorf("admind without TRUSTED_PROXIES, X-Forwarded-Proto https: cookie %+v, want not Secure", c)
	}

	// Revocation is shared by the replicas: a logout on one ends the session
	// on the other; a password change ends every session.
	_, s1, _ := loginAt(t, a, pw, nil)
	_, s2, _ := loginAt(t, b, pw, nil)
	if code, _, _ := call(t, b, "POST", "/auth/logout", "", map[string]string{"Origin": b}, s1); code != 200 {
		t.Fatalf("logout on the other replica: %d", code)
	}
	if code, _, _ := call(t, a, "GET", "/api/config", "", nil, s1); code != 401 {
		t.Errorf("logged-out session replayed: %d, want 401", code)
	}
	if code, _, _ := call(t, a, "GET", "/api/config", "", nil, s2); code != 200 {
		t.Errorf("another session after a logout: %d", code)
	}
	const newPW = "changed-admin-password"
	if code, body, _ := call(t, b, "PUT", "/api/config", `{"AUTH_TOKEN":"`+newPW+`"}`, bearer, nil); code != 200 {
		t.Fatalf("password change: %d %s", code, body)
	}
	if code, _, _ := call(t, a, "GET", "/api/config", "", nil, s2); code != 401 {
		t.Errorf("session from before the password change: %d, want 401", code)
	}
	if code, _, _ := call(t, b, "GET", "/api/config", "", bearer, nil); code != 401 {
		t.Errorf("the old password, verified and cached before on this replica: %d, want 401", code)
	}

	// Throttling, shared by the replicas through the store: 10 failures from
	// one address on either replica, then 429 with Retry-After; a success
	// resets the count (also the failure of the old password just above).
	if code, _, _ := loginAt(t, b, newPW, nil); code != 200 {
		t.Fatalf("right password: %d", code)
	}
	for i := range 9 {
		if code, _, _ := loginAt(t, []string{a, b}[i%2], "wrong-password", nil); code != 401 {
			t.Fatalf("wrong password: %d", code)
		}
	}
	if code, _, _ := loginAt(t, a, newPW, nil); code != 200 {
		t.Fatalf("right password after 9 failures: %d", code)
	}
	for i := range 10 {
		if code, _, _ := loginAt(t, []string{a, b}[i%2], "wrong-password", nil); code != 401 {
			t.Fatalf("failure %d after the reset: %d, want 401", i+1, code)
		}
	}
	code, body, resp := call(t, a, "POST", "/auth", `{"auth_token":"`+newPW+`"}`, nil, nil)
	if secs, _ := strconv.Atoi(resp.Header.Get("Retry-After")); code != 429 || secs <= 0 || !strings.Contains(body, `"error"`) {
		t.Errorf("11th attempt: %d Retry-After=%q %s, want 429", code, resp.Header.Get("Retry-After"), body)
	}
}

// With ENCRYPTION_KEY everywhere: what MongoDB and the settings bucket hold
// has no admin password, no API key and no proxy password, read directly;
// and edge still uses the sealed proxy credentials (a real forward proxy
// that demands them sees edge's upstream call).
func TestNoSecretRestsInClearWithEncryptionKey(t *testing.T) {
	var proxied atomic.Int64
	const proxyUser, proxyPass = "gbproxy", "proxy-pass-e2e-123"
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(proxyUser+":"+proxyPass))
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != want {
			w.Header().Set("Proxy-Authenticate", `Basic realm="e2e"`)
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		proxied.Add(1)
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.Header.Del("Proxy-Authorization")
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer proxy.Close()

	s := stack.Start(t, stack.Options{Edges: 1, Env: map[string]string{"ENCRYPTION_KEY": "e2e encryption passphrase, long and random"}})
	pw := s.AuthToken()
	bearer := map[string]string{"Authorization": "Bearer " + pw}
	proxyURL := strings.Replace(proxy.URL, "http://", "http://"+proxyUser+":"+proxyPass+"@", 1)
	if code, body, _ := call(t, s.AdminURL(), "PUT", "/api/config", `{"PROXIES":["`+proxyURL+`"]}`, bearer, nil); code != 200 || strings.Contains(body, proxyPass) {
		t.Fatalf("set PROXIES: %d %s", code, body)
	}
	_, body, _ := call(t, s.AdminURL(), "GET", "/api/health", "", nil, nil)
	if !strings.Contains(body, `"encryption":true`) {
		t.Errorf("health with ENCRYPTION_KEY: %s", body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	eventually(t, ctx, "edge calls upstream through the sealed proxy", func() (bool, string) {
		_, err := s.Gemini(t, 0).Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
		return proxied.Load() > 0, fmt.Sprintf("proxied %d, last error %v", proxied.Load(), err)
	})

	// Everything stored, read directly.
	var dump strings.Builder
	db := s.Mongo(t)
	names, err := db.ListCollectionNames(ctx, bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		cur, err := db.Collection(name).Find(ctx, bson.M{})
		if err != nil {
			t.Fatal(err)
		}
		var docs []bson.M
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			j, _ := bson.MarshalExtJSON(d, false, false)
			dump.Write(j)
		}
	}
	js := mustJetStream(t, s)
	kv, err := js.KeyValue(ctx, bus.BucketSettings)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, bus.KeySettings)
	if err != nil {
		t.Fatal(err)
	}
	published := string(e.Value())
	for what, text := range map[string]string{"MongoDB": dump.String(), "the settings bucket": published} {
		if strings.Contains(text, pw) {
			t.Errorf("%s holds the admin password in clear", what)
		}
		if strings.Contains(text, proxyPass) {
			t.Errorf("%s holds the proxy password in clear", what)
		}
		for _, k := range s.Keys() {
			if strings.Contains(text, k) {
				t.Errorf("%s holds an API key in clear (…%s)", what, k[len(k)-4:])
			}
		}
	}
	if !strings.Contains(dump.String(), "$argon2id$") || !strings.Contains(published, "gbenc:v1:") {
		t.Error("no argon2id hash stored, or the proxy not sealed in the bucket")
	}
}

func mustJetStream(t *testing.T, s *stack.Stack) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(s.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	return js
}
