// Command logd stores request and error events from the bus in MongoDB and
// answers log and statistics queries over NATS (micro service "logd").
package main

import (
	"context"

	"github.com/gemini-balance-go/logd/service"
	"github.com/gemini-balance-go/shared/boot"
	"github.com/gemini-balance-go/shared/bus"
)

func main() {
	boot.Main(bus.ServiceLogd, func(ctx context.Context, p *boot.Process) (boot.Service, error) {
		db, err := p.ConnectMongo(ctx)
		if err != nil {
			return nil, err
		}
		return service.New(service.Deps{
			NC: p.NC, JS: p.JS, DB: db, Settings: p.Settings, Infra: p.Infra, Log: p.Log, Registry: p.Registry,
		})
	})
}
