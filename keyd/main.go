// Command keyd is the key pool service: config and wiring only; the service
// is keyd/service.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gemini-balance-go/keyd/service"
	"github.com/gemini-balance-go/shared/boot"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/obs"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == boot.HealthcheckArg {
		os.Exit(boot.Healthcheck(os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, stop); err != nil {
		obs.NewLogger(os.Stderr, bus.ServiceKeyd).Error("keyd stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, stop context.CancelFunc) error {
	p, err := boot.Start(ctx, bus.ServiceKeyd)
	if err != nil {
		return err
	}
	defer p.Close()
	db, err := p.ConnectMongo(ctx)
	if err != nil {
		return err
	}
	svc, err := service.New(ctx, service.Deps{
		NC: p.NC, JS: p.JS, DB: db, Settings: p.Settings, Seed: &p.Env, Infra: p.Infra, Log: p.Log, Metrics: p.Registry,
	})
	if err != nil {
		return err
	}
	go func() {
		if err := p.Serve(ctx, p.HealthMux(obs.Check{Name: "keyd", Check: svc.Ready}), 5*time.Second); err != nil {
			p.Log.Error("health server", "err", err)
			stop()
		}
	}()
	return svc.Serve(ctx)
}
