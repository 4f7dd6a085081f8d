// Command admind owns the settings, the admin API and service health.
package main

import (
	"context"

	"github.com/gemini-balance-go/admind/server"
	"github.com/gemini-balance-go/shared/boot"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/obs"
)

// The binary serves the service's own handler (boot.HTTPService).
var _ boot.HTTPService = (*server.Server)(nil)

func main() {
	boot.Main(bus.ServiceAdmind, func(ctx context.Context, p *boot.Process) (boot.Service, error) {
		db, err := p.ConnectMongo(ctx)
		if err != nil {
			return nil, err
		}
		return server.New(server.Deps{
			NC: p.NC, DB: db, Settings: p.Settings, Seed: &p.Env, Log: p.Log, Replica: p.Infra.Replica,
			EncryptionKey: p.Infra.EncryptionKey, TrustedProxies: p.Infra.TrustedProxies,
			Health: &obs.Health{Service: bus.ServiceAdmind, Checks: p.Checks()},
		})
	})
}
