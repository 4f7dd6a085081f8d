package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/gemini-balance-go/shared/bus"
)

// AckWait is how long one recover run may take before the tick is redelivered.
const AckWait = 5 * time.Minute

// ConsumeTicks handles recover ticks until ctx ends. It creates the durable
// consumer itself (so no replica deletes it when it stops) and binds a
// Watermill subscriber to it; handle's error naks the tick for redelivery.
//
// When that fails (JetStream's API timing out while a cluster elects its
// leaders under load, or the tick stream not provisioned yet), it keeps
// trying in the background, backing off to a minute, rather than failing
// keyd's start: keys are served meanwhile and only recovery waits. It
// returns an error only when ctx has ended.
func ConsumeTicks(ctx context.Context, nc *nats.Conn, log *slog.Logger, handle func(context.Context, bus.Tick) error) error {
	err := consumeTicks(ctx, nc, log, handle)
	if err == nil || ctx.Err() != nil {
		return err
	}
	log.Warn("recover ticks not subscribed yet; retrying in the background", "err", err)
	go func() {
		for wait := time.Second; ; wait = min(2*wait, time.Minute) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			err := consumeTicks(ctx, nc, log, handle)
			switch {
			case err == nil:
				log.Info("recover ticks subscribed")
				return
			case ctx.Err() != nil:
				return
			}
			log.Warn("recover ticks not subscribed yet; retrying in the background", "err", err, "next_in", min(2*wait, time.Minute))
		}
	}()
	return nil
}

// consumeTicks is one attempt of ConsumeTicks.
func consumeTicks(ctx context.Context, nc *nats.Conn, log *slog.Logger, handle func(context.Context, bus.Tick) error) error {
	js, err := nc.JetStream()
	if err != nil {
		return fmt.Errorf("recover ticks: jetstream: %w", err)
	}
	cfg := &nats.ConsumerConfig{
		Durable:        bus.ConsumerKeydRecover,
		DeliverSubject: bus.SubjectDeliverKeydRecover,
		DeliverGroup:   bus.ConsumerKeydRecover,
		FilterSubject:  bus.SubjectTickRecover,
		// A new consumer takes the latest tick (one that came just before
		// keyd) but does not replay a day of older ones.
		DeliverPolicy: nats.DeliverLastPerSubjectPolicy,
		AckPolicy:     nats.AckExplicitPolicy,
		AckWait:       AckWait,
		MaxDeliver:    3,
		MaxAckPending: 1,
	}
	// Replicas starting together race to create it; whoever loses finds it there.
	var cerr error
	for attempt := 0; attempt < 5; attempt++ {
		if _, cerr = js.AddConsumer(bus.StreamTicks, cfg); cerr == nil {
			break
		}
		if _, uerr := js.UpdateConsumer(bus.StreamTicks, cfg); uerr == nil {
			cerr = nil
			break
		} else {
			cerr = errors.Join(cerr, uerr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	if cerr != nil {
		// A consumer left by another version may differ in a field that
		// cannot be updated; binding to it still delivers the ticks.
		if _, err := js.ConsumerInfo(bus.StreamTicks, bus.ConsumerKeydRecover); err != nil {
			return fmt.Errorf("recover ticks: create consumer: %w", cerr)
		}
		log.Warn("recover tick consumer exists with another configuration; using it", "err", cerr)
	}
	sub, err := wmnats.NewSubscriberWithNatsConn(nc, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:      rawUnmarshaler{},
		QueueGroupPrefix: bus.ConsumerKeydRecover,
		AckWaitTimeout:   AckWait,
		SubjectCalculator: func(queue, _ string) *wmnats.SubjectDetail {
			return &wmnats.SubjectDetail{Primary: bus.SubjectTickRecover, QueueGroup: queue}
		},
		JetStream: wmnats.JetStreamConfig{
			SubscribeOptions: []nats.SubOpt{nats.Bind(bus.StreamTicks, bus.ConsumerKeydRecover), nats.ManualAck()},
			DurablePrefix:    bus.ConsumerKeydRecover,
		},
	}, watermill.NewSlogLogger(log))
	if err != nil {
		return fmt.Errorf("recover ticks: subscriber: %w", err)
	}
	// Not closed: Close would drain the shared connection. ctx ends the subscription.
	msgs, err := sub.Subscribe(ctx, bus.SubjectTickRecover)
	if err != nil {
		return fmt.Errorf("recover ticks: subscribe: %w", err)
	}
	go func() {
		for m := range msgs {
			var t bus.Tick
			if err := json.Unmarshal(m.Payload, &t); err != nil {
				log.Warn("bad recover tick dropped", "err", err)
				m.Ack()
				continue
			}
			if err := handle(m.Context(), t); err != nil {
				log.Warn("recover tick failed, will be redelivered", "slot", t.Slot, "err", err)
				m.Nack()
				continue
			}
			m.Ack()
		}
	}()
	return nil
}

// rawUnmarshaler reads ticks as schedulerd publishes them: plain JSON with a
// Nats-Msg-Id, not Watermill's envelope.
type rawUnmarshaler struct{}

func (rawUnmarshaler) Unmarshal(m *nats.Msg) (*message.Message, error) {
	id := m.Header.Get(nats.MsgIdHdr)
	if id == "" {
		id = nuid.Next()
	}
	msg := message.NewMessage(id, m.Data)
	for k := range m.Header {
		msg.Metadata.Set(k, m.Header.Get(k))
	}
	return msg, nil
}
