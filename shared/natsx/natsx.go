// Package natsx connects to NATS the same way in every service and
// provisions the JetStream streams and KV buckets of the bus contract.
package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/shared/bus"
)

// Options say how to reach NATS. Credentials are optional.
type Options struct {
	URL      string
	Name     string // connection name: service and replica
	User     string
	Password string
	Token    string
	Creds    string
	Logger   *slog.Logger
	// InProcess, when set, connects through an embedded server without a socket.
	InProcess nats.InProcessConnProvider
}

// Connect opens a named connection that reconnects forever.
func Connect(o Options) (*nats.Conn, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(16 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	}
	switch {
	case o.Creds != "":
		opts = append(opts, nats.UserCredentials(o.Creds))
	case o.Token != "":
		opts = append(opts, nats.Token(o.Token))
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.InProcess != nil {
		opts = append(opts, nats.InProcessServer(o.InProcess))
	}
	url := o.URL
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", url, err)
	}
	return nc, nil
}

// Stream limits. Events are kept long enough to ride out a logd or MongoDB
// outage of a day; past the size bound the oldest are discarded.
const (
	EventsMaxAge   = 72 * time.Hour
	EventsMaxBytes = 4 << 30
	TicksMaxAge    = 24 * time.Hour
	DedupWindow    = 2 * time.Hour
	DLQMaxAge      = 14 * 24 * time.Hour
)

// Provision creates or updates the streams and KV buckets. It is idempotent
// and safe to run from every service at start.
func Provision(ctx context.Context, js jetstream.JetStream) error {
	streams := []jetstream.StreamConfig{
		{
			Name:      bus.StreamEvents,
			Subjects:  []string{bus.SubjectEventsAll},
			Storage:   jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy,
			MaxAge:    EventsMaxAge,
			MaxBytes:  EventsMaxBytes,
			Discard:   jetstream.DiscardOld,
			// Edge sets Nats-Msg-Id to the event id, so a retried publish is stored once.
			Duplicates: 2 * time.Minute,
		},
		{
			Name:       bus.StreamTicks,
			Subjects:   []string{bus.SubjectTicksAll},
			Storage:    jetstream.FileStorage,
			MaxAge:     TicksMaxAge,
			Duplicates: DedupWindow,
		},
		{
			Name:     bus.StreamDeadLetter,
			Subjects: []string{bus.SubjectDeadLetter},
			Storage:  jetstream.FileStorage,
			MaxAge:   DLQMaxAge,
		},
	}
	for _, cfg := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("provision stream %s: %w", cfg.Name, err)
		}
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bus.BucketSettings, History: 5, Storage: jetstream.FileStorage}); err != nil {
		return fmt.Errorf("provision kv %s: %w", bus.BucketSettings, err)
	}
	// One entry per managed client token; only the latest value matters, and a
	// deleted token must not linger in history.
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bus.BucketClientTokens, History: 1, Storage: jetstream.FileStorage}); err != nil {
		return fmt.Errorf("provision kv %s: %w", bus.BucketClientTokens, err)
	}
	return nil
}

// ProvisionWithRetry retries Provision until it succeeds or ctx ends, so a
// service started before NATS is ready still comes up.
func ProvisionWithRetry(ctx context.Context, js jetstream.JetStream) error {
	backoff := 100 * time.Millisecond
	for {
		err := Provision(ctx, js)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}
