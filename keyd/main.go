// Command keyd is the key pool service: config and wiring only; the service
// is keyd/service.
package main

import (
	"context"

	"github.com/gemini-balance-go/keyd/service"
	"github.com/gemini-balance-go/shared/boot"
	"github.com/gemini-balance-go/shared/bus"
)

func main() {
	boot.Main(bus.ServiceKeyd, func(ctx context.Context, p *boot.Process) (boot.Service, error) {
		db, err := p.ConnectMongo(ctx)
		if err != nil {
			return nil, err
		}
		return service.New(ctx, service.Deps{
			NC: p.NC, JS: p.JS, DB: db, Settings: p.Settings, Seed: &p.Env, Infra: p.Infra, Log: p.Log, Registry: p.Registry,
		})
	})
}
