// Package natstest starts the real NATS server that component tests run
// against: embedded (deployments/embedded/natsd), JetStream on, its store in
// t.TempDir(), a free loopback port, shut down when the test ends. StartBus
// also provisions the bus contract's streams and settings bucket, as every
// service does at start.
//
//	bus := natstest.StartBus(t)                  // server + provisioned bus + bus.NC, bus.JS
//	other := bus.Conn(t, nats.Name("keyd-b"))    // another client of the same server
//	srv := natstest.StartRestartable(t)          // outage tests: srv.Stop(); srv.Restart(t)
package natstest

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/deployments/embedded/natsd"
	"github.com/gemini-balance-go/shared/natsx"
)

// Start starts a server for one test.
func Start(t testing.TB) *natsd.Server {
	t.Helper()
	return StartConfigured(t, nil)
}

// StartConfigured starts a server for one test with its options adjusted
// by configure (users and permissions, limits) before it starts.
func StartConfigured(t testing.TB, configure func(*server.Options)) *natsd.Server {
	t.Helper()
	s, err := natsd.Start(natsd.Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1", Configure: configure})
	if err != nil {
		t.Fatalf("natstest: start embedded nats: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Bus is a server with the bus provisioned and a client connection to it.
type Bus struct {
	Server *natsd.Server
	URL    string
	NC     *nats.Conn
	JS     jetstream.JetStream
}

// StartBus starts a server for one test, connects to it and provisions the
// bus. The connection closes when the test ends.
func StartBus(t testing.TB) *Bus {
	t.Helper()
	return Provision(t, Start(t))
}

// Provision connects to s with opts (credentials, when s has users) and
// provisions the bus, as every service does at start.
func Provision(t testing.TB, s *natsd.Server, opts ...nats.Option) *Bus {
	t.Helper()
	nc, js := Connect(t, s.URL, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := natsx.Provision(ctx, js); err != nil {
		t.Fatalf("natstest: provision the bus: %v", err)
	}
	return &Bus{Server: s, URL: s.URL, NC: nc, JS: js}
}

// Conn opens another client connection to the bus's server (a service
// under test wants one of its own); it closes when the test ends.
func (b *Bus) Conn(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, _ := Connect(t, b.URL, opts...)
	return nc
}

// Connect connects to url with opts; the connection closes when the test ends.
func Connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("natstest: connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// Restartable is a server that a test stops and starts again, on the same
// address and the same JetStream store, to play an outage.
type Restartable struct {
	*natsd.Server
	dir, listen string
}

// StartRestartable starts a server for one test that Stop and Restart can
// take down and bring back; it shuts down when the test ends.
func StartRestartable(t testing.TB) *Restartable {
	t.Helper()
	r := &Restartable{dir: t.TempDir(), listen: "127.0.0.1:" + strconv.Itoa(freePort(t))}
	r.Restart(t)
	t.Cleanup(func() { r.Stop() })
	return r
}

// Stop shuts the server down and waits until its store is flushed.
func (r *Restartable) Stop() { r.Shutdown() }

// Restart starts the server again on its address and store.
func (r *Restartable) Restart(t testing.TB) {
	t.Helper()
	s, err := natsd.Start(natsd.Options{StoreDir: r.dir, Listen: r.listen})
	if err != nil {
		t.Fatalf("natstest: start embedded nats on %s: %v", r.listen, err)
	}
	r.Server = s
}

// freePort is a loopback port nothing listens on now, so a restarted server
// can take the same address.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
