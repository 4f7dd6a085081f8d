// Package testenv is what logd's tests share on top of testkit (which starts
// the real parts: an embedded NATS server with the bus provisioned, an
// embedded FerretDB on SQLite or PostgreSQL): publishing events the way edge
// does.
package testenv

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/testkit/natstest"
	"github.com/gemini-balance-go/testkit/storetest"
	"github.com/gemini-balance-go/testkit/wait"
)

// NATS is a running server with the bus provisioned and a client
// connection (URL, NC, JS; Conn opens another).
type NATS struct{ *natstest.Bus }

// StartNATS starts an embedded JetStream server and provisions the streams.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	return &NATS{natstest.StartBus(t)}
}

// Mongo connects to uri and returns a fresh database.
func Mongo(t testing.TB, uri, db string) *mongo.Database {
	t.Helper()
	return storetest.Database(t, uri, db)
}

// Publish puts a payload (bytes as they are, anything else as JSON) on subject with a message id (JetStream de-duplicates by it).
func (n *NATS) Publish(t testing.TB, subject, msgID string, ev any) {
	t.Helper()
	data, ok := ev.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(ev); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.JS.Publish(ctx, subject, data, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatal(err)
	}
}

// PublishEncoded publishes a payload with its bus.HeaderEncoding header
// (none when encoding is empty).
func (n *NATS) PublishEncoded(t testing.TB, subject, msgID, encoding string, payload []byte) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = payload
	if encoding != "" {
		m.Header.Set(bus.HeaderEncoding, encoding)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.JS.PublishMsg(ctx, m, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatal(err)
	}
}

// PublishRequests publishes events the way edge does: packed into
// bus.RequestBatch messages of at most bus.MaxBatchEvents events, each with
// a message id of its own, S2-compressed from bus.CompressBatchFrom bytes,
// asynchronously, then waits for the acks.
func (n *NATS) PublishRequests(t testing.TB, evs []bus.RequestEvent) {
	t.Helper()
	n.PublishRequestsPer(t, evs, bus.MaxBatchEvents)
}

// PublishRequestsPer publishes events packed per to a message.
func (n *NATS) PublishRequestsPer(t testing.TB, evs []bus.RequestEvent, per int) {
	t.Helper()
	publishBatches(t, n, bus.SubjectEventRequests, len(evs), per, func(from, to int) any {
		return bus.RequestBatch{V: bus.Version, Events: evs[from:to]}
	})
}

// PublishErrors publishes error events packed into bus.ErrorBatch messages.
func (n *NATS) PublishErrors(t testing.TB, evs []bus.ErrorEvent) {
	t.Helper()
	publishBatches(t, n, bus.SubjectEventErrors, len(evs), bus.MaxBatchEvents, func(from, to int) any {
		return bus.ErrorBatch{V: bus.Version, Events: evs[from:to]}
	})
}

func publishBatches(t testing.TB, n *NATS, subject string, total, per int, batch func(from, to int) any) {
	t.Helper()
	for from, msgs := 0, 0; from < total; from += per {
		to := min(from+per, total)
		data, err := json.Marshal(batch(from, to))
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(subject)
		m.Data = data
		if len(data) >= bus.CompressBatchFrom {
			m.Data = bus.EncodeBatchS2(nil, data)
			m.Header.Set(bus.HeaderEncoding, bus.EncodingS2)
		}
		if _, err := n.JS.PublishMsgAsync(m, jetstream.WithMsgID(nuid.Next())); err != nil {
			t.Fatal(err)
		}
		if msgs++; msgs%64 == 0 || to == total {
			select {
			case <-n.JS.PublishAsyncComplete():
			case <-time.After(60 * time.Second):
				t.Fatal("publish did not complete")
			}
		}
	}
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	wait.Within(t, within, what, cond)
}

// CountRequestLogs counts the request logs stored in db (those with id,
// when set), buckets and earlier rows alike; -1 when the store does not
// answer.
func CountRequestLogs(db *mongo.Database, id string) int64 {
	rows, err := logstore.ReadRequestLogs(context.Background(), db)
	if err != nil {
		return -1
	}
	var n int64
	for _, r := range rows {
		if id == "" || r.ID == id {
			n++
		}
	}
	return n
}
