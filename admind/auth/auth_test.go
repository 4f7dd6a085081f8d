package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/testkit/storetest"
)

func TestPasswordHashIsArgon2idAndVerifiesOnlyTheRightPassword(t *testing.T) {
	h := HashPassword("correct horse battery")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "correct") {
		t.Fatalf("hash = %q", h)
	}
	if HashPassword("correct horse battery") == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "  correct horse battery\n": true, "correct horse batter": false, "": false} {
		if got := VerifyPassword(h, pw); got != want {
			t.Errorf("verify %q = %v, want %v", pw, got, want)
		}
	}
	if VerifyPassword("$argon2id$v=19$m=99999999,t=2,p=1$AAAA$AAAA", "x") {
		t.Error("absurd parameters accepted")
	}
}

func TestSessionNeedsTheStoredSecretAndTheCurrentGeneration(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a := &Auth{Lifetime: func() time.Duration { return time.Hour }, Now: func() time.Time { return now }}
	adm := Admin{Secret: []byte("0123456789abcdef0123456789abcdef"), Generation: 3}
	v, id := a.newSession(adm)
	got, ok := a.parseSession(adm, v)
	if !ok || got.SessionID != id.SessionID || !got.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("fresh session: %v %+v", ok, got)
	}
	if _, ok := a.parseSession(adm, v[:len(v)-1]+"0"); ok && !strings.HasSuffix(v, "0") {
		t.Fatal("tampered session accepted")
	}
	other := adm
	other.Secret = []byte("another secret, another server..")
	if _, ok := a.parseSession(other, v); ok {
		t.Fatal("session accepted under another secret")
	}
	bumped := adm
	bumped.Generation++
	if _, ok := a.parseSession(bumped, v); ok {
		t.Fatal("session survived a password change (generation bump)")
	}
	now = now.Add(2 * time.Hour)
	if _, ok := a.parseSession(adm, v); ok {
		t.Fatal("expired session accepted")
	}
}

func ferretDB(t *testing.T) *mongo.Database {
	t.Helper()
	cl, err := mongo.Connect(options.Client().ApplyURI(storetest.Start(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl.Database("gb_auth_test")
}

// Two replicas' limiters on one store count one address's failures
// together; a success resets the count; failures leave after the window and
// their documents are deleted.
func TestLimiterCountsFailuresOfEveryReplicaInTheWindow(t *testing.T) {
	db := ferretDB(t)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	a, b := NewLimiter(db), NewLimiter(db)
	a.Now, b.Now = clock, clock
	if err := a.EnsureIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	blocked := func(l *Limiter, addr string) (time.Duration, bool) {
		t.Helper()
		d, ok, err := l.Blocked(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		return d, ok
	}
	fail := func(l *Limiter, addr string) {
		t.Helper()
		if err := l.Fail(ctx, addr); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if _, ok := blocked(b, "1.2.3.4"); ok {
			t.Fatalf("blocked after %d failures", i)
		}
		fail([]*Limiter{a, b}[i%2], "1.2.3.4")
		now = now.Add(time.Second)
	}
	wait, ok := blocked(b, "1.2.3.4")
	if !ok || wait <= 0 || wait > 15*time.Minute {
		t.Fatalf("after 10 failures on two replicas: blocked=%v wait=%v", ok, wait)
	}
	if _, ok := blocked(a, "5.6.7.8"); ok {
		t.Fatal("another address is blocked")
	}
	now = now.Add(15 * time.Minute)
	if _, ok := blocked(a, "1.2.3.4"); ok {
		t.Fatal("still blocked once the failures left the window")
	}
	for range 9 {
		fail(a, "1.2.3.4")
	}
	if n, _ := db.Collection(FailuresCollection).CountDocuments(ctx, bson.M{}); n != 9 {
		t.Fatalf("%d failure documents kept, want only the 9 in the window", n)
	}
	if err := b.Reset(ctx, "1.2.3.4"); err != nil {
		t.Fatal(err)
	}
	fail(a, "1.2.3.4")
	if _, ok := blocked(a, "1.2.3.4"); ok {
		t.Fatal("a success did not reset the count")
	}
}

func TestForwardedHeadersCountOnlyFromTrustedProxies(t *testing.T) {
	trusted, err := config.ParseTrustedProxies([]string{"10.0.0.0/8", "192.168.1.7"})
	if err != nil {
		t.Fatal(err)
	}
	n := Network{Trusted: trusted}
	req := func(peer string) *httptestReq {
		r := httptest.NewRequest("POST", "/auth", nil)
		r.RemoteAddr = peer + ":5555"
		r.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.9, 10.1.1.1")
		r.Header.Set("X-Forwarded-Proto", "https")
		return r
	}
	if ip, sec := n.ClientIP(req("10.2.2.2")), n.Secure(req("10.2.2.2")); ip != "203.0.113.9" || !sec {
		t.Errorf("via trusted proxy: ip %s secure %v, want 203.0.113.9 true", ip, sec)
	}
	if ip, sec := n.ClientIP(req("198.51.100.1")), n.Secure(req("198.51.100.1")); ip != "198.51.100.1" || sec {
		t.Errorf("untrusted peer: ip %s secure %v, want its own address and false", ip, sec)
	}
	if ip := (Network{}).ClientIP(req("10.2.2.2")); ip != "10.2.2.2" {
		t.Errorf("no TRUSTED_PROXIES: ip %s", ip)
	}
}

func TestCookieChangesNeedTheSameOrigin(t *testing.T) {
	a := &Auth{}
	cases := []struct {
		method, origin, site string
		ok                   bool
	}{
		{"GET", "https://evil.example", "", true},
		{"POST", "http://admin.local:8000", "", true},
		{"POST", "https://admin.local:8000", "", true}, // TLS ended at a proxy
		{"DELETE", "https://evil.example", "", false},
		{"PUT", "null", "", false},
		{"PATCH", "", "same-origin", true},
		{"POST", "", "cross-site", false},
		{"POST", "", "", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, "http://admin.local:8000/api/config", nil)
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.site != "" {
			r.Header.Set("Sec-Fetch-Site", c.site)
		}
		if got := a.SameOriginOrSafe(r); got != c.ok {
			t.Errorf("%s Origin=%q Sec-Fetch-Site=%q: %v, want %v", c.method, c.origin, c.site, got, c.ok)
		}
	}
}

type httptestReq = http.Request

func BenchmarkVerifyPassword(b *testing.B) {
	h := HashPassword("benchmark-admin-password")
	b.ResetTimer()
	for b.Loop() {
		VerifyPassword(h, "benchmark-admin-password")
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	a := New(nil, nil, nil, Network{}, nil)
	h := HashPassword("benchmark-admin-password")
	ctx := b.Context()
	_, _ = a.verify(ctx, h, "benchmark-admin-password")
	b.ResetTimer()
	for b.Loop() {
		_, _ = a.verify(ctx, h, "benchmark-admin-password")
	}
}
