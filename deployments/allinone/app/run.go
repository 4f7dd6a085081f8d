package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gemini-balance-go/edge/gateway"
	"github.com/gemini-balance-go/shared/config"
)

// FromEnv reads the all-in-one's options: like gemini-balance, ./.env fills
// in what the environment leaves unset, so its .env works unchanged. Notes
// (variables read from .env, unsupported ones) go to w.
func FromEnv(w io.Writer) (Options, error) {
	fromFile, err := config.LoadDotEnv(".env")
	if err != nil {
		return Options{}, err
	}
	if len(fromFile) > 0 {
		fmt.Fprintf(w, "gemini-balance: read %d variables from .env\n", len(fromFile))
	}
	for _, u := range config.Unsupported(os.LookupEnv) {
		fmt.Fprintln(w, "gemini-balance: not supported, ignored:", u)
	}
	infra, err := config.LoadInfra()
	if err != nil {
		return Options{}, err
	}
	settings, err := config.LoadSettings()
	if err != nil {
		return Options{}, err
	}
	return Options{Infra: infra, Settings: settings}, nil
}

// Run starts the all-in-one, says so on out, and runs until ctx ends or a
// service fails; then it stops, giving open requests and streams
// gateway.DrainGrace to finish.
func Run(ctx context.Context, o Options, out io.Writer) error {
	// A service that cannot come up in two minutes will not by waiting longer.
	startCtx, cancelStart := context.WithTimeout(ctx, 2*time.Minute)
	a, err := Start(startCtx, o)
	cancelStart()
	if err != nil {
		return err
	}
	if err := ReleaseMemory(ctx); err != nil {
		a.log.Debug("release startup memory", "err", err)
	}
	fmt.Fprintf(out, "gemini-balance ready on %s (nats %s)\n", a.URL, a.NATSURL)
	var failure error
	select {
	case <-ctx.Done():
	case failure = <-a.Failed():
	}
	sctx, cancel := context.WithTimeout(context.Background(), gateway.DrainGrace)
	defer cancel()
	if err := a.Stop(sctx); err != nil && failure == nil {
		failure = err
	}
	return failure
}
