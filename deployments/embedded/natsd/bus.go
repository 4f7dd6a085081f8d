package natsd

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/shared/natsx"
)

// StartBusForTest starts a server for one test, connects to it and provisions
// the bus contract's streams and settings bucket, as every service does at
// start. The connection closes when the test ends.
func StartBusForTest(t testing.TB) (*Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	s := StartForTest(t)
	nc, err := nats.Connect(s.URL)
	if err != nil {
		t.Fatalf("natsd: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natsd: jetstream: %v", err)
	}
	if err := natsx.Provision(context.Background(), js); err != nil {
		t.Fatalf("natsd: provision: %v", err)
	}
	return s, nc, js
}
