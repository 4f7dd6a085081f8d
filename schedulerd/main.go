// Command schedulerd emits the recovery and retention ticks on GB_TICKS.
// Run several replicas freely: JetStream de-duplication keeps one tick per slot.
//
// TICK_INTERVAL (a Go duration such as "2s"), for tests and local
// development only, replaces both schedules with one fixed period.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gemini-balance-go/schedulerd/ticks"
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
		obs.NewLogger(os.Stderr, bus.ServiceSchedulerd).Error("schedulerd stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, stop context.CancelFunc) error {
	var interval time.Duration
	if v := os.Getenv("TICK_INTERVAL"); v != "" {
		var err error
		if interval, err = time.ParseDuration(v); err != nil || interval <= 0 {
			return fmt.Errorf("config: TICK_INTERVAL: want a positive duration like 2s, got %q", v)
		}
	}
	p, err := boot.Start(ctx, bus.ServiceSchedulerd)
	if err != nil {
		return err
	}
	defer p.Close()
	go func() {
		if err := p.Serve(ctx, p.HealthMux(), 5*time.Second); err != nil {
			p.Log.Error("health server", "err", err)
			stop()
		}
	}()
	return ticks.Run(ctx, ticks.Deps{NC: p.NC, Settings: p.Settings, Log: p.Log, Registry: p.Registry, Interval: interval, Replica: p.Infra.Replica})
}
