package main

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gemini-balance-go/keyd/pool"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
)

// keydPeer answers keyd's acquire and report subjects on nc from keyd's own
// key pool (keyd/pool: selection, cooldowns, disabling), in memory: no
// store, no replicas, no admin or file endpoints. It stands in for keyd in
// the "edge only" column, so that column is edge's own cost. The returned
// func unsubscribes.
func keydPeer(nc *nats.Conn, st config.Settings) (func(), error) {
	p := pool.New(pool.PolicyFrom(st), time.Now)
	now := time.Now()
	for _, secret := range st.APIKeys {
		p.Load(pool.NewKey(secret, bus.KindGemini, now))
	}
	acquire, err := nc.Subscribe(bus.SubjectKeyAcquire, func(m *nats.Msg) {
		var req bus.AcquireRequest
		rep := bus.AcquireReply{Error: "bad acquire request"}
		if json.Unmarshal(m.Data, &req) == nil {
			rep = p.Acquire(req)
		}
		data, _ := json.Marshal(rep)
		_ = m.Respond(data)
	})
	if err != nil {
		return nil, err
	}
	report, err := nc.Subscribe(bus.SubjectKeyReport, func(m *nats.Msg) {
		var r bus.Report
		if json.Unmarshal(m.Data, &r) == nil {
			p.Report(r, false)
		}
	})
	if err != nil {
		_ = acquire.Unsubscribe()
		return nil, err
	}
	return func() { _ = acquire.Unsubscribe(); _ = report.Unsubscribe() }, nil
}
