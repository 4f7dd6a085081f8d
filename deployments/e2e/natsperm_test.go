package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/natsx"
)

// natsOnly starts nats-server alone, with the shipped deployment config.
func natsOnly(t *testing.T) *stack.Stack {
	return stack.Start(t, stack.Options{NATSConfig: "../nats/nats.conf",
		Without: []string{"store", "fake", "keyd", "logd", "admind", "schedulerd", "edge"}})
}

// permCase is one thing a user of deployments/nats/nats.conf tries.
type permCase struct {
	user    string
	op      string // "pub" (with a reply subject of the user's own prefix) or "sub"
	subject string
	allowed bool
}

func allow(user, op string, subjects ...string) []permCase { return perms(user, op, true, subjects) }
func deny(user, op string, subjects ...string) []permCase  { return perms(user, op, false, subjects) }
func perms(user, op string, allowed bool, subjects []string) []permCase {
	var out []permCase
	for _, s := range subjects {
		out = append(out, permCase{user, op, s, allowed})
	}
	return out
}

// The per-user table: what each service user and the tap may and may not
// publish or subscribe to, the JetStream API included. A denied action must
// be refused by the server (a permissions violation), an allowed one must not.
func TestNATSUsersHaveLeastPrivilege(t *testing.T) {
	s := natsOnly(t)
	var cases []permCase
	for _, tbl := range [][]permCase{
		// edge
		allow("edge", "pub", bus.SubjectKeyAcquire, bus.SubjectKeyReport, bus.SubjectFileBind, bus.SubjectFileLookup,
			bus.SubjectEventRequests, bus.SubjectEventErrors,
			"$JS.API.STREAM.INFO.KV_gb_settings", "$JS.API.DIRECT.GET.KV_gb_client_tokens.$KV.gb_client_tokens.x"),
		deny("edge", "pub", bus.SubjectKeyAdd, bus.SubjectKeyReveal, bus.SubjectKeySync, bus.SubjectEventKeyState,
			bus.SubjectTickRecover, bus.SubjectDLQLogd, "$SRV.PING",
			"$KV.gb_settings.current", "$KV.gb_client_tokens.x",
			"$JS.API.STREAM.DELETE.GB_EVENTS", "$JS.API.STREAM.PURGE.GB_EVENTS", "$JS.API.STREAM.UPDATE.GB_EVENTS",
			"$JS.API.STREAM.PURGE.KV_gb_client_tokens", "$JS.API.STREAM.DELETE.KV_gb_settings",
			"$JS.API.STREAM.MSG.DELETE.KV_gb_client_tokens", "$JS.API.CONSUMER.DELETE.GB_EVENTS.logd-request",
			"$JS.API.CONSUMER.CREATE.GB_EVENTS.spy.gb.events.requests"),
		allow("edge", "sub", "_INBOX_edge.>", "$SRV.PING", "$SRV.PING.edge"),
		deny("edge", "sub", "_INBOX.>", "_INBOX_keyd.>", "_INBOX_admind.>", ">", bus.SubjectKeyAcquire, bus.SubjectKeyAdd,
			"gb.events.>", bus.SubjectDeliverLogdRequests, "$KV.gb_client_tokens.>"),

		// keyd
		allow("keyd", "pub", bus.SubjectKeySync, bus.SubjectEventKeyState,
			"$JS.API.CONSUMER.INFO.GB_TICKS.keyd_recover", "$JS.ACK.GB_TICKS.keyd_recover.1.1.1.1.1.1"),
		deny("keyd", "pub", bus.SubjectKeyAdd, bus.SubjectEventRequests, "$KV.gb_settings.current",
			"$JS.API.STREAM.DELETE.GB_TICKS", "$JS.API.STREAM.PURGE.GB_TICKS", "$JS.API.STREAM.UPDATE.GB_TICKS",
			"$JS.API.STREAM.PURGE.GB_EVENTS",
			"$JS.API.CONSUMER.CREATE.GB_TICKS.logd-retention.gb.ticks.retention",
			"$JS.API.CONSUMER.DELETE.GB_TICKS.keyd_recover", "$JS.ACK.GB_EVENTS.logd-request.1.1.1.1.1.1",
			"$JS.API.CONSUMER.RESET.GB_EVENTS.logd-request"),
		allow("keyd", "sub", bus.SubjectKeyAcquire, bus.SubjectKeyAdd, bus.SubjectKeySync, bus.SubjectDeliverKeydRecover, "_INBOX_keyd.>"),
		deny("keyd", "sub", "_INBOX.>", "_INBOX_edge.>", "gb.logd.>", bus.SubjectEventRequests, bus.SubjectDeliverLogdRequests),

		// logd
		allow("logd", "pub", bus.SubjectDLQLogd, "$JS.API.STREAM.UPDATE.GB_EVENTS",
			"$JS.API.CONSUMER.PAUSE.GB_EVENTS.logd-request", "$JS.API.CONSUMER.RESET.GB_EVENTS.logd-request",
			"$JS.ACK.GB_EVENTS.logd-error.1.1.1.1.1.1"),
		deny("logd", "pub", bus.SubjectKeyAcquire, bus.SubjectKeyReveal, "$KV.gb_settings.current",
			"$JS.API.STREAM.DELETE.GB_EVENTS", "$JS.API.STREAM.PURGE.GB_EVENTS", "$JS.API.STREAM.PURGE.GB_DLQ",
			"$JS.API.STREAM.MSG.DELETE.GB_EVENTS", "$JS.API.STREAM.UPDATE.GB_TICKS", "$JS.API.STREAM.DELETE.KV_gb_settings",
			"$JS.API.CONSUMER.CREATE.GB_TICKS.keyd_recover.gb.ticks.recover"),
		allow("logd", "sub", "gb.logd.requests", bus.SubjectDeliverLogdRequests, bus.SubjectDeliverLogdErrors, "_INBOX_logd.>"),
		deny("logd", "sub", "_INBOX.>", "_INBOX_edge.>", bus.SubjectKeyAdd, bus.SubjectKeyAcquire, bus.SubjectDeliverKeydRecover),

		// admind
		allow("admind", "pub", bus.SubjectKeyAdd, bus.SubjectKeyReveal, bus.SubjectFileList, "gb.logd.requests",
			"gb.schedulerd.status", "gb.schedulerd.run", "$SRV.PING", "$SRV.INFO.keyd",
			"$KV.gb_client_tokens.x", "$JS.API.STREAM.UPDATE.KV_gb_client_tokens"),
		deny("admind", "pub", bus.SubjectKeyAcquire, bus.SubjectKeySync, bus.SubjectEventRequests, bus.SubjectTickRecover,
			"$JS.API.STREAM.DELETE.KV_gb_settings", "$JS.API.STREAM.PURGE.KV_gb_client_tokens",
			"$JS.API.STREAM.DELETE.GB_EVENTS", "$JS.API.STREAM.PURGE.GB_EVENTS",
			"$JS.API.CONSUMER.CREATE.GB_EVENTS.spy.gb.events.requests"),
		allow("admind", "sub", bus.SubjectEventRequests, "_INBOX_admind.>"),
		deny("admind", "sub", "_INBOX.>", "_INBOX_keyd.>", bus.SubjectKeyAcquire, bus.SubjectKeyAdd, bus.SubjectEventErrors),

		// schedulerd
		allow("schedulerd", "pub", bus.SubjectTickRecover, bus.SubjectTickRetention, "$JS.API.STREAM.UPDATE.GB_TICKS"),
		deny("schedulerd", "pub", bus.SubjectKeyAdd, bus.SubjectEventRequests, "$KV.gb_settings.current",
			"$JS.API.STREAM.DELETE.GB_TICKS", "$JS.API.STREAM.PURGE.GB_TICKS", "$JS.API.STREAM.UPDATE.GB_EVENTS"),
		allow("schedulerd", "sub", "gb.schedulerd.status", "gb.schedulerd.run", "_INBOX_schedulerd.>"),
		deny("schedulerd", "sub", "_INBOX.>", "gb.keyd.>", "gb.events.>"),

		// tap: gb.events.> and nothing else.
		allow("tap", "sub", "gb.events.>", bus.SubjectEventRequests, bus.SubjectEventKeyState),
		deny("tap", "sub", "gb.>", ">", bus.SubjectKeyAdd, bus.SubjectKeyAcquire, bus.SubjectKeySync, "gb.ticks.>",
			"_INBOX.>", "_INBOX_tap.>", "_INBOX_edge.>", "$KV.gb_settings.>", "$SRV.PING", bus.SubjectDeliverLogdRequests, "$JS.API.>"),
		deny("tap", "pub", bus.SubjectEventRequests, bus.SubjectKeyAcquire, bus.SubjectKeyAdd, "$SRV.PING", "$JS.API.INFO",
			"$JS.API.STREAM.INFO.GB_EVENTS", "$JS.API.DIRECT.GET.KV_gb_settings.$KV.gb_settings.current", "$KV.gb_settings.current"),
	} {
		cases = append(cases, tbl...)
	}
	for _, c := range cases {
		verb := "may not"
		if c.allowed {
			verb = "may"
		}
		t.Run(c.user+" "+verb+" "+c.op+" "+c.subject, func(t *testing.T) {
			err := try(t, s, c)
			if c.allowed && err != nil {
				t.Errorf("%s %s %q: refused: %v", c.user, c.op, c.subject, err)
			}
			if !c.allowed && err == nil {
				t.Errorf("%s %s %q: allowed, want a permissions violation", c.user, c.op, c.subject)
			}
		})
	}
}

// try does c on a fresh connection and returns the permissions violation
// the server answered, if any. The server answers a PUB or SUB before the
// PONG of the following flush, so the flush settles it.
func try(t *testing.T, s *stack.Stack, c permCase) error {
	nc := s.NATSAs(t, c.user, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	var err error
	switch c.op {
	case "pub":
		err = nc.PublishRequest(c.subject, nc.NewInbox(), nil)
	case "sub":
		_, err = nc.SubscribeSync(c.subject)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.LastError(); err != nil && strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
		return err
	}
	return nil
}

// The JetStream work each service does at start and at run time succeeds
// under its own user, whichever service starts first; what another service
// owns survives every user's attempt to delete or purge it.
func TestNATSUsersDoTheirJetStreamWorkAndNoMore(t *testing.T) {
	s := natsOnly(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jsAs := func(user string) (*nats.Conn, jetstream.JetStream) {
		nc := s.NATSAs(t, user, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return nc, js
	}
	// edge first: it creates what others own; then every service, owners
	// updating theirs.
	for _, svc := range append([]string{bus.ServiceEdge}, bus.AllServices...) {
		_, js := jsAs(svc)
		if err := natsx.ProvisionFor(ctx, js, svc, 1); err != nil {
			t.Fatalf("%s provisions what it uses: %v", svc, err)
		}
	}

	tapConn := s.NATSAs(t, "tap")
	seen := make(chan *nats.Msg, 4)
	if _, err := tapConn.ChanSubscribe("gb.events.>", seen); err != nil {
		t.Fatal(err)
	}
	if err := tapConn.Flush(); err != nil {
		t.Fatal(err)
	}

	_, edge := jsAs("edge")
	if _, err := edge.Publish(ctx, bus.SubjectEventRequests, []byte(`{"v":1,"events":[]}`)); err != nil {
		t.Fatalf("edge stores a request batch: %v", err)
	}
	select {
	case m := <-seen:
		if m.Subject != bus.SubjectEventRequests {
			t.Fatalf("tap saw %s", m.Subject)
		}
	case <-ctx.Done():
		t.Fatal("tap never saw edge's request batch")
	}

	_, admind := jsAs("admind")
	settings, err := admind.KeyValue(ctx, bus.BucketSettings)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := settings.Put(ctx, bus.KeySettings, []byte(`{"LOG_LEVEL":"info"}`)); err != nil {
		t.Fatalf("admind writes the settings: %v", err)
	}
	tokens, err := admind.KeyValue(ctx, bus.BucketClientTokens)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"edge", "keyd", "logd", "schedulerd"} {
		_, js := jsAs(svc)
		if _, ok, err := natsx.FetchSettings(ctx, js); err != nil || !ok {
			t.Errorf("%s reads the settings: ok=%v err=%v", svc, ok, err)
		}
	}
	edgeTokens, err := edge.KeyValue(ctx, bus.BucketClientTokens)
	if err != nil {
		t.Fatal(err)
	}
	w, err := edgeTokens.WatchAll(ctx)
	if err != nil {
		t.Fatalf("edge watches the client tokens: %v", err)
	}
	if _, err := tokens.Put(ctx, "t1", []byte(`{"v":1,"id":"t1"}`)); err != nil {
		t.Fatalf("admind writes a client token: %v", err)
	}
	for got := false; !got; {
		select {
		case e := <-w.Updates():
			got = e != nil && e.Key() == "t1"
		case <-ctx.Done():
			t.Fatal("edge's watch never saw admind's token")
		}
	}
	if err := w.Stop(); err != nil {
		t.Errorf("edge stops its watch: %v", err)
	}

	_, logd := jsAs("logd")
	if _, err := logd.CreateOrUpdatePushConsumer(ctx, bus.StreamEvents, jetstream.ConsumerConfig{
		Durable: "logd-request", DeliverSubject: bus.SubjectDeliverLogdRequests, DeliverGroup: "logd-request",
		FilterSubject: bus.SubjectEventRequests, AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatalf("logd creates its durable consumer: %v", err)
	}
	_, keyd := jsAs("keyd")
	if _, err := keyd.CreateOrUpdatePushConsumer(ctx, bus.StreamTicks, jetstream.ConsumerConfig{
		Durable: "keyd_recover", DeliverSubject: bus.SubjectDeliverKeydRecover, DeliverGroup: "keyd_recover",
		FilterSubject: bus.SubjectTickRecover, AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatalf("keyd creates its durable consumer: %v", err)
	}
	_, sched := jsAs("schedulerd")
	if _, err := sched.Publish(ctx, bus.SubjectTickRecover, []byte(`{"v":1}`), jetstream.WithMsgID("recover:slot")); err != nil {
		t.Fatalf("schedulerd stores a tick: %v", err)
	}

	// Every user tries to wipe what it does not own; nothing changes.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 300*time.Millisecond) }
	for _, user := range []string{"edge", "keyd", "logd", "admind", "schedulerd", "tap"} {
		_, js := jsAs(user)
		for _, stream := range []string{bus.StreamEvents, bus.StreamTicks, bus.StreamDeadLetter, "KV_" + bus.BucketSettings, "KV_" + bus.BucketClientTokens} {
			c, cancel := short()
			if err := js.DeleteStream(c, stream); err == nil {
				t.Errorf("%s deleted %s", user, stream)
			}
			cancel()
			c, cancel = short()
			if st, err := js.Stream(c, stream); err == nil {
				if err := st.Purge(c); err == nil {
					t.Errorf("%s purged %s", user, stream)
				}
			}
			cancel()
		}
		c, cancel := short()
		if err := js.DeleteKeyValue(c, bus.BucketSettings); err == nil {
			t.Errorf("%s deleted the settings bucket", user)
		}
		cancel()
		if user != "admind" {
			c, cancel := short()
			if kv, err := js.KeyValue(c, bus.BucketSettings); err == nil {
				if _, err := kv.Put(c, bus.KeySettings, []byte(`{}`)); err == nil {
					t.Errorf("%s wrote the settings", user)
				}
				if err := kv.Purge(c, bus.KeySettings); err == nil {
					t.Errorf("%s purged the settings", user)
				}
			}
			cancel()
		}
	}
	for stream, min := range map[string]uint64{bus.StreamEvents: 1, bus.StreamTicks: 1, "KV_" + bus.BucketSettings: 1, "KV_" + bus.BucketClientTokens: 1} {
		_, owner := jsAs(natsx.Owners[stream])
		st, err := owner.Stream(ctx, stream)
		if err != nil {
			t.Errorf("%s is gone: %v", stream, err)
			continue
		}
		if info, err := st.Info(ctx); err == nil && info.State.Msgs < min {
			t.Errorf("%s lost its messages: %d", stream, info.State.Msgs)
		}
	}
}
