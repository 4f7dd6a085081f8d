package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/shared/bus"
)

// kickStalled re-issues the short pause for a consumer that has a backlog
// but delivers nothing after start-up (see the resume comment in Run).
func (in *Ingester) kickStalled(ctx context.Context) {
	for attempt := 0; attempt < 5; attempt++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		stalled := false
		for _, name := range []string{bus.ConsumerLogdRequests, bus.ConsumerLogdErrors} {
			ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
			c, err := in.deps.JS.PushConsumer(ictx, bus.StreamEvents, name)
			var info *jetstream.ConsumerInfo
			if err == nil {
				info, err = c.Info(ictx)
			}
			if err == nil && !info.Paused && info.NumPending > 0 && info.NumAckPending == 0 {
				stalled = true
				in.log.Info("consumer has a backlog but delivers nothing; resuming again", "consumer", name, "pending", info.NumPending)
				_, _ = in.deps.JS.PauseConsumer(ictx, bus.StreamEvents, name, time.Now().Add(500*time.Millisecond))
			}
			cancel()
		}
		if !stalled && attempt > 0 {
			return
		}
	}
}

// retryStart runs f until it succeeds or ctx ends: a NATS cluster that lost a
// node may take seconds to elect the stream's new leader, and logd starting
// meanwhile must wait for it rather than exit.
func (in *Ingester) retryStart(ctx context.Context, what string, f func() error) error {
	backoff := 250 * time.Millisecond
	for {
		err := f()
		if err == nil || ctx.Err() != nil {
			return err
		}
		in.log.Warn(what+" failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// subscribe starts a Watermill subscriber with count queue subscriptions
// bound to the topic's durable consumer.
func (in *Ingester) subscribe(ctx context.Context, conn *nats.Conn, topic string, count int) (<-chan *message.Message, func(), error) {
	name := consumerFor(topic)
	sub, err := wmnats.NewSubscriberWithNatsConn(conn, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:      rawUnmarshaler{},
		SubscribersCount: count,
		// Watermill drops a late ack silently once this passes, and the
		// server then redelivers a message that is already stored. Wait far
		// longer than the server's AckWait: a redelivery while the first
		// delivery is still being stored is settled with it (see parse).
		AckWaitTimeout: max(10*in.opt.AckWait, time.Hour),
		// A nacked message (a stop, a failed dead-letter publish) comes back
		// after a pause rather than at once into the same hands.
		NakDelay:     wmnats.NewStaticDelay(time.Second),
		CloseTimeout: 5 * time.Second,
		SubjectCalculator: func(_, topic string) *wmnats.SubjectDetail {
			return &wmnats.SubjectDetail{Primary: topic, QueueGroup: name}
		},
		JetStream: wmnats.JetStreamConfig{
			AckAsync:          true,
			DurableCalculator: func(string, string) string { return name },
			SubscribeOptions:  []nats.SubOpt{nats.Bind(bus.StreamEvents, name), nats.ManualAck()},
		},
	}, watermill.NewSlogLoggerWithLevelMapping(in.log, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug, slog.LevelError: slog.LevelDebug,
	}))
	if err != nil {
		return nil, nil, fmt.Errorf("watermill subscriber for %s: %w", topic, err)
	}
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		_ = sub.Close()
		return nil, nil, fmt.Errorf("subscribe %s: %w", topic, err)
	}
	return ch, func() {
		if err := sub.Close(); err != nil {
			in.log.Debug("close watermill subscriber", "topic", topic, "err", err)
		}
	}, nil
}

func consumerFor(topic string) string {
	if topic == bus.SubjectEventErrors {
		return bus.ConsumerLogdErrors
	}
	return bus.ConsumerLogdRequests
}

func (in *Ingester) ensureConsumers(ctx context.Context) error {
	for _, c := range []struct {
		name, subject, deliver string
		inFlight               int
	}{
		{bus.ConsumerLogdRequests, bus.SubjectEventRequests, bus.SubjectDeliverLogdRequests, in.opt.RequestMessages},
		{bus.ConsumerLogdErrors, bus.SubjectEventErrors, bus.SubjectDeliverLogdErrors, in.opt.ErrorMessages},
	} {
		_, err := in.deps.JS.CreateOrUpdatePushConsumer(ctx, bus.StreamEvents, jetstream.ConsumerConfig{
			Durable:        c.name,
			Description:    "logd: store " + c.subject,
			DeliverSubject: c.deliver,
			DeliverGroup:   c.name,
			FilterSubject:  c.subject,
			DeliverPolicy:  jetstream.DeliverAllPolicy,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        in.opt.AckWait,
			MaxDeliver:     -1,         // never give up: a stored event must not be dropped
			MaxAckPending:  c.inFlight, // one in flight per subscription
		})
		if err != nil {
			return fmt.Errorf("create consumer %s: %w", c.name, err)
		}
	}
	return nil
}

// pollBacklog keeps the backlog gauge current from the consumers' info:
// events not yet delivered plus delivered but unacknowledged.
func (in *Ingester) pollBacklog(ctx context.Context) {
	t := time.NewTicker(in.opt.BacklogEvery)
	defer t.Stop()
	stalls := map[string]*stall{}
	for {
		for _, name := range []string{bus.ConsumerLogdRequests, bus.ConsumerLogdErrors} {
			info, err := consumerInfo(ctx, in.deps.JS, name)
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					in.log.Debug("consumer info", "consumer", name, "err", err)
				}
				continue
			}
			in.m.backlog.WithLabelValues(name).Set(float64(info.NumPending + uint64(info.NumAckPending)))
			if stalls[name] == nil {
				stalls[name] = &stall{}
			}
			in.mu.Lock()
			held := len(in.msgs)
			in.mu.Unlock()
			if stalls[name].lost(info, held) {
				in.resetLost(ctx, name, info)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stall watches one consumer for deliveries lost on the way: a NATS node
// that dies takes the messages (or acks) it was relaying with it, and the
// consumer counts them as pending an ack until AckWait (minutes). With
// MaxAckPending reached, nothing else is delivered meanwhile.
type stall struct {
	delivered, floor uint64
	polls            int
}

// lost reports deliveries pending an ack that logd does not hold, with no
// progress, on three polls in a row.
func (s *stall) lost(info *jetstream.ConsumerInfo, held int) bool {
	same := info.Delivered.Stream == s.delivered && info.AckFloor.Stream == s.floor
	s.delivered, s.floor = info.Delivered.Stream, info.AckFloor.Stream
	if info.NumAckPending == 0 || held > 0 || !same {
		s.polls = 0
		return false
	}
	s.polls++
	if s.polls < 3 {
		return false
	}
	s.polls = 0
	return true
}

// resetLost has the server deliver again from the ack floor at once rather
// than after AckWait. What was stored already is recognised (done) and
// acknowledged; the rows are written by _id, so none is stored twice.
func (in *Ingester) resetLost(ctx context.Context, name string, info *jetstream.ConsumerInfo) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := in.deps.JS.ResetConsumer(rctx, bus.StreamEvents, name); err != nil {
		in.log.Warn("deliveries pending an ack that logd does not hold; reset failed, they come back after AckWait", "consumer", name, "ack_pending", info.NumAckPending, "err", err)
		return
	}
	in.log.Warn("deliveries pending an ack that logd does not hold (lost with a NATS node?); consumer reset to its ack floor", "consumer", name, "ack_pending", info.NumAckPending, "ack_floor", info.AckFloor.Stream)
}

func consumerInfo(ctx context.Context, js jetstream.JetStream, consumer string) (*jetstream.ConsumerInfo, error) {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := js.PushConsumer(ictx, bus.StreamEvents, consumer)
	if err != nil {
		return nil, err
	}
	return c.Info(ictx)
}

// Backlog returns the events a consumer has yet to finish.
func Backlog(ctx context.Context, js jetstream.JetStream, consumer string) (uint64, error) {
	info, err := consumerInfo(ctx, js, consumer)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

const (
	metaSubject  = "nats_subject"
	metaSeq      = "stream_seq"
	metaEncoding = "encoding" // the message's bus.HeaderEncoding
)

// rawUnmarshaler never fails: the payload is kept as is and parsed by the
// batcher, which can dead-letter it. (Watermill's own unmarshalers drop a
// message they cannot read without an ack, which would redeliver it forever.)
type rawUnmarshaler struct{}

func (rawUnmarshaler) Unmarshal(m *nats.Msg) (*message.Message, error) {
	id := m.Header.Get(nats.MsgIdHdr)
	if id == "" {
		id = m.Header.Get(wmnats.WatermillUUIDHdr)
	}
	if id == "" {
		id = watermill.NewULID()
	}
	msg := message.NewMessage(id, m.Data)
	msg.Metadata.Set(metaSubject, m.Subject)
	if enc := m.Header.Get(bus.HeaderEncoding); enc != "" {
		msg.Metadata.Set(metaEncoding, enc)
	}
	if md, err := m.Metadata(); err == nil {
		msg.Metadata.Set(metaSeq, strconv.FormatUint(md.Sequence.Stream, 10))
	}
	return msg, nil
}
