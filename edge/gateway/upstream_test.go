package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

func TestCustomHeadersAreSentUpstreamWithTheKeyInTheHeader(t *testing.T) {
	e := newEnv(t, envOptions{settings: func(s *config.Settings) {
		s.CustomHeaders = map[string]string{"X-Team": "blue"}
	}})
	res := e.post("/v1beta/models/gemini-2.5-flash:generateContent?key="+token, `{"contents":[{"parts":[{"text":"hi"}]}]}`)
	res.Body.Close()
	last, _ := e.fake.Last(fakegemini.Filter{Method: "generateContent"})
	if last.Header.Get("X-Team") != "blue" || last.Header.Get("x-goog-api-key") != keyGood1 || last.RawQuery != "" {
		t.Fatalf("upstream request: header %v, query %q", last.Header, last.RawQuery)
	}
}

func TestTimeOutBoundsTheWaitForUpstream(t *testing.T) {
	e := newEnv(t, envOptions{settings: func(s *config.Settings) { s.TimeOut = 1; s.MaxRetries = 1 }})
	e.fake.SetKey(keyGood1, fakegemini.Behaviour{Delay: fakegemini.Duration(time.Hour)})
	res := e.post("/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`)
	ge := readError(t, res.Body)
	res.Body.Close()
	if res.StatusCode != 504 || ge.Error.Status != "DEADLINE_EXCEEDED" {
		t.Fatalf("got %d %+v", res.StatusCode, ge)
	}
}

func TestProxiesCarryUpstreamCalls(t *testing.T) {
	var via atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		via.Add(1) // a forward proxy gets the absolute upstream URL
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), r.Body)
		out.Header = r.Header.Clone()
		res, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		_, _ = io.Copy(w, res.Body)
	}))
	t.Cleanup(proxy.Close)
	e := newEnv(t, envOptions{settings: func(s *config.Settings) { s.Proxies = []string{proxy.URL} }})
	res := e.post("/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`)
	res.Body.Close()
	if res.StatusCode != 200 || via.Load() != 1 {
		t.Fatalf("status %d, calls through the proxy %d", res.StatusCode, via.Load())
	}
}

// A redirect from upstream is answered as it is: the relay never follows
// one, so a key never travels to another host.
func TestAnUpstreamRedirectIsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	moved := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(moved.Close)
	e := newEnv(t, envOptions{settings: func(s *config.Settings) { s.BaseURL = moved.URL; s.MaxRetries = 1 }})
	res := e.post("/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`)
	res.Body.Close()
	if elsewhere.Load() != 0 || res.StatusCode == http.StatusOK {
		t.Fatalf("status %d; the redirect's target was called %d times", res.StatusCode, elsewhere.Load())
	}
}

// An upstream that cannot be reached is a 502 that names the call that
// failed, and never the key.
func TestAnUnreachableUpstreamSaysWhichCallFailed(t *testing.T) {
	l := httptest.NewServer(http.NotFoundHandler())
	dead := l.URL
	l.Close() // nothing listens there any more
	e := newEnv(t, envOptions{settings: func(s *config.Settings) { s.BaseURL = dead; s.MaxRetries = 1 }})
	res := e.post("/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`)
	ge := readError(t, res.Body)
	res.Body.Close()
	want := `upstream connection failed: Post "` + dead + `/v1beta/models/gemini-2.5-flash:generateContent": `
	if res.StatusCode != http.StatusBadGateway || !strings.HasPrefix(ge.Error.Message, want) || strings.Contains(ge.Error.Message, keyGood1) {
		t.Fatalf("got %d %q, want 502 starting %q", res.StatusCode, ge.Error.Message, want)
	}
}
