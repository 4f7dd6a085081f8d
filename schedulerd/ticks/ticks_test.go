package ticks_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/schedulerd/ticks"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/testkit/natstest"
	"github.com/gemini-balance-go/testkit/wait"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func setup(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	b := natstest.StartBus(t)
	return b.NC, b.JS
}

func countOn(t *testing.T, js jetstream.JetStream, subject string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), bus.StreamTicks)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func TestTwoReplicasPublishingTheSameSlotStoreOneTick(t *testing.T) {
	nc, js := setup(t)
	nc2, err := nats.Connect(nc.ConnectedUrl())
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	tick := bus.Tick{V: bus.Version, Name: bus.TickRecover, Slot: "2026-11-27T06:00", Time: time.Now()}
	var wg sync.WaitGroup
	for _, c := range []*nats.Conn{nc, nc2} {
		p, err := ticks.NewPublisher(c, quiet)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Publish(tick); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := countOn(t, js, bus.SubjectTickRecover); n != 1 {
		t.Fatalf("stored %d recover ticks for one slot, want 1", n)
	}
	st, _ := js.Stream(context.Background(), bus.StreamTicks)
	msg, err := st.GetLastMsgForSubject(context.Background(), bus.SubjectTickRecover)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get(jetstream.MsgIDHeader); got != "recover:2026-11-27T06:00" {
		t.Fatalf("Nats-Msg-Id = %q", got)
	}
}

func TestTwoSchedulersInOneSlotYieldOneTickOfEachKindThatAConsumerReceives(t *testing.T) {
	nc, js := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// A consumer, as keyd and logd would have, created before the ticks.
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamTicks, jetstream.ConsumerConfig{
		Durable: "test", FilterSubjects: []string{bus.SubjectTicksAll}, AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}

	fixed := time.Date(2026, 11, 27, 6, 30, 0, 0, time.UTC)
	settings := natsx.NewSettings(config.Defaults())
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(runCtx, ticks.Deps{NC: nc, Settings: settings, Log: quiet, Now: func() time.Time { return fixed }}); err != nil {
				t.Error(err)
			}
		}()
	}

	got := map[string]bus.Tick{}
	for len(got) < 2 {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("waiting for ticks (have %v): %v", got, err)
		}
		var tk bus.Tick
		if err := json.Unmarshal(msg.Data(), &tk); err != nil {
			t.Fatal(err)
		}
		_ = msg.Ack()
		got[tk.Name] = tk
	}
	// Either replica reports the slots over its micro endpoint.
	status := map[string]bus.TickStatus{}
	eventuallyStatus := func() bool {
		msg, err := nc.Request(bus.SubjectSchedulerStatus, nil, 2*time.Second)
		var st bus.SchedulerStatus
		if err != nil || json.Unmarshal(msg.Data, &st) != nil {
			return false
		}
		for _, tk := range st.Ticks {
			status[tk.Name] = tk
		}
		return status[bus.TickRetention].Last == "2026-11-27"
	}
	wait.For(t, "the status endpoint reports both ticks", eventuallyStatus)
	if status[bus.TickRecover].Last != "2026-11-27T06:00" || status[bus.TickRetention].Last != "2026-11-27" {
		t.Errorf("status endpoint = %+v", status)
	}
	// The next slots follow the schedule: CHECK_INTERVAL_HOURS after this one, and the next midnight.
	if got := status[bus.TickRecover].NextSlot; !status[bus.TickRecover].Enabled || got == "" || got <= "2026-11-27T06:00" {
		t.Errorf("recover next = %+v", status[bus.TickRecover])
	}
	if got := status[bus.TickRetention]; got.NextSlot != "2026-11-28" || got.Next.IsZero() {
		t.Errorf("retention next = %+v", got)
	}
	stop()
	wg.Wait()

	if got[bus.TickRecover].Slot != "2026-11-27T06:00" {
		t.Errorf("recover slot = %q", got[bus.TickRecover].Slot)
	}
	if got[bus.TickRetention].Slot != "2026-11-27" {
		t.Errorf("retention slot = %q", got[bus.TickRetention].Slot)
	}
	for _, subj := range []string{bus.SubjectTickRecover, bus.SubjectTickRetention} {
		if n := countOn(t, js, subj); n != 1 {
			t.Errorf("%s: %d ticks stored, want 1", subj, n)
		}
	}
}

func TestRecoveryTickIsOffWhenCheckIntervalIsZeroAndRetentionFollowsTimezone(t *testing.T) {
	nc, js := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := config.Defaults()
	s.CheckIntervalHours = 0
	s.Timezone = "Asia/Shanghai"
	// 20:00 UTC on the 26th is already the 27th in Shanghai.
	fixed := time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = run(runCtx, ticks.Deps{NC: nc, Settings: natsx.NewSettings(s), Log: quiet, Now: func() time.Time { return fixed }})
	}()
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamTicks, jetstream.ConsumerConfig{FilterSubjects: []string{bus.SubjectTicksAll}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	stop()
	<-done
	var tk bus.Tick
	_ = json.Unmarshal(msg.Data(), &tk)
	if tk.Name != bus.TickRetention || tk.Slot != "2026-11-27" {
		t.Fatalf("first tick = %+v, want retention for 2026-11-27", tk)
	}
	// Run has stopped, and it checks both schedules in the same pass, so a
	// recover tick would be stored by now if recovery were on.
	if n := countOn(t, js, bus.SubjectTickRecover); n != 0 {
		t.Fatalf("%d recover ticks with CHECK_INTERVAL_HOURS=0", n)
	}
}

func TestIntervalOverrideTicksEveryPeriod(t *testing.T) {
	nc, js := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamTicks, jetstream.ConsumerConfig{FilterSubjects: []string{bus.SubjectTickRecover}})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = run(ctx, ticks.Deps{NC: nc, Settings: natsx.NewSettings(config.Defaults()), Log: quiet, Interval: 200 * time.Millisecond})
	}()
	slots := map[string]bool{}
	for len(slots) < 3 {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var tk bus.Tick
		_ = json.Unmarshal(msg.Data(), &tk)
		if slots[tk.Slot] {
			t.Fatalf("slot %s delivered twice", tk.Slot)
		}
		slots[tk.Slot] = true
	}
}

// "Run now" stores an extra tick beside the scheduled one of the same slot:
// its manual slot gives it a Nats-Msg-Id JetStream does not drop, and the
// scheduled tick still fires.
func TestRunNowEmitsATickBesideTheScheduledSlot(t *testing.T) {
	nc, js := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fixed := time.Date(2026, 11, 27, 6, 30, 0, 0, time.UTC)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = run(ctx, ticks.Deps{NC: nc, Settings: natsx.NewSettings(config.Defaults()), Log: quiet, Now: func() time.Time { return fixed }})
	}()
	wait.For(t, "a scheduled recover tick", func() bool { return countOn(t, js, bus.SubjectTickRecover) > 0 })
	var rep bus.TickRunReply
	msg, err := nc.Request(bus.SubjectSchedulerRun, []byte(`{"name":"recover"}`), 5*time.Second)
	if err != nil || json.Unmarshal(msg.Data, &rep) != nil || rep.Error != "" {
		t.Fatalf("run: %v %+v", err, rep)
	}
	if rep.MsgID == "recover:2026-11-27T06:00" || rep.Subject != bus.SubjectTickRecover {
		t.Fatalf("run reply = %+v", rep)
	}
	if n := countOn(t, js, bus.SubjectTickRecover); n != 2 {
		t.Fatalf("%d recover ticks stored, want the scheduled one and the manual one", n)
	}
	var st bus.SchedulerStatus
	msg, err = nc.Request(bus.SubjectSchedulerStatus, nil, 5*time.Second)
	if err != nil || json.Unmarshal(msg.Data, &st) != nil {
		t.Fatal(err)
	}
	if st.Ticks[0].Name != bus.TickRecover || st.Ticks[0].Last != rep.Slot {
		t.Fatalf("status after run = %+v, want last %s", st.Ticks[0], rep.Slot)
	}
	msg, err = nc.Request(bus.SubjectSchedulerRun, []byte(`{"name":"bogus"}`), 5*time.Second)
	if err != nil || json.Unmarshal(msg.Data, &rep) != nil || rep.Error != "unknown tick" {
		t.Fatalf("bogus tick: %v %+v", err, rep)
	}
	cancel()
	<-done
}

// run builds a scheduler from d and runs it until ctx ends.
func run(ctx context.Context, d ticks.Deps) error {
	s, err := ticks.New(d)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
