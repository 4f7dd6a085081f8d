// Command schedulerd emits the recovery and retention ticks on GB_TICKS.
// Run several replicas freely: JetStream de-duplication keeps one tick per slot.
package main

import (
	"context"

	"github.com/gemini-balance-go/schedulerd/ticks"
	"github.com/gemini-balance-go/shared/boot"
	"github.com/gemini-balance-go/shared/bus"
)

func main() {
	boot.Main(bus.ServiceSchedulerd, func(_ context.Context, p *boot.Process) (boot.Service, error) {
		return ticks.New(ticks.Deps{
			NC: p.NC, Settings: p.Settings, Log: p.Log, Registry: p.Registry,
			Interval: p.Infra.TickInterval, Replica: p.Infra.Replica,
		})
	})
}
