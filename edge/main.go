// Command edge is the public API gateway: Gemini-native and OpenAI routes
// with key rotation through keyd and events to JetStream.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/edge/gateway"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/obs"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	infra, err := config.LoadInfra()
	if err != nil {
		return err
	}
	env, err := config.LoadSettings()
	if err != nil {
		return err
	}
	log := obs.NewLogger(os.Stderr, bus.ServiceEdge)
	obs.SetLevel(env.LogLevel)
	nc, err := natsx.Connect(natsx.Options{URL: infra.NATSURL, Name: bus.ServiceEdge + "-" + infra.Replica,
		User: infra.NATSUser, Password: infra.NATSPassword, Token: infra.NATSToken, Creds: infra.NATSCreds, Logger: log})
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := natsx.ProvisionWithRetry(ctx, js); err != nil {
		return err
	}
	settings := natsx.NewSettings(env)
	settings.OnChange(func(s config.Settings) { obs.SetLevel(s.LogLevel) })
	if cur, ok, err := natsx.FetchSettings(ctx, js); err == nil && ok {
		settings.Set(cur)
	}
	if err := settings.Watch(ctx, js, log); err != nil {
		return err
	}
	reg := obs.NewRegistry()
	g, err := gateway.New(gateway.Deps{NC: nc, JS: js, Settings: settings, Infra: infra, Logger: log, Registry: reg})
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: fmt.Sprintf(":%d", infra.Port), Handler: g.Handler(), ReadHeaderTimeout: 30 * time.Second}
	runDone := make(chan error, 1)
	go func() { runDone <- g.Run(ctx) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) // lets open streams finish
	}()
	log.Info("edge listening", "port", infra.Port)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-runDone
}
