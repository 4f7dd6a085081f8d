package recovery

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gemini-balance-go/keyd/pool"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/outcome"
	"github.com/gemini-balance-go/shared/proxies"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// An upstream that answers the test call with a redirect must never get the
// key sent on to the redirect's target, and the key is not judged by it: the
// verification fails, the key stays enabled.
func TestVerifyFollowsNoRedirectAndKeepsTheKey(t *testing.T) {
	key := "AIzaSyVerifyRedirect00000000000000000001"
	var caught atomic.Int32
	catcher := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caught.Add(1)
		w.WriteHeader(http.StatusUnauthorized) // would disable the key if followed
	}))
	defer catcher.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, catcher.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirecting.Close()

	s := config.Defaults()
	s.BaseURL = redirecting.URL
	k := pool.NewKey(key, bus.KindGemini, time.Now())
	for _, v := range []*Verifier{
		{Settings: func() *config.Settings { return &s }},
		{Settings: func() *config.Settings { return &s }, Client: &http.Client{}}, // a caller's client follows redirects by default
	} {
		r := v.Verify(context.Background(), []pool.Key{k})[0]
		if r.OK() || r.Verdict.Class != outcome.ClientError || r.Verdict.Reason != "REDIRECT" || r.Verdict.Status != http.StatusTemporaryRedirect {
			t.Fatalf("verdict on a redirect: %+v", r)
		}
		if caught.Load() != 0 {
			t.Fatal("the verifier followed the redirect: the key went to another host")
		}
		p := pool.New(pool.DefaultPolicy(), time.Now)
		p.Add(k)
		p.Report(r.Report("gemini-2.5-flash-lite"), false)
		if got, _ := p.Get(k.ID); got.Disabled || got.Failures != 0 || len(got.Cooldowns) != 0 {
			t.Fatalf("a redirect changed the key: %+v", got)
		}
	}
}

// proxy is a tiny forward HTTP proxy that records the hosts it was asked for.
type proxy struct {
	*httptest.Server
	mu    sync.Mutex
	hosts []string
}

func startProxy(t *testing.T) *proxy {
	p := &proxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.hosts = append(p.hosts, r.URL.Host)
		p.mu.Unlock()
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), r.Body)
		out.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.hosts...)
}

// The test call goes through the key's PROXIES entry, the one edge picks for
// the same key.
func TestVerifyGoesThroughTheKeysProxy(t *testing.T) {
	key := "AIzaSyVerifyProxied000000000000000000001"
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{key}})
	a, b := startProxy(t), startProxy(t)
	s := config.Defaults()
	s.BaseURL = fake.URL
	s.Proxies = []string{a.URL, b.URL}
	s.ProxiesConsistentHash = true
	k := pool.NewKey(key, bus.KindGemini, time.Now())

	v := &Verifier{Settings: func() *config.Settings { return &s }}
	if r := v.Verify(context.Background(), []pool.Key{k})[0]; !r.OK() {
		t.Fatalf("verify through the proxy: %+v", r)
	}
	want, other := a, b
	if proxies.Pick(k.ID, s.Proxies) == b.URL {
		want, other = b, a
	}
	fakeHost := strings.TrimPrefix(fake.URL, "http://")
	if got := want.seen(); len(got) != 1 || got[0] != fakeHost {
		t.Fatalf("the key's proxy saw %v, want one call to %s", got, fakeHost)
	}
	if got := other.seen(); len(got) != 0 {
		t.Fatalf("the other proxy saw %v", got)
	}
}
