// Command gemini-balance is the all-in-one: embedded NATS and FerretDB and
// all five services in one process (package app). See the README for
// configuration. `gemini-balance import --from <db>` brings a gemini-balance
// database over (package importer); `gemini-balance tap` prints the events
// on the bus (package tap).
package main

import (
	"context"
	"os"

	"github.com/gemini-balance-go/deployments/allinone/app"
	"github.com/gemini-balance-go/deployments/allinone/importer"
	"github.com/gemini-balance-go/deployments/allinone/tap"
	"github.com/gemini-balance-go/shared/boot"
)

func main() {
	boot.Command("gemini-balance", func(ctx context.Context) error {
		if len(os.Args) > 1 && os.Args[1] == "import" {
			return importer.Command(ctx, os.Args[2:], os.Stdout)
		}
		if len(os.Args) > 1 && os.Args[1] == "tap" {
			return tap.Command(ctx, os.Args[2:], os.Stdout)
		}
		o, err := app.FromEnv(os.Stderr)
		if err != nil {
			return err
		}
		return app.Run(ctx, o, os.Stdout)
	})
}
