package browser

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The tab's failure capture itself: a page that logs a console error, throws,
// loads a missing image and fetches from a closed port is reported for each;
// a 401 the step expects is not, and neither is a clean page. The 390 px
// check names an element too wide for a phone.
func TestTabReportsConsoleErrorsExceptionsAndFailedRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("browser: skipped in -short mode")
	}
	b := Launch(t)
	closed := closedPort(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/clean", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>clean</title><p id="ok">fine</p><script>console.log("just a log")</script>`)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>broken</title><img src="/missing.png" alt="">
<script>
console.error("boom from the page");
fetch("http://127.0.0.1:%d/nothing-listens").catch(() => {});
setTimeout(() => { throw new Error("uncaught on purpose"); }, 0);
</script>`, closed)
	})
	mux.HandleFunc("/wide", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><meta name="viewport" content="width=device-width"><title>wide</title>
<p>fits</p><div id="too-wide" style="width:600px">wider than a phone</div>`)
	})
	mux.HandleFunc("/expected", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>expected</title><script>fetch("/api/session-like")</script>`)
	})
	mux.HandleFunc("/api/session-like", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"not logged in"}`, http.StatusUnauthorized)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tab := b.NewTab(t, srv.URL)

	tab.Go("/clean")
	if p := tab.Problems(); len(p) != 0 {
		t.Errorf("a clean page reported problems: %q", p)
	}

	tab.Go("/broken")
	got := strings.Join(tab.Problems(), "\n")
	for _, want := range []string{
		"console.error: boom from the page",
		"uncaught exception",
		"uncaught on purpose",
		"unexpected HTTP 404: GET " + srv.URL + "/missing.png",
		fmt.Sprintf("request failed: GET http://127.0.0.1:%d/nothing-listens", closed),
		"/broken: ", // where it happened
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}

	// The 390 px check: a page that fits, then one 600 px wide.
	tab.Viewport(390, 844, true)
	tab.Go("/clean")
	if over, culprit := tab.HorizontalOverflow(); over != 0 {
		t.Errorf("/clean at 390 px overflows by %d (%s)", over, culprit)
	}
	tab.Go("/wide")
	if over, culprit := tab.HorizontalOverflow(); over <= 0 || culprit != "div#too-wide" {
		t.Errorf("/wide at 390 px: overflow %d, culprit %q; want > 0 and div#too-wide", over, culprit)
	}
	tab.Viewport(1280, 800, false)

	tab.Expect([]Allow{{Method: "GET", Path: "/api/session-like", Status: 401}}, func() { tab.Go("/expected") })
	if p := tab.Problems(); len(p) != 0 {
		t.Errorf("an expected 401 was reported: %q", p)
	}
	tab.Go("/expected") // no longer expected
	if got := strings.Join(tab.Problems(), "\n"); !strings.Contains(got, "unexpected HTTP 401: GET "+srv.URL+"/api/session-like") {
		t.Errorf("a 401 outside Expect was not reported: %q", got)
	}
}

// closedPort is a local port nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}
