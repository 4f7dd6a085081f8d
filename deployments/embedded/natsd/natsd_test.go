package natsd_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/deployments/embedded/natsd"
)

func TestJetStreamStoresAndDeliversAMessage(t *testing.T) {
	s := startForTest(t)
	nc, err := nats.Connect(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.one", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateConsumer(ctx, "T", jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data()) != "hello" {
		t.Fatalf("got %q", msg.Data())
	}
}

func TestJetStreamDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := natsd.Start(natsd.Options{StoreDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, _ := nats.Connect(s.URL)
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "P", Subjects: []string{"p"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "p", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	s.Shutdown()

	s2, err := natsd.Start(natsd.Options{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown()
	nc2, _ := nats.Connect(s2.URL)
	defer nc2.Close()
	js2, _ := jetstream.New(nc2)
	stream, err := js2.Stream(ctx, "P")
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetMsg(ctx, 1)
	if err != nil || string(m.Data) != "kept" {
		t.Fatalf("after restart: %v %q", err, m.Data)
	}
}

func TestInProcessConnectionNeedsNoSocket(t *testing.T) {
	s := startForTest(t)
	nc, err := nats.Connect("", nats.InProcessServer(s.Server))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, _ := nc.SubscribeSync("x")
	_ = nc.Publish("x", []byte("y"))
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// A listener other than loopback without authentication would open the bus
// (keys travel on it) to the network: the server does not start.
func TestRefusesANonLoopbackListenerWithoutAuth(t *testing.T) {
	_, err := natsd.Start(natsd.Options{StoreDir: t.TempDir(), Listen: "0.0.0.0:-1"})
	if err == nil || !strings.Contains(err.Error(), "without authentication") {
		t.Fatalf("start on 0.0.0.0 without auth: %v, want a refusal", err)
	}
	s, err := natsd.Start(natsd.Options{StoreDir: t.TempDir(), Listen: "0.0.0.0:-1", Configure: func(o *server.Options) {
		o.Users = []*server.User{{Username: "u", Password: "p"}}
	}})
	if err != nil {
		t.Fatalf("start on 0.0.0.0 with users: %v", err)
	}
	defer s.Shutdown()
	if _, err := nats.Connect(s.URL); err == nil {
		t.Fatal("a connection without credentials was accepted")
	}
}

// The store directory is the owner's alone.
func TestStoreDirIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	s, err := natsd.Start(natsd.Options{StoreDir: dir, NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("store dir mode %v, want 0700", fi.Mode().Perm())
	}
	nc, err := nats.Connect("", nats.InProcessServer(s.Server))
	if err != nil {
		t.Fatalf("in-process connection without a listener: %v", err)
	}
	nc.Close()
}

// startForTest starts a server on a random port with its store in
// t.TempDir() (as testkit/natstest does for the services; testkit
// requires this module, so this module's tests do not require testkit).
func startForTest(t *testing.T) *natsd.Server {
	t.Helper()
	s, err := natsd.Start(natsd.Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}
