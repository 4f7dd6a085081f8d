// Command keyd is the key pool service: config and wiring only; the service
// is keyd/service.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/keyd/service"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/mongox"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/obs"
)

func main() {
	// service.Run tags its lines with svc=keyd itself, as it does in the all-in-one.
	base := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: obs.Level}))
	log := base.With("svc", bus.ServiceKeyd)
	if err := run(base, log); err != nil {
		log.Error("keyd stopped", "err", err)
		os.Exit(1)
	}
}

func run(base, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	infra, err := config.LoadInfra()
	if err != nil {
		return err
	}
	settings, err := config.LoadSettings()
	if err != nil {
		return err
	}
	obs.SetLevel(settings.LogLevel)
	if infra.MongoURI == "" {
		return errors.New("MONGO_URI is required for a standalone keyd")
	}

	nc, err := natsx.Connect(natsx.Options{URL: infra.NATSURL, Name: bus.ServiceKeyd + "-" + infra.Replica,
		User: infra.NATSUser, Password: infra.NATSPassword, Token: infra.NATSToken, Creds: infra.NATSCreds, Logger: log})
	if err != nil {
		return err
	}
	defer nc.Drain()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := natsx.ProvisionWithRetry(ctx, js); err != nil {
		return err
	}
	live := natsx.NewSettings(settings)
	if stored, ok, err := natsx.FetchSettings(ctx, js); err == nil && ok {
		live.Set(stored)
	}
	live.OnChange(func(s config.Settings) { obs.SetLevel(s.LogLevel) })
	if err := live.Watch(ctx, js, log); err != nil {
		return err
	}

	mcl, err := mongox.Connect(ctx, infra.MongoURI, bus.ServiceKeyd)
	if err != nil {
		return err
	}
	defer mcl.Disconnect(context.Background())

	reg := obs.NewRegistry()
	svc, err := service.New(ctx, service.Deps{
		NC: nc, JS: js, DB: mcl.Database(infra.MongoDB), Settings: live, Infra: infra, Log: base, Metrics: reg,
	})
	if err != nil {
		return err
	}
	health := &obs.Health{Service: bus.ServiceKeyd, Checks: []obs.Check{
		{Name: "nats", Check: func(context.Context) error {
			if !nc.IsConnected() {
				return errors.New("not connected")
			}
			return nil
		}},
		{Name: "mongo", Check: func(c context.Context) error { return mongox.Ping(c, mcl) }},
		{Name: "keyd", Check: svc.Ready},
	}}
	mux := http.NewServeMux()
	obs.Mount(mux, health, reg)
	srv := &http.Server{Addr: ":" + strconv.Itoa(infra.Port), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health server", "err", err)
			stop()
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	return svc.Serve(ctx)
}
