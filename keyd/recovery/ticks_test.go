package recovery_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gemini-balance-go/keyd/recovery"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/testkit/natstest"
)

// keyd starts even when its tick consumer cannot be made yet (here: the
// tick stream does not exist; in a cluster starting under load, JetStream's
// API timing out), and handles ticks once it can.
func TestTicksAreConsumedOnceTheStreamAppearsAfterStart(t *testing.T) {
	s := natstest.Start(t)
	nc, js := natstest.Connect(t, s.URL, nats.Name("keyd-test"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan bus.Tick, 1)
	handle := func(_ context.Context, tk bus.Tick) error {
		select {
		case got <- tk:
		default:
		}
		return nil
	}
	if err := recovery.ConsumeTicks(ctx, nc, slog.New(slog.NewTextHandler(io.Discard, nil)), handle); err != nil {
		t.Fatalf("keyd would not start: %v", err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	if err := natsx.Provision(pctx, js); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(bus.Tick{Name: bus.TickRecover, Slot: "2026-12-05T12:50"})
	// The consumer takes the last tick on the subject, so one published
	// before it exists is delivered too.
	if _, err := js.Publish(pctx, bus.SubjectTickRecover, data); err != nil {
		t.Fatal(err)
	}
	select {
	case tk := <-got:
		if tk.Slot != "2026-12-05T12:50" {
			t.Fatalf("tick %+v", tk)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no tick handled after the stream appeared")
	}
}
