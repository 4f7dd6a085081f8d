// Command logd stores request and error events from the bus in MongoDB and
// answers log and statistics queries over NATS (micro service "logd").
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

	"github.com/gemini-balance-go/logd/service"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/mongox"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/obs"
)

func main() {
	log := obs.NewLogger(os.Stderr, bus.ServiceLogd)
	if err := run(log); err != nil {
		log.Error("logd stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	infra, err := config.LoadInfra()
	if err != nil {
		return err
	}
	settings, err := config.LoadSettings()
	if err != nil {
		return err
	}
	if infra.MongoURI == "" {
		return errors.New("config: MONGO_URI is required")
	}
	obs.SetLevel(settings.LogLevel)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	nc, err := natsx.Connect(natsx.Options{
		URL: infra.NATSURL, Name: bus.ServiceLogd + "-" + infra.Replica,
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
	live := natsx.NewSettings(settings)
	live.OnChange(func(s config.Settings) { obs.SetLevel(s.LogLevel) })
	if err := live.Watch(ctx, js, log); err != nil {
		return err
	}
	mc, err := mongox.Connect(ctx, infra.MongoURI, bus.ServiceLogd)
	if err != nil {
		return err
	}
	defer func() { _ = mc.Disconnect(context.Background()) }()

	reg := obs.NewRegistry()
	health := &obs.Health{Service: bus.ServiceLogd, Checks: []obs.Check{
		{Name: "nats", Check: func(context.Context) error {
			if !nc.IsConnected() {
				return errors.New("not connected")
			}
			return nil
		}},
		{Name: "mongo", Check: func(ctx context.Context) error { return mongox.Ping(ctx, mc) }},
	}}
	mux := http.NewServeMux()
	obs.Mount(mux, health, reg)
	srv := &http.Server{Addr: ":" + strconv.Itoa(infra.Port), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
			stop()
		}
	}()

	err = service.Run(ctx, service.Deps{
		NC: nc, JS: js, DB: mc.Database(infra.MongoDB), Settings: live, Infra: infra, Log: log, Registry: reg,
	})

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	_ = nc.Drain()
	return err
}
