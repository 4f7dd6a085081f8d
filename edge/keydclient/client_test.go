package keydclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gemini-balance-go/edge/internal/keydtest"
	"github.com/gemini-balance-go/edge/keydclient"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/outcome"
	"github.com/gemini-balance-go/testkit/natstest"
)

func start(t testing.TB) (*keydclient.Client, *keydtest.Keyd, *nats.Conn) {
	ns := natstest.Start(t)
	nc, err := nats.Connect("", nats.InProcessServer(ns.Server))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	kd, err := keydtest.Start(nc, map[string][]string{bus.KindGemini: {"AIzaSyKEY-one-00000000000000000000000001"}})
	if err != nil {
		t.Fatal(err)
	}
	return keydclient.New(nc, keydclient.Options{}), kd, nc
}

func TestAcquireAnswersWhyThereIsNoKeyAndFailsFastWithoutKeyd(t *testing.T) {
	c, kd, _ := start(t)
	ctx := context.Background()
	rep, err := c.Acquire(ctx, bus.AcquireRequest{Kind: bus.KindGemini, Model: "m"})
	if err != nil || rep.ID == "" || rep.Secret == "" {
		t.Fatalf("acquire: %v %+v", err, rep)
	}
	rep, err = c.Acquire(ctx, bus.AcquireRequest{Kind: bus.KindVertex, Model: "m"})
	if err != nil || rep.ID != "" || rep.NoKey != bus.NoKeyNone {
		t.Fatalf("empty vertex pool: %v %+v", err, rep)
	}
	kd.Stop()
	if _, err := c.Acquire(ctx, bus.AcquireRequest{Kind: bus.KindGemini, Model: "m"}); !errors.Is(err, keydclient.ErrUnavailable) {
		t.Fatalf("keyd gone: %v", err)
	}
}

func TestFileBindingsRoundTrip(t *testing.T) {
	c, _, _ := start(t)
	ctx := context.Background()
	if err := c.BindFile(ctx, bus.FileBinding{UploadID: "up1", KeyID: "k1", TokenID: "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.BindFile(ctx, bus.FileBinding{Name: "files/a", UploadID: "up1", KeyID: "k1", TokenID: "t1"}); err != nil {
		t.Fatal(err)
	}
	b, err := c.LookupFile(ctx, keyapi.FileQuery{Name: "files/a"})
	if err != nil || b.KeyID != "k1" {
		t.Fatalf("lookup: %v %+v", err, b)
	}
	if _, err := c.LookupFile(ctx, keyapi.FileQuery{Name: "files/none"}); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
	list, err := c.ListFiles(ctx, keyapi.FileQuery{TokenID: "t1"})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %+v", err, list)
	}
	if err := c.DeleteFile(ctx, keyapi.FileQuery{Name: "files/a"}); err != nil {
		t.Fatal(err)
	}
	if list, _ := c.ListFiles(ctx, keyapi.FileQuery{}); len(list) != 0 {
		t.Fatalf("after delete: %+v", list)
	}
}

// BenchmarkAcquireRoundTrip is one acquire over an in-process NATS
// connection to a minimal keyd peer: the floor of what each attempt adds.
func BenchmarkAcquireRoundTrip(b *testing.B) {
	c, _, _ := start(b)
	ctx := context.Background()
	req := bus.AcquireRequest{Kind: bus.KindGemini, Model: "gemini-2.5-flash"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Acquire(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// A report that disables or cools a key is applied before Report returns, so
// the client's next request cannot get the key that just failed; keyd
// handles reports on their own subscription, which an acquire can overtake.
func TestAFailureReportIsAppliedBeforeReportReturns(t *testing.T) {
	c, kd, peer := start(t)
	kd.Stop() // this test's peer plays keyd
	applied := make(chan string, 10)
	release := make(chan struct{})
	sub, err := peer.Subscribe(bus.SubjectKeyReport, func(m *nats.Msg) {
		var r bus.Report
		_ = json.Unmarshal(m.Data, &r)
		if r.Class == string(outcome.Success) {
			<-release // a slow keyd: a success must not wait for it
		}
		applied <- r.Class
		if m.Reply != "" {
			_ = m.Respond(nil)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := peer.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, class := range []outcome.Class{outcome.KeyInvalid, outcome.RateLimited, outcome.ServerError} {
		c.Report(bus.Report{ID: "k1", Class: string(class)})
		select {
		case got := <-applied:
			if got != string(class) {
				t.Fatalf("applied %s, want %s", got, class)
			}
		default:
			t.Fatalf("Report(%s) returned before keyd had the report", class)
		}
	}
	done := make(chan struct{})
	go func() { c.Report(bus.Report{ID: "k1", Class: string(outcome.Success)}); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a success report waited for keyd")
	}
	close(release)
}
