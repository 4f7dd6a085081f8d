package ingest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/gemini-balance-go/shared/bus"
)

// BenchmarkParseRequestBatch decodes one message of bus.MaxBatchEvents
// request events into logs, as logd does for every message under load.
func BenchmarkParseRequestBatch(b *testing.B) {
	evs := make([]bus.RequestEvent, bus.MaxBatchEvents)
	for i := range evs {
		evs[i] = bus.RequestEvent{V: bus.Version, ID: fmt.Sprintf("req-%06d", i), Time: time.Now(),
			Route: "gemini.generateContent", Model: "gemini-2.5-flash", KeyID: fmt.Sprintf("k%d", i%8),
			TokenID: "t1", Status: 200, Success: true, LatencyMS: 12, Usage: bus.Usage{Prompt: 2, Candidates: 3, Total: 5}}
	}
	payload, err := json.Marshal(bus.RequestBatch{V: bus.Version, Events: evs})
	if err != nil {
		b.Fatal(err)
	}
	in := New(Options{}, Deps{})
	b.ReportAllocs()
	for b.Loop() {
		u := &unit{m: message.NewMessage("m", payload)}
		if !in.parseValid(u, true, payload) || len(u.reqs) != len(evs) {
			b.Fatal("batch not parsed")
		}
	}
}
