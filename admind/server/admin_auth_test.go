package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gemini-balance-go/admind/server"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/natsx"
)

// send makes one request with the given headers (and cookie, when set).
func (e *env) send(t *testing.T, method, path, body string, hdr map[string]string, cookie *http.Cookie) (int, string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
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
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "auth_token" && c.Value != "" {
			return c
		}
	}
	return nil
}

// login posts the password and returns the session cookie (nil on failure).
func (e *env) login(t *testing.T, pw string, hdr map[string]string) (int, *http.Cookie, *http.Response) {
	t.Helper()
	code, _, resp := e.send(t, "POST", "/auth", `{"auth_token":"`+pw+`"}`, hdr, nil)
	return code, sessionCookie(resp), resp
}

func TestLoginIsThrottledAfterTenFailuresAndASuccessResetsTheCount(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	for range 9 {
		if code, _, _ := e.login(t, "wrong-password", nil); code != 401 {
			t.Fatalf("wrong password: %d, want 401", code)
		}
	}
	if code, c, _ := e.login(t, adminPW, nil); code != 200 || c == nil {
		t.Fatalf("right password after 9 failures: %d", code)
	}
	// The success reset the count: ten more failures are answered 401.
	for i := range 10 {
		if code, _, _ := e.login(t, "wrong-password", nil); code != 401 {
			t.Fatalf("failure %d after the reset: %d, want 401", i+1, code)
		}
	}
	code, body, resp := e.send(t, "POST", "/auth", `{"auth_token":"`+adminPW+`"}`, nil, nil)
	secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if code != 429 || secs <= 0 || secs > 900 || !strings.Contains(body, `"error"`) {
		t.Fatalf("11th attempt: %d Retry-After=%q %s, want 429 with Retry-After", code, resp.Header.Get("Retry-After"), body)
	}
	// A Bearer password guess is a login attempt too.
	if code, _, _ := e.do(t, "GET", "/api/config", adminPW, ""); code != 429 {
		t.Fatalf("Bearer from the throttled address: %d, want 429", code)
	}
}

func TestLogoutRevokesItsSessionAndAPasswordChangeRevokesAll(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	same := map[string]string{"Origin": e.http.URL}
	_, first, _ := e.login(t, adminPW, nil)
	_, second, _ := e.login(t, adminPW, nil)
	_, third, _ := e.login(t, adminPW, nil)
	if first == nil || second == nil || third == nil {
		t.Fatal("no session cookie")
	}
	if code, body, _ := e.send(t, "POST", "/auth/logout", "", same, first); code != 200 {
		t.Fatalf("logout: %d %s", code, body)
	}
	if code, _, _ := e.send(t, "GET", "/api/config", "", nil, first); code != 401 {
		t.Fatalf("logged-out session (replayed cookie): %d, want 401", code)
	}
	if code, _, _ := e.send(t, "GET", "/api/config", "", nil, second); code != 200 {
		t.Fatalf("another session after one logout: %d", code)
	}
	code, body, resp := e.send(t, "PUT", "/api/config", `{"AUTH_TOKEN":"  second-admin-password  "}`, same, second)
	if code != 200 {
		t.Fatalf("password change: %d %s", code, body)
	}
	if code, _, _ := e.send(t, "GET", "/api/config", "", nil, third); code != 401 {
		t.Fatalf("session from before the password change: %d, want 401", code)
	}
	if code, _, _ := e.send(t, "GET", "/api/config", "", nil, sessionCookie(resp)); code != 200 {
		t.Fatalf("the changer's fresh session: %d", code)
	}
	if code, _, _ := e.do(t, "GET", "/api/config", adminPW, ""); code != 401 {
		t.Fatalf("old password as Bearer (was cached): %d, want 401", code)
	}
	if code, _, _ := e.do(t, "GET", "/api/config", "second-admin-password", ""); code != 200 {
		t.Fatalf("new password (trimmed): %d", code)
	}
	if strings.Contains(e.rawSecrets(t), "second-admin-password") {
		t.Fatal("the new password is stored in clear")
	}
}

func TestCookieAuthenticatedChangesNeedTheSameOriginButBearerDoesNot(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	_, c, _ := e.login(t, adminPW, nil)
	patch := `{"MAX_RETRIES": 4}`
	for _, hdr := range []map[string]string{{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {}} {
		code, body, _ := e.send(t, "PUT", "/api/config", patch, hdr, c)
		if code != 403 || !strings.Contains(body, `"error"`) {
			t.Errorf("cookie + %v: %d %s, want 403", hdr, code, body)
		}
	}
	if code, _, _ := e.send(t, "POST", "/auth/logout", "", map[string]string{"Origin": "https://evil.example"}, c); code != 403 {
		t.Errorf("cross-origin logout: %d, want 403", code)
	}
	if e.live.Get().MaxRetries != 3 {
		t.Fatal("a refused change was applied")
	}
	if code, _, _ := e.send(t, "GET", "/api/config", "", map[string]string{"Origin": "https://evil.example"}, c); code != 200 {
		t.Errorf("cookie GET: %d", code)
	}
	if code, body, _ := e.send(t, "PUT", "/api/config", patch, map[string]string{"Origin": e.http.URL}, c); code != 200 {
		t.Errorf("cookie + same Origin: %d %s", code, body)
	}
	if code, _, _ := e.send(t, "PUT", "/api/config", `{"MAX_RETRIES": 5}`, map[string]string{"Sec-Fetch-Site": "same-origin"}, c); code != 200 {
		t.Errorf("cookie + Sec-Fetch-Site same-origin: %d", code)
	}
	if code, _, _ := e.send(t, "PUT", "/api/config", `{"MAX_RETRIES": 6}`, map[string]string{"Authorization": "Bearer " + adminPW, "Origin": "https://evil.example"}, nil); code != 200 {
		t.Errorf("Bearer script: %d", code)
	}
}

func TestSessionCookieIsSecureOnlyWhenATrustedProxySaysHTTPS(t *testing.T) {
	nc, db := infra(t)
	plain := start(t, nc, db, seed())
	trusted := start(t, nc, db, seed(), func(d *server.Deps) { d.TrustedProxies = []string{"127.0.0.0/8"} })
	https := map[string]string{"X-Forwarded-Proto": "https"}
	if _, c, _ := trusted.login(t, adminPW, https); c == nil || !c.Secure {
		t.Fatalf("behind a trusted TLS proxy: cookie %+v, want Secure", c)
	}
	if _, c, _ := trusted.login(t, adminPW, nil); c == nil || c.Secure {
		t.Fatalf("trusted proxy, plain http: cookie %+v, want not Secure", c)
	}
	if _, c, _ := plain.login(t, adminPW, https); c == nil || c.Secure {
		t.Fatalf("X-Forwarded-Proto from an untrusted peer: cookie %+v, want not Secure", c)
	}
	if _, err := server.New(server.Deps{NC: nc, DB: db, Settings: natsx.NewSettings(seed()), TrustedProxies: []string{"10.0.0.0/33"}}); err == nil || !strings.Contains(err.Error(), "TRUSTED_PROXIES") {
		t.Fatalf("bad TRUSTED_PROXIES: %v", err)
	}
}

func TestRacingSetupsOnTwoReplicasExactlyOneWins(t *testing.T) {
	nc, db := infra(t)
	sd := seed()
	sd.AuthToken = ""
	a := start(t, nc, db, sd)
	b := start(t, nc, db, sd)
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e := a
			if i%2 == 1 {
				e = b
			}
			codes[i], _, _ = e.send(t, "POST", "/api/setup", `{"password":"racer-password-`+strconv.Itoa(i)+`"}`, nil, nil)
		})
	}
	wg.Wait()
	won := -1
	for i, c := range codes {
		switch c {
		case 200:
			if won >= 0 {
				t.Fatalf("two setups won: %v", codes)
			}
			won = i
		case 409:
		default:
			t.Fatalf("setup answers %v, want one 200 and 409s", codes)
		}
	}
	if won < 0 {
		t.Fatalf("no setup won: %v", codes)
	}
	winner := "racer-password-" + strconv.Itoa(won)
	for _, e := range []*env{a, b} {
		if code, _, _ := e.do(t, "GET", "/api/config", winner, ""); code != 200 {
			t.Fatalf("the winning password on a replica: %d", code)
		}
	}
	loser := "racer-password-" + strconv.Itoa((won+1)%n)
	if code, _, _ := b.do(t, "GET", "/api/config", loser, ""); code != 401 {
		t.Fatalf("a losing password works: %d", code)
	}
}

func TestUnauthenticatedRoutesReadAtMostFourKiB(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	big := `{"auth_token":"` + strings.Repeat("a", 5000) + `"}`
	for _, path := range []string{"/auth", "/api/setup", "/auth/logout"} {
		code, body, _ := e.send(t, "POST", path, big, nil, nil)
		if code != 413 || !strings.Contains(body, `"error"`) {
			t.Errorf("%s with 5 KB: %d %s, want 413", path, code, body)
		}
	}
	if code, _, _ := e.login(t, adminPW, nil); code != 200 {
		t.Fatalf("normal login: %d", code)
	}
	huge := `{"MAX_RETRIES": 4, "x": "` + strings.Repeat("a", 5<<20) + `"}`
	if code, _, _ := e.do(t, "PUT", "/api/config", adminPW, huge); code != 413 {
		t.Errorf("5 MB admin body: %d, want 413", code)
	}
}

func TestSessionStateTellsTheUIWhatToShow(t *testing.T) {
	nc, db := infra(t)
	sd := seed()
	sd.AuthToken = ""
	e := start(t, nc, db, sd)
	state := func(c *http.Cookie) map[string]any {
		code, body, _ := e.send(t, "GET", "/api/session", "", nil, c)
		if code != 200 {
			t.Fatalf("session: %d %s", code, body)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(body), &m)
		return m
	}
	if m := state(nil); m["setup_needed"] != true || m["authenticated"] != false {
		t.Fatalf("before setup: %v", m)
	}
	_, _, resp := e.send(t, "POST", "/api/setup", `{"password":"first-admin-pw"}`, nil, nil)
	c := sessionCookie(resp)
	if m := state(c); m["setup_needed"] != false || m["authenticated"] != true || m["expires_at"] == nil {
		t.Fatalf("after setup, with its cookie: %v", m)
	}
	if m := state(nil); m["setup_needed"] != false || m["authenticated"] != false || m["expires_at"] != nil {
		t.Fatalf("without a cookie: %v", m)
	}
}

func TestAdminPasswordCanNeverBeAClientTokenEvenWithSpaces(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	for _, patch := range []string{
		`{"ALLOWED_TOKENS": ["` + clientToken + `", "  ` + adminPW + ` "]}`,
		`{"ALLOWED_TOKENS": "` + adminPW + `"}`,
	} {
		code, body, _ := e.do(t, "PUT", "/api/config", adminPW, patch)
		if code != 400 || !strings.Contains(body, "ALLOWED_TOKENS") {
			t.Errorf("%s: %d %s, want 400 naming ALLOWED_TOKENS", patch, code, body)
		}
	}
	if code, body, _ := e.do(t, "PUT", "/api/config", adminPW, `{"AUTH_TOKEN": " `+clientToken+`\t"}`); code != 400 || !strings.Contains(body, "AUTH_TOKEN") {
		t.Errorf("client token with spaces as the password: %d %s", code, body)
	}
	if toks := e.live.Get().AllowedTokens; len(toks) != 1 || toks[0] != clientToken {
		t.Fatalf("ALLOWED_TOKENS now %d entries", len(toks))
	}
	// The environment path: AUTH_TOKEN listed in ALLOWED_TOKENS is dropped.
	sd := seed()
	sd.AllowedTokens = []string{clientToken, " " + adminPW}
	t.Setenv("AUTH_TOKEN", adminPW)
	t.Setenv("ALLOWED_TOKENS", clientToken+", "+adminPW+" ")
	env, err := config.LoadSettings()
	if err != nil || len(env.AllowedTokens) != 1 || env.AllowedTokens[0] != clientToken {
		t.Fatalf("environment ALLOWED_TOKENS = %d entries, %v", len(env.AllowedTokens), err)
	}
}

func TestHealthSaysWhetherSecretsAreEncrypted(t *testing.T) {
	nc, db := infra(t)
	for _, key := range []string{"", "a long random passphrase"} {
		e := start(t, nc, db, seed(), func(d *server.Deps) { d.EncryptionKey = key })
		code, body, _ := e.do(t, "GET", "/api/health", "", "")
		var rep struct {
			Encryption *bool    `json:"encryption"`
			Warnings   []string `json:"warnings"`
		}
		_ = json.Unmarshal([]byte(body), &rep)
		if code != 200 || rep.Encryption == nil || *rep.Encryption != (key != "") {
			t.Fatalf("ENCRYPTION_KEY=%q: %d %s", key, code, body)
		}
		warned := len(rep.Warnings) == 1 && strings.Contains(rep.Warnings[0], "ENCRYPTION_KEY")
		if warned != (key == "") {
			t.Fatalf("ENCRYPTION_KEY=%q: warnings %v", key, rep.Warnings)
		}
	}
}

func TestProxyCredentialsAreSealedWithEncryptionKeyAndRefusedWithout(t *testing.T) {
	nc, db := infra(t)
	const proxy = "http://user:proxy-pass-123@proxy.example:3128"
	patch := `{"PROXIES": ["` + proxy + `", "socks5://open.example:1080"]}`
	e := start(t, nc, db, seed())
	code, body, _ := e.do(t, "PUT", "/api/config", adminPW, patch)
	if code != 400 || !strings.Contains(body, "ENCRYPTION_KEY") {
		t.Fatalf("credentials without ENCRYPTION_KEY: %d %s, want 400 naming ENCRYPTION_KEY", code, body)
	}
	sealed := start(t, nc, db, seed(), func(d *server.Deps) { d.EncryptionKey = "a long random passphrase" })
	if code, body, _ := sealed.do(t, "PUT", "/api/config", adminPW, patch); code != 200 || strings.Contains(body, "proxy-pass-123") {
		t.Fatalf("with ENCRYPTION_KEY: %d %s", code, body)
	}
	if raw := sealed.rawSecrets(t); strings.Contains(raw, "proxy-pass-123") || !strings.Contains(raw, "gbenc:v1:") {
		t.Fatal("the proxy password is stored or published in clear")
	}
	if p := sealed.live.Get().Proxies; len(p) != 2 || p[0] != proxy {
		t.Fatalf("admind's live proxies: %v", len(p))
	}
	// GET shows user:****@host; sending it back keeps the credentials.
	_, shown, _ := sealed.do(t, "GET", "/api/config", adminPW, "")
	if strings.Contains(shown, "proxy-pass-123") || !strings.Contains(shown, "user:****@proxy.example") {
		t.Fatalf("GET /api/config shows the proxy as %s", shown)
	}
	if code, body, _ := sealed.do(t, "PUT", "/api/config", adminPW, shown); code != 200 {
		t.Fatalf("masked round trip: %d %s", code, body)
	}
	if p := sealed.live.Get().Proxies; len(p) != 2 || p[0] != proxy {
		t.Fatal("the masked round trip lost the proxy credentials")
	}
}

func TestKeysSavedInSettingsGoToKeydNotIntoTheDocument(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	add := respondOn(t, nc, bus.SubjectKeyAdd, canned(keyapi.AddReply{Added: []keyapi.Key{{ID: "k", Hint: "AIzaSy…BBBB"}}}))
	code, body, _ := e.do(t, "PUT", "/api/config", adminPW, `{"API_KEYS": ["AIzaSy…AAAA", "`+apiKey2+`"], "MAX_FAILURES": 4}`)
	if code != 200 || strings.Contains(body, apiKey2) {
		t.Fatalf("put: %d %s", code, body)
	}
	var req keyapi.AddRequest
	add.last(t, &req)
	if len(req.Keys) != 1 || req.Keys[0] != apiKey2 || req.Kind != bus.KindGemini {
		t.Fatalf("keyd got %d keys of kind %q, want the one unmasked key", len(req.Keys), req.Kind)
	}
	if strings.Contains(e.rawSecrets(t), apiKey2) {
		t.Fatal("the key was stored in the settings document")
	}
	if stored, _, _ := natsx.FetchSettings(context.Background(), e.js); stored.MaxFailures != 4 {
		t.Fatalf("the rest of the change was not saved: MAX_FAILURES %d", stored.MaxFailures)
	}
}

// A settings document written by an older version holds the admin password
// and keys in clear: the first start of this version moves the password into
// the admin hash and rewrites the document without them.
func TestStartUpMovesAPlaintextPasswordOutOfAnOlderDocument(t *testing.T) {
	nc, db := infra(t)
	old := seed()
	data, _ := json.Marshal(old) // AUTH_TOKEN and API_KEYS in clear
	if _, err := db.Collection("settings").InsertOne(context.Background(), map[string]any{"_id": "current", "json": string(data), "revision": 1}); err != nil {
		t.Fatal(err)
	}
	env := seed()
	env.AuthToken = "" // the environment no longer sets it
	e := start(t, nc, db, env)
	raw := e.rawSecrets(t)
	if strings.Contains(raw, adminPW) || strings.Contains(raw, apiKey1) || !strings.Contains(raw, "$argon2id$") {
		t.Fatal("the older document's secrets were not moved out")
	}
	if code, _, _ := e.do(t, "GET", "/api/config", adminPW, ""); code != 200 {
		t.Fatalf("the older document's password: %d", code)
	}
}

// Sealed proxy credentials need the ENCRYPTION_KEY they were sealed with:
// admind refuses to start without it, naming the variable, instead of
// dropping or garbling the proxies.
func TestAdmindRefusesToStartWithoutTheKeyTheProxiesWereSealedWith(t *testing.T) {
	nc, db := infra(t)
	sealed := start(t, nc, db, seed(), func(d *server.Deps) { d.EncryptionKey = "the original passphrase" })
	if code, body, _ := sealed.do(t, "PUT", "/api/config", adminPW, `{"PROXIES": ["http://u:pw-123456@p.example:1"]}`); code != 200 {
		t.Fatalf("put: %d %s", code, body)
	}
	for _, key := range []string{"", "another passphrase"} {
		srv, err := server.New(server.Deps{NC: nc, DB: db, Settings: natsx.NewSettings(seed()), EncryptionKey: key,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = srv.Run(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "ENCRYPTION_KEY") {
			t.Fatalf("ENCRYPTION_KEY=%q: Run = %v, want a start-up error naming ENCRYPTION_KEY", key, err)
		}
	}
}
