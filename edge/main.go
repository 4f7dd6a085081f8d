// Command edge is the public API gateway: Gemini-native and OpenAI routes
// with key rotation through keyd and events to JetStream.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gemini-balance-go/edge/gateway"
	"github.com/gemini-balance-go/shared/boot"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/obs"
)

// drainGrace is how long open requests and streams may run on after SIGTERM.
const drainGrace = 30 * time.Second

func main() {
	if len(os.Args) > 1 && os.Args[1] == boot.HealthcheckArg {
		os.Exit(boot.Healthcheck(os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		obs.NewLogger(os.Stderr, bus.ServiceEdge).Error("edge stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	p, err := boot.Start(ctx, bus.ServiceEdge)
	if err != nil {
		return err
	}
	defer p.Close()
	g, err := gateway.New(gateway.Deps{NC: p.NC, JS: p.JS, Settings: p.Settings, Infra: p.Infra, Logger: p.Log, Registry: p.Registry})
	if err != nil {
		return err
	}
	runDone := make(chan error, 1)
	go func() { runDone <- g.Run(ctx) }()
	if err := p.Serve(ctx, g.Handler(), drainGrace); err != nil {
		return err // the listener failed; ctx still runs, so don't wait for Run
	}
	return <-runDone
}
