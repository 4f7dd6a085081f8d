// Command edge is the public API gateway: Gemini-native and OpenAI routes
// with key rotation through keyd and events to JetStream.
package main

import (
	"context"

	"github.com/gemini-balance-go/edge/gateway"
	"github.com/gemini-balance-go/shared/boot"
	"github.com/gemini-balance-go/shared/bus"
)

// The binary serves the service's own handler (boot.HTTPService).
var _ boot.HTTPService = (*gateway.Gateway)(nil)

func main() {
	boot.Main(bus.ServiceEdge, func(_ context.Context, p *boot.Process) (boot.Service, error) {
		p.Drain = gateway.DrainGrace
		return gateway.New(gateway.Deps{
			NC: p.NC, JS: p.JS, Settings: p.Settings, Infra: p.Infra, Log: p.Log, Registry: p.Registry,
		})
	})
}
