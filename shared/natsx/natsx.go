// Package natsx connects to NATS the same way in every service and
// provisions the JetStream streams and KV buckets of the bus contract.
package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	// InboxPrefix replaces "_INBOX" for this connection's reply subjects, so
	// a least-privileged user may subscribe to its own replies only.
	InboxPrefix string
	Logger      *slog.Logger
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
	if o.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
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

// InboxPrefix is the reply-subject prefix of service's connections
// ("_INBOX_keyd"): deployments/nats/nats.conf lets each service user
// subscribe to its own prefix only, so no service reads another's replies
// (keyd's acquire replies carry keys).
func InboxPrefix(service string) string { return "_INBOX_" + service }

// Stream limits. Events are kept long enough to ride out a logd or MongoDB
// outage of a day; past the size bound the oldest are discarded.
const (
	EventsMaxAge   = 72 * time.Hour
	EventsMaxBytes = 4 << 30
	TicksMaxAge    = 24 * time.Hour
	DedupWindow    = 2 * time.Hour
	DLQMaxAge      = 14 * 24 * time.Hour
)

// streamConfigs are the bus contract's streams, each with replicas copies
// (JETSTREAM_REPLICAS; 3 on a 3-node cluster survives the loss of one node).
func streamConfigs(replicas int) []jetstream.StreamConfig {
	cfgs := []jetstream.StreamConfig{
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
	for i := range cfgs {
		cfgs[i].Replicas = max(replicas, 1)
	}
	return cfgs
}

// bucketConfigs are the bus contract's KV buckets, replicated like the streams.
func bucketConfigs(replicas int) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: bus.BucketSettings, History: 5, Storage: jetstream.FileStorage, Replicas: max(replicas, 1)},
		// One entry per managed client token; only the latest value matters, and a
		// deleted token must not linger in history.
		{Bucket: bus.BucketClientTokens, History: 1, Storage: jetstream.FileStorage, Replicas: max(replicas, 1)},
	}
}

// Owners says which service owns (may update) each stream and bucket. The
// others that use it may only create it, with the same configuration, when
// it is missing; no service may delete or purge any of them
// (deployments/nats/nats.conf).
var Owners = map[string]string{
	bus.StreamEvents:               bus.ServiceLogd,
	bus.StreamDeadLetter:           bus.ServiceLogd,
	bus.StreamTicks:                bus.ServiceSchedulerd,
	"KV_" + bus.BucketSettings:     bus.ServiceAdmind,
	"KV_" + bus.BucketClientTokens: bus.ServiceAdmind,
}

// Uses lists the streams and buckets (as streams) each service needs.
var Uses = map[string][]string{
	bus.ServiceEdge:       {bus.StreamEvents, "KV_" + bus.BucketSettings, "KV_" + bus.BucketClientTokens},
	bus.ServiceKeyd:       {bus.StreamEvents, bus.StreamTicks, "KV_" + bus.BucketSettings},
	bus.ServiceLogd:       {bus.StreamEvents, bus.StreamDeadLetter, bus.StreamTicks, "KV_" + bus.BucketSettings},
	bus.ServiceAdmind:     {"KV_" + bus.BucketSettings, "KV_" + bus.BucketClientTokens},
	bus.ServiceSchedulerd: {bus.StreamTicks, "KV_" + bus.BucketSettings},
}

// Provision creates or updates every stream and KV bucket with one replica
// (a single server). It is idempotent; tests, which run as one user, use it.
func Provision(ctx context.Context, js jetstream.JetStream) error {
	return ProvisionReplicated(ctx, js, 1)
}

// ProvisionReplicated is Provision with replicas copies of each stream and
// bucket (JETSTREAM_REPLICAS); the all-in-one uses it.
func ProvisionReplicated(ctx context.Context, js jetstream.JetStream, replicas int) error {
	return provision(ctx, js, replicas, func(string) bool { return true }, func(string) bool { return true })
}

// ProvisionFor provisions what service uses: it creates or updates what it
// owns and creates, if missing, what another service owns, so the services
// may start in any order under their least-privileged NATS users. The owner
// applies replicas to an existing stream too, so raising JETSTREAM_REPLICAS
// scales the streams up at its next start.
func ProvisionFor(ctx context.Context, js jetstream.JetStream, service string, replicas int) error {
	return provision(ctx, js, replicas,
		func(name string) bool { return slices.Contains(Uses[service], name) },
		func(name string) bool { return Owners[name] == service })
}

func provision(ctx context.Context, js jetstream.JetStream, replicas int, uses, owns func(string) bool) error {
	for _, cfg := range streamConfigs(replicas) {
		if !uses(cfg.Name) {
			continue
		}
		var err error
		if owns(cfg.Name) {
			_, err = js.CreateOrUpdateStream(ctx, cfg)
		} else if _, err = js.CreateStream(ctx, cfg); errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil // the owner's configuration stands
		}
		if err != nil {
			return fmt.Errorf("provision stream %s: %w", cfg.Name, err)
		}
	}
	for _, cfg := range bucketConfigs(replicas) {
		name := "KV_" + cfg.Bucket
		if !uses(name) {
			continue
		}
		var err error
		if owns(name) {
			_, err = js.CreateOrUpdateKeyValue(ctx, cfg)
		} else if _, err = js.CreateKeyValue(ctx, cfg); errors.Is(err, jetstream.ErrBucketExists) {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("provision kv %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}

// ProvisionWithRetry retries ProvisionReplicated until it succeeds or ctx
// ends, so a service started before NATS is ready (or before a cluster has
// elected its meta leader) still comes up.
func ProvisionWithRetry(ctx context.Context, js jetstream.JetStream, replicas int) error {
	return retry(ctx, func() error { return ProvisionReplicated(ctx, js, replicas) })
}

// ProvisionForWithRetry is ProvisionFor, retried like ProvisionWithRetry.
func ProvisionForWithRetry(ctx context.Context, js jetstream.JetStream, service string, replicas int) error {
	return retry(ctx, func() error { return ProvisionFor(ctx, js, service, replicas) })
}

// Retry runs f until it succeeds or ctx ends, backing off up to 2 s: a
// NATS cluster answers "not found" for a stream or bucket another service
// has just created until its replicas have formed.
func Retry(ctx context.Context, f func() error) error { return retry(ctx, f) }

func retry(ctx context.Context, f func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := f()
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
