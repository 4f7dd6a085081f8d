// Command gemini-balance is the all-in-one: embedded NATS and FerretDB and
// all five services in one process. See the README for configuration.
// `gemini-balance import --from <db>` brings a gemini-balance database over
// (package importer).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gemini-balance-go/deployments/allinone/app"
	"github.com/gemini-balance-go/deployments/allinone/importer"
	"github.com/gemini-balance-go/shared/boot"
	"github.com/gemini-balance-go/shared/config"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == boot.HealthcheckArg {
		os.Exit(boot.Healthcheck(os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "import" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := importer.Command(ctx, os.Args[2:], os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "gemini-balance:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gemini-balance:", err)
		os.Exit(1)
	}
}

func run() error {
	// Like gemini-balance, read ./.env for what the environment leaves unset,
	// so its .env works unchanged.
	fromFile, err := config.LoadDotEnv(".env")
	if err != nil {
		return err
	}
	if len(fromFile) > 0 {
		fmt.Fprintf(os.Stderr, "gemini-balance: read %d variables from .env\n", len(fromFile))
	}
	for _, u := range config.Unsupported(os.LookupEnv) {
		fmt.Fprintln(os.Stderr, "gemini-balance: not supported, ignored:", u)
	}
	infra, err := config.LoadInfra()
	if err != nil {
		return err
	}
	settings, err := config.LoadSettings()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A service that cannot come up in two minutes will not by waiting longer.
	startCtx, cancelStart := context.WithTimeout(ctx, 2*time.Minute)
	a, err := app.Start(startCtx, app.Options{Infra: infra, Settings: settings})
	cancelStart()
	if err != nil {
		return err
	}
	fmt.Printf("gemini-balance ready on %s (nats %s)\n", a.URL, a.NATSURL)
	var failure error
	select {
	case <-ctx.Done():
	case failure = <-a.Failed():
	}
	stop() // a second signal kills the process the default way
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Stop(sctx); err != nil && failure == nil {
		failure = err
	}
	return failure
}
