package boot

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gemini-balance-go/shared/config"
)

// service is a service whose readiness and failure the test controls.
type service struct {
	ready   atomic.Bool
	fail    chan error    // Run returns what arrives here
	running chan struct{} // closed when Run starts
	stopped chan struct{} // closed when Run returns
}

func newService() *service {
	return &service{fail: make(chan error, 1), running: make(chan struct{}), stopped: make(chan struct{})}
}

func (s *service) Run(ctx context.Context) error {
	close(s.running)
	defer close(s.stopped)
	select {
	case <-ctx.Done():
		return nil
	case err := <-s.fail:
		return err
	}
}

func (s *service) Ready(context.Context) error {
	if !s.ready.Load() {
		return errors.New("starting")
	}
	return nil
}

// api is a service with its own HTTP surface.
type api struct{ *service }

func (api) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "api") })
}

// process is a Process on a free loopback port (Run serves PORT).
func process(t *testing.T) (*Process, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return &Process{Service: "svc", Infra: config.Infra{Port: port}, Log: slog.New(slog.DiscardHandler), Drain: time.Second},
		"http://127.0.0.1:" + strconv.Itoa(port)
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func within(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
	}
}

// A service with its own API (admind) gets no request before it is ready:
// its port opens only then. On stop, Run returns once the service and the
// server have both stopped.
func TestAnHTTPServiceIsServedOnlyOnceReady(t *testing.T) {
	p, url := process(t)
	svc := api{newService()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, svc) }()
	<-svc.running
	// However long start-up takes, nothing is served meanwhile (probed for a
	// while: the port would open at once without the wait for Ready).
	for range 25 {
		if body, err := get(url + "/"); err == nil {
			t.Fatalf("served %q before the service was ready", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	svc.ready.Store(true)
	within(t, "API served once ready", func() bool { body, err := get(url + "/"); return err == nil && body == "api" })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after stop: %v", err)
	}
	select {
	case <-svc.stopped:
	default:
		t.Fatal("Run returned before the service stopped")
	}
	if _, err := get(url + "/"); err == nil {
		t.Fatal("port still served after Run returned")
	}
}

// A service that fails takes the process down with its error (exit 1 in
// Main), and the port closes; a service without an API gets /healthz meanwhile.
func TestAFailingServiceStopsTheProcessWithItsError(t *testing.T) {
	p, url := process(t)
	svc := newService()
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background(), svc) }()
	within(t, "/healthz served from the start", func() bool { _, err := get(url + "/healthz"); return err == nil })
	svc.fail <- errors.New("store gone")
	if err := <-done; err == nil || !strings.Contains(err.Error(), "store gone") {
		t.Fatalf("Run = %v, want the service's error", err)
	}
	if _, err := get(url + "/healthz"); err == nil {
		t.Fatal("port still served after the service failed")
	}
}

// A port that cannot be served fails the process and stops the service
// cleanly (it sees its context end).
func TestAPortInUseFailsAndStopsTheService(t *testing.T) {
	p, _ := process(t)
	busy, err := net.Listen("tcp", ":"+strconv.Itoa(p.Infra.Port))
	if err != nil {
		t.Skipf("cannot hold the port: %v", err)
	}
	defer busy.Close()
	svc := newService()
	err = p.Run(context.Background(), svc)
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(p.Infra.Port)) {
		t.Fatalf("Run = %v, want the serve error naming the port", err)
	}
	select {
	case <-svc.stopped:
	default:
		t.Fatal("Run returned while the service still runs")
	}
}
