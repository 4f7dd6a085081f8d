// Command admind owns the settings, the admin API and service health.
package main

import (
	"context"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/gemini-balance-go/admind/server"
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
	if err := run(ctx); err != nil {
		obs.NewLogger(os.Stderr, bus.ServiceAdmind).Error("admind stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	p, err := boot.Start(ctx, bus.ServiceAdmind)
	if err != nil {
		return err
	}
	defer p.Close()
	db, err := p.ConnectMongo(ctx)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Deps{
		NC: p.NC, DB: db, Settings: p.Settings, Seed: &p.Env, Log: p.Log,
		Addr: ":" + strconv.Itoa(p.Infra.Port), Replica: p.Infra.Replica,
		EncryptionKey: p.Infra.EncryptionKey, TrustedProxies: p.Infra.TrustedProxies,
		Health: &obs.Health{Service: bus.ServiceAdmind, Checks: p.Checks()},
	})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
