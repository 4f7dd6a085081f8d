package auth

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/redact"
	"github.com/gemini-balance-go/testkit/natstest"
	"github.com/gemini-balance-go/testkit/wait"
)

func TestTokensFollowLiveSettingsAndTheAdminPasswordIsNeverAClientToken(t *testing.T) {
	st := config.Defaults()
	st.AllowedTokens = []string{"sk-one"}
	st.AuthToken = "admin-password"
	live := natsx.NewSettings(st)
	a := New(live)
	if c, ok := a.Check("sk-one"); !ok || c.TokenID != redact.ID("sk-one") || c.TokenHint == "sk-one" {
		t.Fatalf("sk-one: %v %+v", ok, c)
	}
	if _, ok := a.Check("admin-password"); ok {
		t.Fatal("AUTH_TOKEN accepted as a client token")
	}
	next := st
	next.AllowedTokens = []string{"sk-two"}
	live.Set(next)
	if _, ok := a.Check("sk-one"); ok {
		t.Error("removed token still accepted")
	}
	if _, ok := a.Check("sk-two"); !ok {
		t.Error("added token not accepted")
	}
}

const managedTok = "sk-gb-managedmanagedmanagedmanaged0001"

func entry(token string) bus.ClientToken {
	return bus.ClientToken{V: 1, ID: redact.ID(token), Name: "ci", Hint: redact.Hint(token), SHA256: bus.TokenSHA256(token)}
}

func TestManagedTokenIsRecognisedByItsHashWithTheSameIDAsAnAllowedToken(t *testing.T) {
	a := New(natsx.NewSettings(config.Defaults()))
	if _, ok := a.Check(managedTok); ok {
		t.Fatal("unknown token accepted")
	}
	a.SetManaged([]bus.ClientToken{entry(managedTok)})
	c, ok := a.Check(managedTok)
	if !ok {
		t.Fatal("managed token refused")
	}
	// Request events and file ownership use the same id whichever way the token was configured.
	if c.TokenID != redact.ID(managedTok) || c.TokenHint != redact.Hint(managedTok) || c.Name != "ci" {
		t.Fatalf("client %+v", c)
	}
	if _, ok := a.Check(managedTok + "x"); ok {
		t.Fatal("a longer token matched")
	}
	if _, ok := a.Check(bus.TokenSHA256(managedTok)); ok {
		t.Fatal("the hash itself was accepted as a token")
	}
}

func TestDisabledExpiredAndMalformedManagedTokensAreRefused(t *testing.T) {
	a := New(natsx.NewSettings(config.Defaults()))
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	disabled, expired, future, bad := entry("sk-gb-disabled-000000000000000000000"), entry("sk-gb-expired-0000000000000000000000"), entry("sk-gb-future-00000000000000000000000"), entry("sk-gb-bad-hash-00000000000000000000")
	disabled.Disabled = true
	past, later := now.Add(-time.Second), now.Add(time.Hour)
	expired.ExpiresAt, future.ExpiresAt = &past, &later
	bad.SHA256 = "not-hex"
	skipped := a.SetManaged([]bus.ClientToken{disabled, expired, future, bad})
	if len(skipped) != 1 || skipped[0] != bad.ID {
		t.Fatalf("skipped %v", skipped)
	}
	for tok, want := range map[string]bool{
		"sk-gb-disabled-000000000000000000000": false,
		"sk-gb-expired-0000000000000000000000": false,
		"sk-gb-future-00000000000000000000000": true,
		"sk-gb-bad-hash-00000000000000000000":  false,
	} {
		if _, ok := a.Check(tok); ok != want {
			t.Errorf("%s accepted=%v, want %v", tok[:12], ok, want)
		}
	}
	now = later // the expiry instant itself is already too late
	if _, ok := a.Check("sk-gb-future-00000000000000000000000"); ok {
		t.Error("token accepted at its expiry")
	}
}

// Edge follows the bucket admind writes: create, disable, enable and delete
// apply without a restart.
func TestManagedTokensApplyLiveFromTheBucket(t *testing.T) {
	js := natstest.StartBus(t).JS
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.BucketClientTokens)
	if err != nil {
		t.Fatal(err)
	}
	put := func(e bus.ClientToken) {
		t.Helper()
		data, _ := json.Marshal(e)
		if _, err := kv.Put(ctx, e.ID, data); err != nil {
			t.Fatal(err)
		}
	}
	// One token exists before edge starts, one arrives later.
	early, late := entry(managedTok), entry("sk-gb-late-0000000000000000000000000")
	put(early)

	a := New(natsx.NewSettings(config.Defaults()))
	a.Watch(ctx, js, slog.New(slog.NewTextHandler(io.Discard, nil)))
	accepted := func(tok string) func() bool { return func() bool { _, ok := a.Check(tok); return ok } }
	refused := func(tok string) func() bool { return func() bool { _, ok := a.Check(tok); return !ok } }

	waitFor(t, "existing token loaded", accepted(managedTok))
	put(late)
	waitFor(t, "new token applied", accepted("sk-gb-late-0000000000000000000000000"))
	early.Disabled = true
	put(early)
	waitFor(t, "disabled token refused", refused(managedTok))
	early.Disabled = false
	put(early)
	waitFor(t, "re-enabled token accepted", accepted(managedTok))
	if err := kv.Delete(ctx, late.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deleted token refused", refused("sk-gb-late-0000000000000000000000000"))
	if _, ok := a.Check(managedTok); !ok {
		t.Fatal("deleting one token dropped another")
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	wait.For(t, what, ok)
}

func TestCredentialsAreReadFromKeyParamHeaderAndBearer(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "http://x/v1beta/models?key=q", nil)
	r.Header.Set("x-goog-api-key", "h")
	r.Header.Set("x-api-key", "a") // Anthropic clients
	r.Header.Set("Authorization", "Bearer b")
	got := Tokens(r)
	if len(got) != 4 || got[0] != "q" || got[1] != "h" || got[2] != "a" || got[3] != "b" {
		t.Fatalf("%v", got)
	}
}

func BenchmarkCheckAllowedAndManaged(b *testing.B) {
	st := config.Defaults()
	st.AllowedTokens = []string{"sk-allowed-000000000000000000000000"}
	a := New(natsx.NewSettings(st))
	list := make([]bus.ClientToken, 0, 1000)
	for i := range 1000 {
		list = append(list, entry("sk-gb-"+redact.ID(string(rune(i)))+"000000000000000"))
	}
	list = append(list, entry(managedTok))
	a.SetManaged(list)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := a.Check(managedTok); !ok {
			b.Fatal("refused")
		}
	}
}

// A replica that has just started must not refuse a valid managed token
// because the bucket's contents have not arrived yet: the first request
// waits for the first load instead of racing it.
func TestAManagedTokenIsAcceptedOnANewReplicasFirstRequest(t *testing.T) {
	js := natstest.StartBus(t).JS
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.BucketClientTokens)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(entry(managedTok))
	if _, err := kv.Put(ctx, redact.ID(managedTok), data); err != nil {
		t.Fatal(err)
	}
	for i := range 20 { // each a fresh replica
		a := New(natsx.NewSettings(config.Defaults()))
		a.Watch(ctx, js, slog.New(slog.NewTextHandler(io.Discard, nil)))
		r, _ := http.NewRequest(http.MethodPost, "http://edge/v1beta/models/m:generateContent", nil)
		r.Header.Set("x-goog-api-key", managedTok)
		if c, ok, _ := a.Authenticate(r); !ok || c.TokenID != redact.ID(managedTok) {
			t.Fatalf("replica %d refused the managed token on its first request", i)
		}
	}
}
