package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/redact"
)

type tokenView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Hint      string     `json:"hint"`
	Disabled  bool       `json:"disabled"`
	Expired   bool       `json:"expired"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	Token     string     `json:"token"`
}

func (e *env) createToken(t *testing.T, body string) tokenView {
	t.Helper()
	code, out, resp := e.do(t, "POST", "/api/tokens", adminPW, body)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, out)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Error("the answer carrying the token may be cached")
	}
	var v tokenView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *env) listTokens(t *testing.T) (string, []tokenView) {
	t.Helper()
	code, out, _ := e.do(t, "GET", "/api/tokens", adminPW, "")
	if code != 200 {
		t.Fatalf("list: %d %s", code, out)
	}
	var l struct{ Tokens []tokenView }
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatal(err)
	}
	return out, l.Tokens
}

func (e *env) bucketEntry(t *testing.T, id string) (bus.ClientToken, []byte, bool) {
	t.Helper()
	kv, err := e.js.KeyValue(context.Background(), bus.BucketClientTokens)
	if err != nil {
		t.Fatal(err)
	}
	en, err := kv.Get(context.Background(), id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return bus.ClientToken{}, nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var ct bus.ClientToken
	if err := json.Unmarshal(en.Value(), &ct); err != nil {
		t.Fatal(err)
	}
	return ct, en.Value(), true
}

func TestClientTokenIsShownOnceListedByHintAndStoredOnlyAsAHash(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	created := e.createToken(t, `{"name":"ci runner"}`)
	tok := created.Token
	if !strings.HasPrefix(tok, "sk-gb-") || len(tok) < 6+32 {
		t.Fatalf("token %q is not sk-gb- and 32+ random characters", redact.Hint(tok))
	}
	if tok == adminPW || tok == clientToken {
		t.Fatal("token equals a configured secret")
	}
	// Its id is the token_id that request events carry, as for ALLOWED_TOKENS.
	if created.ID != redact.ID(tok) || created.Hint != redact.Hint(tok) || created.Name != "ci runner" || created.Disabled {
		t.Fatalf("created %+v", created)
	}
	if other := e.createToken(t, `{"name":"second"}`); other.Token == tok || other.ID == created.ID {
		t.Fatal("two creations gave the same token")
	}

	body, list := e.listTokens(t)
	if strings.Contains(body, tok) || strings.Contains(body, bus.TokenSHA256(tok)) {
		t.Fatal("the list shows the token or its hash")
	}
	if len(list) != 2 || list[0].ID != created.ID || list[0].Hint != created.Hint || list[0].Token != "" {
		t.Fatalf("list %s", body)
	}

	// MongoDB holds the hash, never the token.
	var raw []bson.Raw
	cur, err := db.Collection("tokens").Find(context.Background(), bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cur.All(context.Background(), &raw); err != nil {
		t.Fatal(err)
	}
	foundHash := false
	for _, r := range raw {
		if strings.Contains(r.String(), tok) || strings.Contains(string(r), tok) {
			t.Fatal("the token is stored in plain text")
		}
		foundHash = foundHash || strings.Contains(r.String(), bus.TokenSHA256(tok))
	}
	if !foundHash {
		t.Fatal("no stored SHA-256 of the token")
	}

	// Edge's view: the bucket entry carries the hash, not the token.
	ct, data, ok := e.bucketEntry(t, created.ID)
	if !ok || ct.SHA256 != bus.TokenSHA256(tok) || ct.ID != created.ID || ct.Disabled || strings.Contains(string(data), tok) {
		t.Fatalf("bucket entry %s (found %v)", data, ok)
	}

	if code, out, _ := e.do(t, "DELETE", "/api/tokens/"+created.ID, adminPW, ""); code != 200 {
		t.Fatalf("delete: %d %s", code, out)
	}
	if _, list := e.listTokens(t); len(list) != 1 || list[0].ID == created.ID {
		t.Fatalf("after delete: %+v", list)
	}
	if _, _, ok := e.bucketEntry(t, created.ID); ok {
		t.Fatal("revoked token still in the bucket")
	}
	if code, _, _ := e.do(t, "DELETE", "/api/tokens/"+created.ID, adminPW, ""); code != http.StatusNotFound {
		t.Fatalf("second delete: %d, want 404", code)
	}
}

func TestDisablingATokenReachesTheBucketAndEnablingRestoresIt(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	created := e.createToken(t, `{"name":"expiring","expires_at":"`+exp.Format(time.RFC3339)+`"}`)
	if created.ExpiresAt == nil || !created.ExpiresAt.Equal(exp) || created.Expired {
		t.Fatalf("expiry %+v", created)
	}
	if ct, _, _ := e.bucketEntry(t, created.ID); ct.ExpiresAt == nil || !ct.ExpiresAt.Equal(exp) {
		t.Fatalf("bucket expiry %+v", ct.ExpiresAt)
	}
	for _, disabled := range []bool{true, false} {
		code, out, _ := e.do(t, "PATCH", "/api/tokens/"+created.ID, adminPW, `{"disabled":`+map[bool]string{true: "true", false: "false"}[disabled]+`}`)
		if code != 200 || strings.Contains(out, created.Token) {
			t.Fatalf("patch disabled=%v: %d %s", disabled, code, out)
		}
		if ct, _, _ := e.bucketEntry(t, created.ID); ct.Disabled != disabled {
			t.Fatalf("bucket says disabled=%v, want %v", ct.Disabled, disabled)
		}
		if _, list := e.listTokens(t); list[0].Disabled != disabled {
			t.Fatalf("list says disabled=%v", list[0].Disabled)
		}
	}
}

func TestTokenRequestsAreValidatedAndNeedTheAdminPassword(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	for _, cred := range []string{"", clientToken} {
		if code, _, _ := e.do(t, "POST", "/api/tokens", cred, `{"name":"x"}`); code != http.StatusUnauthorized {
			t.Errorf("create with %q: %d, want 401", cred, code)
		}
		if code, _, _ := e.do(t, "GET", "/api/tokens", cred, ""); code != http.StatusUnauthorized {
			t.Errorf("list with %q: %d, want 401", cred, code)
		}
	}
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for body, want := range map[string]string{
		`{"name":""}`: "name", `{"name":"` + strings.Repeat("n", 101) + `"}`: "name", `not json`: "JSON",
		`{"name":"x","expires_at":"` + past + `"}`: "expires_at", `{"name":"x","expires_at":"tomorrow"}`: "expires_at",
	} {
		if code, out, _ := e.do(t, "POST", "/api/tokens", adminPW, body); code != 400 || !strings.Contains(out, want) {
			t.Errorf("%s: %d %s, want 400 naming %s", body, code, out, want)
		}
	}
	if code, _, _ := e.do(t, "PATCH", "/api/tokens/0123456789abcdef", adminPW, `{"disabled":true}`); code != 404 {
		t.Errorf("patch unknown: %d, want 404", code)
	}
	if code, _, _ := e.do(t, "PATCH", "/api/tokens/0123456789abcdef", adminPW, `{}`); code != 400 {
		t.Errorf("patch without disabled: %d, want 400", code)
	}
	if _, list := e.listTokens(t); len(list) != 0 {
		t.Fatalf("a rejected request created a token: %+v", list)
	}
}

func TestAdminPasswordCannotBecomeAManagedClientToken(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	tok := e.createToken(t, `{"name":"user"}`).Token
	code, out, _ := e.do(t, "PUT", "/api/config", adminPW, `{"AUTH_TOKEN":"`+tok+`"}`)
	if code != 400 || !strings.Contains(out, "AUTH_TOKEN") || strings.Contains(out, tok) {
		t.Fatalf("AUTH_TOKEN = managed token: %d %s", code, redact.Secrets(out, tok))
	}
	if code, _, _ := e.do(t, "GET", "/api/config", adminPW, ""); code != 200 {
		t.Fatal("the admin password changed")
	}
}

// A bucket that lost entries (NATS reset) or kept stale ones heals when
// admind starts: it then holds exactly the tokens in MongoDB.
func TestStartUpResyncsTheBucketFromMongoDB(t *testing.T) {
	nc, db := infra(t)
	e := start(t, nc, db, seed())
	kept := e.createToken(t, `{"name":"kept"}`)
	ctx := context.Background()
	kv, err := e.js.KeyValue(ctx, bus.BucketClientTokens)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, kept.ID); err != nil {
		t.Fatal(err)
	}
	stale, _ := json.Marshal(bus.ClientToken{V: 1, ID: "00000000deadbeef", SHA256: bus.TokenSHA256("sk-gb-stale")})
	if _, err := kv.Put(ctx, "00000000deadbeef", stale); err != nil {
		t.Fatal(err)
	}

	start(t, nc, db, seed()) // a second start, as after a restart
	waitFor(t, func() bool {
		_, _, ok := e.bucketEntry(t, kept.ID)
		_, _, staleThere := e.bucketEntry(t, "00000000deadbeef")
		return ok && !staleThere
	})
	if ct, _, _ := e.bucketEntry(t, kept.ID); ct.SHA256 != bus.TokenSHA256(kept.Token) || ct.Name != "kept" {
		t.Fatalf("resynced entry %+v", ct)
	}
}
