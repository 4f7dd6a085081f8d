// Command gb-store runs embedded FerretDB as its own process: the
// MongoDB-compatible store of the process-stack e2e tests (which kill and
// restart it) and of small deployments without MongoDB.
//
// It prints "gb-store ready <mongodb-uri>" on stdout once it accepts connections.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/gemini-balance-go/deployments/embedded/ferret"
)

func main() {
	listen := flag.String("listen", envOr("GB_STORE_LISTEN", "127.0.0.1:27017"), "TCP address (env GB_STORE_LISTEN)")
	dataDir := flag.String("data", envOr("GB_STORE_DATA", "./data/store"), "SQLite data directory (env GB_STORE_DATA)")
	pgURL := flag.String("postgres", os.Getenv("GB_STORE_POSTGRES_URL"), "use PostgreSQL instead of SQLite (env GB_STORE_POSTGRES_URL)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := ferret.Start(ctx, ferret.Options{Listen: *listen, DataDir: *dataDir, PostgresURL: *pgURL})
	if err != nil {
		slog.Error("gb-store failed", "err", err)
		os.Exit(1)
	}
	fmt.Println("gb-store ready", st.URI)
	<-st.Done()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
