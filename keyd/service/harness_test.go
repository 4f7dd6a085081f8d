package service

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/mongox"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/testkit/natstest"
	"github.com/gemini-balance-go/testkit/storetest"
	"github.com/gemini-balance-go/testkit/wait"
)

// stack is an embedded NATS server and FerretDB shared by the replicas of a test.
type stack struct {
	t    testing.TB
	url  string
	user string // NATS user of the replicas; empty: no auth
	nc   *nats.Conn
	js   jetstream.JetStream
	db   *mongo.Database
}

func newStack(t testing.TB) *stack {
	t.Helper()
	return newStackWith(t, natstest.StartBus(t), "")
}

// newStackWithDeploymentAuth runs NATS with the users and permissions of
// deployments/nats/nats.conf; replicas connect as its keyd user and the
// test itself as an extra unrestricted user.
func newStackWithDeploymentAuth(t *testing.T) *stack {
	t.Helper()
	for _, svc := range []string{"EDGE", "KEYD", "LOGD", "ADMIND", "SCHEDULERD", "TAP"} {
		t.Setenv(svc+"_NATS_PASSWORD", strings.ToLower(svc)+"-pw")
	}
	conf, err := server.ProcessConfigFile("../../deployments/nats/nats.conf")
	if err != nil {
		t.Fatalf("read deployment NATS config: %v", err)
	}
	ns := natstest.StartConfigured(t, func(o *server.Options) {
		o.Users = append(conf.Users, &server.User{Username: "test", Password: "test-pw"})
	})
	return newStackWith(t, natstest.Provision(t, ns, nats.UserInfo("test", "test-pw")), "keyd")
}

func newStackWith(t testing.TB, b *natstest.Bus, user string) *stack {
	t.Helper()
	uri := storetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js := b.NC, b.JS
	cl, err := mongox.Connect(ctx, uri, "keyd-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return &stack{t: t, url: b.URL, user: user, nc: nc, js: js, db: cl.Database("gb_test")}
}

// replica is one running keyd.
type replica struct {
	svc      *Service
	settings *natsx.Settings
	stop     func() // cancels and waits for the final flush
}

type replicaOpts struct {
	name     string
	settings config.Settings
	encKey   string
}

func (st *stack) newDeps(o replicaOpts) Deps {
	t := st.t
	opts := []nats.Option{nats.Name("keyd-" + o.name)}
	if st.user != "" {
		opts = append(opts, nats.UserInfo(st.user, st.user+"-pw"), nats.CustomInboxPrefix(natsx.InboxPrefix(st.user)))
	}
	nc, err := nats.Connect(st.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if o.settings.MaxFailures == 0 {
		o.settings = config.Defaults()
	}
	return Deps{
		NC: nc, JS: js, DB: st.db, Settings: natsx.NewSettings(o.settings),
		Infra: config.Infra{Replica: o.name, EncryptionKey: o.encKey},
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// start runs a replica until the test ends or stop is called.
func (st *stack) start(o replicaOpts) *replica {
	t := st.t
	t.Helper()
	return st.startWith(o.name, st.newDeps(o))
}

// startWith runs a replica built from deps (see start).
func (st *stack) startWith(name string, deps Deps) *replica {
	t := st.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, deps)
	if err != nil {
		cancel()
		t.Fatalf("start keyd %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	r := &replica{svc: svc, settings: deps.Settings, stop: func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("keyd %s: %v", name, err)
		}
	}}
	t.Cleanup(r.stop)
	// Ready once this replica serves (another replica answering a ping does
	// not mean this one has subscribed to replica sync yet).
	eventually(t, "keyd answers", func() bool {
		_, err := st.nc.Request("$SRV.PING.keyd", nil, time.Second)
		return err == nil && r.svc.Ready(context.Background()) == nil
	})
	return r
}

// call sends a JSON request over NATS and decodes the JSON reply.
func call[Rep any](t testing.TB, nc *nats.Conn, subject string, req any) Rep {
	t.Helper()
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := nc.Request(subject, data, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	var rep Rep
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		t.Fatalf("reply of %s: %v: %s", subject, err, msg.Data)
	}
	return rep
}

// eventually waits for an asynchronous effect (wait.For); it asserts
// nothing about timing.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	wait.For(t, what, cond)
}
