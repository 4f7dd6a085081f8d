package stack

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/genai"
)

// Gemini is an official Gemini SDK client pointed at edge replica i, authenticated with
// the first client token, as a user of the proxy would configure it.
func (s *Stack) Gemini(t testing.TB, i int) *genai.Client {
	t.Helper()
	return s.GeminiAs(t, i, s.opts.Tokens[0])
}

// GeminiAs is Gemini with another client token (one of Tokens()).
func (s *Stack) GeminiAs(t testing.TB, i int, token string) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey: token, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: s.EdgeURL(i) + "/", APIVersion: "v1beta"},
	})
	if err != nil {
		t.Fatalf("e2e: genai client: %v", err)
	}
	return c
}

// Mongo is a client on the stack's store, disconnected at test cleanup, opened on the
// services' database.
func (s *Stack) Mongo(t testing.TB) *mongo.Database {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(s.MongoURI()).SetTimeout(10 * time.Second))
	if err != nil {
		t.Fatalf("e2e: mongo: %v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database(s.MongoDB())
}

// NATS is a client connection to the stack's nats-server (as admind under
// NATSConfig), closed at test cleanup.
func (s *Stack) NATS(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.NATSURL(), append(s.harnessOpts(), nats.Name("e2e-test"), nats.MaxReconnects(-1))...)
	if err != nil {
		t.Fatalf("e2e: nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
