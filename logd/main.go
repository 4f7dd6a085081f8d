// Command logd stores request and error events from the bus in MongoDB and
// answers log and statistics queries over NATS (micro service "logd").
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gemini-balance-go/logd/service"
	"github.com/gemini-balance-go/shared/boot"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/obs"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == boot.HealthcheckArg {
		os.Exit(boot.Healthcheck(os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, stop); err != nil {
		obs.NewLogger(os.Stderr, bus.ServiceLogd).Error("logd stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, stop context.CancelFunc) error {
	p, err := boot.Start(ctx, bus.ServiceLogd)
	if err != nil {
		return err
	}
	defer p.Close()
	db, err := p.ConnectMongo(ctx)
	if err != nil {
		return err
	}
	// Ready only once indexes exist, ingest runs and the endpoints answer.
	var ready atomic.Bool
	readyCheck := obs.Check{Name: "logd", Check: func(context.Context) error {
		if !ready.Load() {
			return errors.New("starting")
		}
		return nil
	}}
	go func() {
		if err := p.Serve(ctx, p.HealthMux(readyCheck), 10*time.Second); err != nil {
			p.Log.Error("health server", "err", err)
			stop()
		}
	}()
	return service.Run(ctx, service.Deps{
		NC: p.NC, JS: p.JS, DB: db, Settings: p.Settings, Infra: p.Infra, Log: p.Log, Registry: p.Registry,
		Ready: func() { ready.Store(true) },
	})
}
