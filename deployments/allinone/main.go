// Command gemini-balance is the all-in-one: embedded NATS and FerretDB and
// all five services in one process (package app). See the README for
// configuration. `gemini-balance import --from <db>` brings a gemini-balance
// database over (package importer).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gemini-balance-go/deployments/allinone/app"
	"github.com/gemini-balance-go/deployments/allinone/importer"
	"github.com/gemini-balance-go/shared/boot"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == boot.HealthcheckArg {
		os.Exit(boot.Healthcheck(os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // a second signal kills the process the default way
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gemini-balance:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	if len(os.Args) > 1 && os.Args[1] == "import" {
		return importer.Command(ctx, os.Args[2:], os.Stdout)
	}
	o, err := app.FromEnv(os.Stderr)
	if err != nil {
		return err
	}
	return app.Run(ctx, o, os.Stdout)
}
