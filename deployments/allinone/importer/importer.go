// Package importer brings a gemini-balance database into this gateway's
// store: `gemini-balance import --from <db>`. It reads gemini-balance's
// SQLite file or MySQL database and writes what each service owns, through
// that service's own store code, into MongoDB (MONGO_URI, or the all-in-one's
// embedded store under DATA_DIR):
//
//   - t_settings → admind's settings document (gemini-balance-only names are
//     reported, not imported); AUTH_TOKEN becomes the admin password when no
//     admin exists yet;
//   - API_KEYS, VERTEX_API_KEYS and PAID_KEY of t_settings → keyd's keys
//     (sealed with ENCRYPTION_KEY when set);
//   - t_request_log and t_error_logs → logd's request and error logs, with
//     their rollups; times, models, key hints and status codes are kept,
//     full keys are not (a key id and a masked hint, as for live traffic).
//
// Every row gets an id derived from its table id and time, so a second run
// adds nothing. Usage:
//
//	res, err := importer.Run(ctx, db, importer.Options{From: "data/default_db", Out: os.Stdout})
package importer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.mongodb.org/mongo-driver/v2/mongo"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go

	"github.com/gemini-balance-go/admind/auth"
	"github.com/gemini-balance-go/admind/settings"
	"github.com/gemini-balance-go/keyd/keystore"
	"github.com/gemini-balance-go/keyd/service"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/seal"
)

// Options say what to import and how to report it.
type Options struct {
	// From is gemini-balance's database: a SQLite file path (or sqlite://path),
	// or mysql://user:password@host:port/database (?socket=/path for a Unix socket).
	From string
	// Zone is the time zone of gemini-balance's naive timestamps (its
	// server's local time, TZ in its container); nil means time.Local.
	Zone *time.Location
	// EncryptionKey seals the imported keys (ENCRYPTION_KEY), as keyd does.
	EncryptionKey string
	// Out receives counts and progress; nil discards them.
	Out io.Writer
	// BatchSize is how many log rows go into one write (default 2000).
	BatchSize int
}

// Result counts what was imported and what was there already.
type Result struct {
	// Settings is "imported", "unchanged" or "none" (no t_settings rows).
	Settings string
	// Unsupported are gemini-balance-only settings found (with what to do
	// instead); Unknown are t_settings rows neither gateway documents.
	Unsupported, Unknown []string
	// Admin is what became of AUTH_TOKEN: "imported", "kept" (an admin
	// exists already) or "none".
	Admin                       string
	KeysAdded, KeysPresent      int
	Requests, RequestsPresent   int
	ErrorLogs, ErrorLogsPresent int
}

// Run imports everything from o.From into db.
func Run(ctx context.Context, db *mongo.Database, o Options) (Result, error) {
	if o.Zone == nil {
		o.Zone = time.Local
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 2000
	}
	src, err := Open(o.From)
	if err != nil {
		return Result{}, err
	}
	defer src.Close()
	var res Result
	if err := importSettings(ctx, src, db, o, &res); err != nil {
		return res, err
	}
	logs := logstore.New(db)
	if err := logs.EnsureIndexes(ctx); err != nil {
		return res, fmt.Errorf("import: log store indexes: %w", err)
	}
	if err := importRequests(ctx, src, db, logs, o, &res); err != nil {
		return res, err
	}
	if err := importErrors(ctx, src, logs, o, &res); err != nil {
		return res, err
	}
	return res, nil
}

// Open connects to gemini-balance's database, read-only where the driver
// allows it.
func Open(from string) (*sql.DB, error) {
	switch {
	case strings.HasPrefix(from, "mysql://"):
		u, err := url.Parse(from)
		if err != nil {
			return nil, fmt.Errorf("import: --from: %w", err)
		}
		cfg := mysql.NewConfig()
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
		cfg.Net, cfg.Addr = "tcp", u.Host
		if u.Port() == "" {
			cfg.Addr = u.Host + ":3306"
		}
		if sock := u.Query().Get("socket"); sock != "" {
			cfg.Net, cfg.Addr = "unix", sock
		}
		cfg.DBName = strings.TrimPrefix(u.Path, "/")
		// Timestamps are read as the naive wall-clock values they are.
		cfg.ParseTime, cfg.Loc = true, time.UTC
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return nil, fmt.Errorf("import: open mysql: %w", err)
		}
		if err := db.Ping(); err != nil {
			db.Close()
			return nil, fmt.Errorf("import: connect to mysql %s/%s: %w", cfg.Addr, cfg.DBName, err)
		}
		return db, nil
	case from == "":
		return nil, errors.New("import: --from: want a gemini-balance SQLite file or mysql://user:password@host:port/database")
	default:
		path := strings.TrimPrefix(from, "sqlite://")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("import: --from: %w", err)
		}
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
		if err != nil {
			return nil, fmt.Errorf("import: open sqlite %s: %w", path, err)
		}
		if err := db.Ping(); err != nil {
			db.Close()
			return nil, fmt.Errorf("import: open sqlite %s: %w", path, err)
		}
		return db, nil
	}
}

// missingTable reports a table an older gemini-balance did not have.
func missingTable(err error) bool {
	var me *mysql.MySQLError
	return err != nil && (strings.Contains(err.Error(), "no such table") || errors.As(err, &me) && me.Number == 1146)
}

func importSettings(ctx context.Context, src *sql.DB, db *mongo.Database, o Options, res *Result) error {
	rows, err := src.QueryContext(ctx, "SELECT `key`, value FROM t_settings")
	if missingTable(err) {
		res.Settings, res.Admin = "none", "none"
		fmt.Fprintln(o.Out, "settings: none (no t_settings table)")
		return nil
	}
	if err != nil {
		return fmt.Errorf("import: read t_settings: %w", err)
	}
	defer rows.Close()
	stored := map[string]string{}
	for rows.Next() {
		var k string
		var v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return fmt.Errorf("import: read t_settings: %w", err)
		}
		stored[k] = v.String
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("import: read t_settings: %w", err)
	}
	if len(stored) == 0 {
		res.Settings, res.Admin = "none", "none"
		fmt.Fprintln(o.Out, "settings: none (t_settings is empty)")
		return nil
	}
	lookup := func(k string) (string, bool) { v, ok := stored[k]; return v, ok }
	res.Unsupported = config.Unsupported(lookup)
	for k := range stored {
		if !config.Known(k) && config.GeminiBalanceOnly[k] == "" {
			res.Unknown = append(res.Unknown, k)
		}
	}
	slices.Sort(res.Unknown)

	box := seal.New(o.EncryptionKey)
	store := settings.NewStore(db, nil, nil)
	store.Box = box
	// Variables t_settings does not hold keep their stored (or default) value.
	base, ok, err := store.Load(ctx)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if !ok {
		base = config.Defaults()
	}
	baseJSON := map[string]json.RawMessage{}
	data, _ := json.Marshal(base)
	_ = json.Unmarshal(data, &baseJSON)
	next, err := config.LoadSettingsFrom(func(k string) (string, bool) {
		if v, ok := stored[k]; ok {
			return v, true
		}
		raw, ok := baseJSON[k]
		if !ok {
			return "", false
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, true
		}
		return string(raw), true
	})
	if err != nil {
		return fmt.Errorf("import: t_settings: %w", err)
	}
	// The admin password is stored as a hash, never in the document.
	password := strings.TrimSpace(stored["AUTH_TOKEN"])
	changed, err := store.Import(ctx, next)
	if err != nil {
		return fmt.Errorf("import: settings: %w", err)
	}
	res.Settings = map[bool]string{true: "imported", false: "unchanged"}[changed]
	fmt.Fprintf(o.Out, "settings: %s (%d rows of t_settings)\n", res.Settings, len(stored))
	for _, u := range res.Unsupported {
		fmt.Fprintln(o.Out, "  not supported, not imported:", u)
	}
	for _, u := range res.Unknown {
		fmt.Fprintln(o.Out, "  unknown t_settings row, not imported:", u)
	}

	res.Admin = "none"
	if password != "" {
		_, err := auth.NewStore(db).Create(ctx, auth.HashPassword(password))
		switch {
		case err == nil:
			res.Admin = "imported"
		case errors.Is(err, auth.ErrAdminExists):
			res.Admin = "kept"
		default:
			return fmt.Errorf("import: admin password: %w", err)
		}
	}
	fmt.Fprintln(o.Out, "admin password (AUTH_TOKEN):", map[string]string{
		"imported": "imported", "kept": "kept the existing one (an admin exists already)", "none": "none; open /setup to choose one"}[res.Admin])

	keys := service.ConfiguredKeys(&next, time.Now().UTC())
	if len(keys) > 0 {
		ks, err := keystore.Open(ctx, db, o.EncryptionKey)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		added, err := ks.Insert(ctx, keys)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		res.KeysAdded, res.KeysPresent = len(added), len(keys)-len(added)
	}
	fmt.Fprintf(o.Out, "keys: %d added, %d already there\n", res.KeysAdded, res.KeysPresent)
	return nil
}

// kindOf tells a Vertex Express key ("AQ.…") from a Gemini one.
func kindOf(key string) string {
	if strings.HasPrefix(key, "AQ.") {
		return bus.KindVertex
	}
	return bus.KindGemini
}

// naiveTime reads a gemini-balance timestamp, a naive wall-clock time in
// zone, whatever form the driver returns it in.
func naiveTime(v any, zone *time.Location) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), zone), nil
	case []byte:
		return parseNaive(string(t), zone)
	case string:
		return parseNaive(t, zone)
	case int64:
		return time.Unix(t, 0).In(zone), nil
	case nil:
		return time.Time{}, errors.New("missing")
	}
	return time.Time{}, fmt.Errorf("unexpected %T", v)
}

func parseNaive(s string, zone *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, zone); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).In(zone), nil
	}
	return time.Time{}, fmt.Errorf("unreadable time %q", s)
}
