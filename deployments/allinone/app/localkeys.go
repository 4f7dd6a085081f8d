package app

import (
	"context"
	"fmt"

	keyd "github.com/gemini-balance-go/keyd/service"
	"github.com/gemini-balance-go/shared/bus"
)

// localKeys gives the all-in-one's edge its keys from the keyd in the same
// process, by a call instead of a NATS request and reply: the round trip
// (encoding, the in-process NATS server, decoding, the client's timers) cost
// the all-in-one about a sixth of its CPU per request: 317 → 259 ms per 1,000
// requests, side by side in one run of go run ./deployments/bench. keyd
// answers exactly as its acquire and report endpoints do, and keeps serving
// them on the bus; keyd replicas elsewhere still get the reports it forwards.
type localKeys struct{ svc *keyd.Service }

// Acquire is keydclient.Client.Acquire without the bus: a reply without a
// key says why (NoKey); only a reply with neither a key nor a reason is an
// error.
func (k localKeys) Acquire(_ context.Context, req bus.AcquireRequest) (bus.AcquireReply, error) {
	rep := k.svc.Acquire(req)
	if rep.Failed() {
		return rep, fmt.Errorf("acquire %s key for %s: keyd: %s", req.Kind, req.Model, rep.Error)
	}
	return rep, nil
}

// Report applies an attempt's outcome before returning, which is at least
// as strong as the bus client's wait for keyd's ack on failures.
func (k localKeys) Report(r bus.Report) { k.svc.Report(r) }
