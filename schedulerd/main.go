// Command schedulerd emits the recovery and retention ticks on GB_TICKS.
// Run several replicas freely: JetStream de-duplication keeps one tick per slot.
//
// TICK_INTERVAL (a Go duration such as "2s"), for tests and local
// development only, replaces both schedules with one fixed period.
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

	"github.com/gemini-balance-go/schedulerd/ticks"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/obs"
)

func main() {
	log := obs.NewLogger(os.Stderr, bus.ServiceSchedulerd)
	if err := run(log); err != nil {
		log.Error("schedulerd stopped", "err", err)
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
	var interval time.Duration
	if v := os.Getenv("TICK_INTERVAL"); v != "" {
		if interval, err = time.ParseDuration(v); err != nil || interval <= 0 {
			return fmt.Errorf("config: TICK_INTERVAL: want a positive duration like 2s, got %q", v)
		}
	}
	obs.SetLevel(settings.LogLevel)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	nc, err := natsx.Connect(natsx.Options{
		URL: infra.NATSURL, Name: bus.ServiceSchedulerd + "-" + infra.Replica,
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

	reg := obs.NewRegistry()
	health := &obs.Health{Service: bus.ServiceSchedulerd, Checks: []obs.Check{{Name: "nats", Check: func(context.Context) error {
		if !nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	}}}}
	mux := http.NewServeMux()
	obs.Mount(mux, health, reg)
	srv := &http.Server{Addr: ":" + strconv.Itoa(infra.Port), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
			stop()
		}
	}()

	err = ticks.Run(ctx, ticks.Deps{NC: nc, Settings: live, Log: log, Registry: reg, Interval: interval, Replica: infra.Replica})

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	_ = nc.Drain()
	return err
}
