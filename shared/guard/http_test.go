package guard

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve runs h behind the guard's server settings, with a short stall
// timeout so the test need not wait BodyStallTimeout.
func serve(t *testing.T, h http.Handler, stall time.Duration) string {
	t.Helper()
	srv := Server(h)
	srv.Handler = StallTimeout(h, stall)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func readBodyHandler(limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, berr := ReadBody(w, r, limit)
		if berr != nil {
			http.Error(w, berr.Msg, berr.Status)
			return
		}
		fmt.Fprintf(w, "read %d", len(b))
	})
}

// rawRequest writes head (and body) on a fresh connection and returns the
// status line and, when waitClose, whether the server then closed the
// connection.
func rawRequest(t *testing.T, addr, head, body string, waitClose bool) (status string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // only a broken server reaches it
	if _, err := io.WriteString(c, head+body); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	if !waitClose {
		return res.Status, false
	}
	_, err = br.ReadByte()
	return res.Status, err == io.EOF
}

func TestStalledBodyIsAnswered408AndTheConnectionClosed(t *testing.T) {
	addr := serve(t, readBodyHandler(1<<20), 300*time.Millisecond)
	status, closed := rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", "only ten b", true)
	if !strings.HasPrefix(status, "408") || !closed {
		t.Fatalf("status %q, closed %v", status, closed)
	}
}

func TestBodyOneByteOverTheCapIs413(t *testing.T) {
	addr := serve(t, readBodyHandler(1000), time.Minute)
	for name, head := range map[string]string{
		"declared": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n",
		"chunked":  "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n",
	} {
		body := strings.Repeat("a", 1001)
		if name == "chunked" {
			body += "\r\n0\r\n\r\n"
		}
		if status, _ := rawRequest(t, addr, head, body, false); !strings.HasPrefix(status, "413") {
			t.Errorf("%s: status %q", name, status)
		}
	}
	if status, _ := rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", strings.Repeat("a", 1000), false); !strings.HasPrefix(status, "200") {
		t.Errorf("at the cap: status %q", status)
	}
}

// A long answer after the body was read must outlive the stall timeout: the
// deadline is lifted at the body's end, so the server's watch for a vanished
// client does not cancel the request.
func TestLongAnswerOutlivesTheBodyStallTimeout(t *testing.T) {
	stall := 200 * time.Millisecond
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		for i := range 5 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(stall):
			}
			fmt.Fprintf(w, "event %d\n", i)
			w.(http.Flusher).Flush()
		}
	}), stall)
	res, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "event 4") {
		t.Fatalf("stream cut: %q", b)
	}
}

func TestSlowHeadersAreCut(t *testing.T) {
	srv := Server(http.NotFoundHandler())
	srv.ReadHeaderTimeout = 200 * time.Millisecond // the mechanism; e2e checks the real value
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
	for ctx.Err() == nil {
		if _, err := io.WriteString(c, "X-Trickle: a\r\n"); err != nil {
			return // cut
		}
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var one [1]byte
		if _, err := c.Read(one[:]); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return // the server closed the connection (or answered 408 and closed)
		}
	}
	t.Fatal("a client trickling headers was never cut off")
}
