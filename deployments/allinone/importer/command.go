package importer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gemini-balance-go/deployments/embedded/ferret"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/mongox"
)

// Command is `gemini-balance import`: args are its flags. It writes to
// MONGO_URI (MONGO_DB) when set, else to the all-in-one's embedded store
// under DATA_DIR, which must not be running meanwhile.
func Command(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(out)
	from := fs.String("from", "", "gemini-balance's database: its SQLite file (data/<SQLITE_DATABASE>) or mysql://user:password@host:3306/database")
	tz := fs.String("tz", "Local", "time zone of gemini-balance's timestamps: its server's (TZ in its container, often Asia/Shanghai)")
	fs.Usage = func() {
		fmt.Fprintln(out, "usage: gemini-balance import --from <gemini-balance database> [--tz <zone>]")
		fmt.Fprintln(out, "Brings gemini-balance's settings, keys, request logs and error logs into MONGO_URI, or the embedded store under DATA_DIR. Running it again adds nothing.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("import: --from is required")
	}
	zone, err := time.LoadLocation(*tz)
	if err != nil {
		return fmt.Errorf("import: --tz: %w", err)
	}
	infra, err := config.LoadInfra()
	if err != nil {
		return err
	}
	// A wrong --from fails before anything is opened or created.
	src, err := Open(*from)
	if err != nil {
		return err
	}
	src.Close()
	uri := infra.MongoURI
	if uri == "" {
		dataDir, err := filepath.Abs(infra.DataDir)
		if err != nil {
			return fmt.Errorf("config: DATA_DIR: %w", err)
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return fmt.Errorf("config: DATA_DIR: %w", err)
		}
		store, err := ferret.Start(ctx, ferret.Options{DataDir: filepath.Join(dataDir, "store"),
			Unix: filepath.Join(dataDir, "store.sock"), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return fmt.Errorf("import: embedded store under %s (is gemini-balance running? stop it first): %w", dataDir, err)
		}
		defer store.Stop()
		uri = store.URI
		fmt.Fprintln(out, "into the embedded store under", dataDir)
	} else {
		fmt.Fprintln(out, "into MONGO_URI, database", infra.MongoDB)
	}
	cl, err := mongox.Connect(ctx, uri, "gemini-balance-import")
	if err != nil {
		return err
	}
	defer cl.Disconnect(context.WithoutCancel(ctx))
	began := time.Now()
	res, err := Run(ctx, cl.Database(infra.MongoDB), Options{From: *from, Zone: zone, EncryptionKey: infra.EncryptionKey, Out: out})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "done in %s: settings %s, %d keys, %d request logs, %d error logs added\n",
		time.Since(began).Round(time.Millisecond), res.Settings, res.KeysAdded, res.Requests, res.ErrorLogs)
	if res.Settings == "imported" || res.KeysAdded > 0 {
		fmt.Fprintln(out, "start (or restart) gemini-balance, or admind and keyd, to apply the imported settings and keys")
	}
	return nil
}
