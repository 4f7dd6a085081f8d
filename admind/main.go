// Command admind owns the settings, the admin API and service health.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/admind/server"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/mongox"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/obs"
)

func main() {
	log := obs.NewLogger(os.Stderr, bus.ServiceAdmind)
	if err := run(log); err != nil {
		log.Error("admind stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	infra, err := config.LoadInfra()
	if err != nil {
		return err
	}
	seed, err := config.LoadSettings()
	if err != nil {
		return err
	}
	if infra.MongoURI == "" {
		return errors.New("config: MONGO_URI: admind needs MongoDB")
	}
	obs.SetLevel(seed.LogLevel)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	nc, err := natsx.Connect(natsx.Options{
		URL: infra.NATSURL, Name: bus.ServiceAdmind + "-" + infra.Replica,
		User: infra.NATSUser, Password: infra.NATSPassword, Token: infra.NATSToken, Creds: infra.NATSCreds,
		Logger: log,
	})
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := natsx.ProvisionWithRetry(ctx, js); err != nil {
		return err
	}
	mc, err := mongox.Connect(ctx, infra.MongoURI, bus.ServiceAdmind)
	if err != nil {
		return err
	}
	defer func() { _ = mc.Disconnect(context.Background()) }()

	live := natsx.NewSettings(seed)
	live.OnChange(func(s config.Settings) { obs.SetLevel(s.LogLevel) })
	if err := live.Watch(ctx, js, log); err != nil {
		return err
	}
	reg := obs.NewRegistry()
	health := &obs.Health{Service: bus.ServiceAdmind, Checks: []obs.Check{
		{Name: "nats", Check: func(context.Context) error {
			if !nc.IsConnected() {
				return errors.New("not connected")
			}
			return nil
		}},
		{Name: "mongo", Check: func(ctx context.Context) error { return mongox.Ping(ctx, mc) }},
	}}
	srv, err := server.New(server.Deps{
		NC: nc, DB: mc.Database(infra.MongoDB), Settings: live, Seed: &seed, Log: log,
		Addr: ":" + strconv.Itoa(infra.Port), Replica: infra.Replica,
		Health: health, Metrics: obs.MetricsHandler(reg),
	})
	if err != nil {
		return err
	}
	err = srv.Run(ctx)
	_ = nc.Drain()
	return err
}
