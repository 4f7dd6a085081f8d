package importer

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/admind/auth"
	"github.com/gemini-balance-go/admind/settings"
	"github.com/gemini-balance-go/keyd/keystore"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/redact"
	"github.com/gemini-balance-go/testkit/storetest"
)

// What gemini-balance's SQLAlchemy models create (app/database/models.py),
// in each dialect.
var schema = map[string][]string{
	"sqlite": {
		`CREATE TABLE t_settings (id INTEGER PRIMARY KEY AUTOINCREMENT, "key" VARCHAR(100) NOT NULL UNIQUE, value TEXT, description VARCHAR(255), created_at DATETIME, updated_at DATETIME)`,
		`CREATE TABLE t_error_logs (id INTEGER PRIMARY KEY AUTOINCREMENT, gemini_key VARCHAR(100), model_name VARCHAR(100), error_type VARCHAR(50), error_log TEXT, error_code INTEGER, request_msg JSON, request_time DATETIME)`,
		`CREATE TABLE t_request_log (id INTEGER PRIMARY KEY AUTOINCREMENT, request_time DATETIME, model_name VARCHAR(100), api_key VARCHAR(100), is_success BOOLEAN NOT NULL, status_code INTEGER, latency_ms INTEGER)`,
	},
	"mysql": {
		"CREATE TABLE t_settings (id INTEGER NOT NULL AUTO_INCREMENT, `key` VARCHAR(100) NOT NULL, value TEXT, description VARCHAR(255), created_at DATETIME, updated_at DATETIME, PRIMARY KEY (id), UNIQUE (`key`))",
		"CREATE TABLE t_error_logs (id INTEGER NOT NULL AUTO_INCREMENT, gemini_key VARCHAR(100), model_name VARCHAR(100), error_type VARCHAR(50), error_log TEXT, error_code INTEGER, request_msg JSON, request_time DATETIME, PRIMARY KEY (id))",
		"CREATE TABLE t_request_log (id INTEGER NOT NULL AUTO_INCREMENT, request_time DATETIME, model_name VARCHAR(100), api_key VARCHAR(100), is_success BOOL NOT NULL, status_code INTEGER, latency_ms INTEGER, PRIMARY KEY (id))",
	},
}

const (
	keyOne    = "AIzaSyImportKeyOne-00000000000000000001"
	keyTwo    = "AIzaSyImportKeyTwo-00000000000000000002"
	vertexKey = "AQ.AbImportVertexKey00000000000000000000000000000000001"
	password  = "gb-admin-password-from-t-settings"
)

// fill writes what a gemini-balance instance leaves behind: its settings
// (every value as text, as it stores them), request logs (one per attempt)
// and error logs holding the full key, as gemini-balance did.
func fill(t *testing.T, db *sql.DB, dialect string, requests int) {
	t.Helper()
	for _, q := range schema[dialect] {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rows := map[string]string{
		"API_KEYS":            `["` + keyOne + `","` + keyTwo + `"]`,
		"VERTEX_API_KEYS":     `["` + vertexKey + `"]`,
		"ALLOWED_TOKENS":      `["sk-import-client-token-0123456789"]`,
		"AUTH_TOKEN":          password,
		"MAX_FAILURES":        "10",
		"TIMEZONE":            "Asia/Shanghai",
		"THINKING_BUDGET_MAP": `{'gemini-2.5-pro': 1024.0}`,
		"SHOW_SEARCH_LINK":    "False",
		"UPLOAD_PROVIDER":     "smms",
		"BASE_URL":            "https://generativelanguage.googleapis.com/v1beta",
		"DATABASE_TYPE":       dialect,
	}
	for k, v := range rows {
		if _, err := db.Exec("INSERT INTO t_settings (`key`, value, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)", k, v, k+" setting", "2025-06-01 08:00:00", "2025-06-01 08:00:00"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range requests {
		key, status, ok := keyOne, 200, true
		if i%3 == 1 {
			key, status, ok = keyTwo, 429, false
		}
		at := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second).Format("2006-01-02 15:04:05.000000")
		if _, err := db.Exec("INSERT INTO t_request_log (request_time, model_name, api_key, is_success, status_code, latency_ms) VALUES (?, ?, ?, ?, ?, ?)",
			at, "gemini-2.5-flash", key, ok, status, 100+i); err != nil {
			t.Fatal(err)
		}
	}
	for i, code := range []int{429, 400} {
		if _, err := db.Exec("INSERT INTO t_error_logs (gemini_key, model_name, error_type, error_log, error_code, request_msg, request_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
			keyTwo, "gemini-2.5-pro", "gemini-chat-non-stream",
			fmt.Sprintf(`{"error":{"code":%d,"message":"quota for https://x/v1beta/models/m:generateContent?key=%s"}}`, code, keyTwo), code,
			`{"contents":[{"parts":[{"text":"hi"}]}]}`, fmt.Sprintf("2025-06-01 10:0%d:00", i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImportFromSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "default_db")
	src, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, src, "sqlite", 30)
	src.Close()
	checkImport(t, path, 30)
}

// MariaDB from Debian, started here in a temporary directory as a process
// on a Unix socket.
func TestImportFromMySQL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB")
	}
	sock := startMariaDB(t)
	admin, err := sql.Open("mysql", "root@unix("+sock+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE default_db"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", "root@unix("+sock+")/default_db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fill(t, db, "mysql", 30)
	checkImport(t, "mysql://root@localhost/default_db?socket="+sock, 30)
}

// checkImport imports from twice into a fresh store and checks what a user
// finds afterwards: settings, admin password, keys, logs with their times,
// key hints and status codes, no full key anywhere, and nothing added twice.
func checkImport(t *testing.T, from string, requests int) {
	t.Helper()
	ctx := context.Background()
	db := freshStore(t)
	shanghai, _ := time.LoadLocation("Asia/Shanghai")

	var out bytes.Buffer
	res, err := Run(ctx, db, Options{From: from, Zone: shanghai, Out: &out, BatchSize: 10, EncryptionKey: "import-test-passphrase"})
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out.String())
	}
	t.Logf("first run:\n%s", out.String())
	if res.Settings != "imported" || res.Admin != "imported" || res.KeysAdded != 3 || res.Requests != requests || res.ErrorLogs != 2 {
		t.Fatalf("first run: %+v", res)
	}
	for _, want := range []string{"not supported, not imported: UPLOAD_PROVIDER (", "not supported, not imported: DATABASE_TYPE (",
		"request logs: 10/30 (33%)", "request logs: 30 added, 0 already there", "error logs: 2 added", "keys: 3 added"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), keyOne) || strings.Contains(out.String(), password) {
		t.Error("output carries a key or the password")
	}

	// Settings: the document admind publishes at start.
	st, ok, err := settings.NewStore(db, nil, nil).Load(ctx)
	if err != nil || !ok {
		t.Fatalf("settings: %v %v", ok, err)
	}
	if st.MaxFailures != 10 || st.Timezone != "Asia/Shanghai" || st.ThinkingBudgetMap["gemini-2.5-pro"] != 1024 || st.ShowSearchLink ||
		st.BaseURL != "https://generativelanguage.googleapis.com" || len(st.AllowedTokens) != 1 || st.MaxRetries != 3 {
		t.Errorf("imported settings: %+v", st)
	}
	if len(st.APIKeys) != 0 || st.AuthToken != "" {
		t.Error("keys or the password stored in the settings document")
	}
	// The admin password: AUTH_TOKEN logs in.
	a, found, err := auth.NewStore(db).Load(ctx)
	if err != nil || !found || !auth.VerifyPassword(a.Hash, password) {
		t.Fatalf("admin after import: found %v, err %v", found, err)
	}
	// Keys, sealed with ENCRYPTION_KEY, readable by keyd.
	ks, err := keystore.Open(ctx, db, "import-test-passphrase")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ks.LoadAll(ctx)
	if err != nil || len(keys) != 3 {
		t.Fatalf("keys: %d, %v", len(keys), err)
	}
	kinds := map[string]string{}
	for _, k := range keys {
		kinds[k.Secret] = k.Kind
	}
	if kinds[keyOne] != "gemini" || kinds[keyTwo] != "gemini" || kinds[vertexKey] != "vertex" {
		t.Errorf("key kinds: %v", kinds)
	}
	// Logs, as the admin UI reads them through logd's store.
	logs := logstore.New(db)
	page, err := logs.RequestLogs(ctx, logapi.RequestLogQuery{Limit: 100, Order: "asc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Logs) != requests {
		t.Fatalf("request logs: %d, want %d", len(page.Logs), requests)
	}
	first, second := page.Logs[0], page.Logs[1]
	// 09:00 Shanghai time is 01:00 UTC.
	if !first.Time.Equal(time.Date(2025, 6, 1, 1, 0, 0, 0, time.UTC)) || first.Status != 200 || !first.Success ||
		first.KeyHint != redact.Hint(keyOne) || first.Model != "gemini-2.5-flash" || first.LatencyMS != 100 {
		t.Errorf("first request log: %+v", first)
	}
	if second.Status != 429 || second.Success || second.KeyHint != redact.Hint(keyTwo) {
		t.Errorf("second request log: %+v", second)
	}
	errs, err := logs.ErrorLogs(ctx, logapi.ErrorLogQuery{Limit: 10})
	if err != nil || len(errs.Logs) != 2 {
		t.Fatalf("error logs: %+v %v", errs, err)
	}
	codes := map[int]bool{}
	for _, e := range errs.Logs {
		codes[e.Code] = true
		if e.KeyHint != redact.Hint(keyTwo) || e.Type != "gemini-chat-non-stream" {
			t.Errorf("error log: %+v", e)
		}
	}
	if !codes[429] || !codes[400] {
		t.Errorf("error codes: %v", codes)
	}
	stored, err := logstore.ReadRequestLogs(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(stored); strings.Contains(string(b), keyOne) || strings.Contains(string(b), keyTwo) || strings.Contains(string(b), password) {
		t.Fatal("a request log holds a full key or the password")
	}
	for _, coll := range []string{logstore.CollErrors, settings.Collection} {
		cur, err := db.Collection(coll).Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		var docs []bson.Raw
		_ = cur.All(ctx, &docs)
		for _, d := range docs {
			if s := d.String(); strings.Contains(s, keyOne) || strings.Contains(s, keyTwo) || strings.Contains(s, password) {
				t.Fatalf("%s holds a full key or the password: %s", coll, s)
			}
		}
	}

	// Idempotent: a second run adds nothing.
	out.Reset()
	res, err = Run(ctx, db, Options{From: from, Zone: shanghai, Out: &out, BatchSize: 10, EncryptionKey: "import-test-passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second run:\n%s", out.String())
	if res.Settings != "unchanged" || res.Admin != "kept" || res.KeysAdded != 0 || res.KeysPresent != 3 ||
		res.Requests != 0 || res.RequestsPresent != requests || res.ErrorLogs != 0 || res.ErrorLogsPresent != 2 {
		t.Fatalf("second run: %+v", res)
	}
	if n, err := db.Collection(logstore.CollErrors).CountDocuments(ctx, bson.D{}); err != nil || n != 2 {
		t.Errorf("error logs: %d after two imports, want 2 (%v)", n, err)
	}
	if stored, err := logstore.ReadRequestLogs(ctx, db); err != nil || len(stored) != requests {
		t.Errorf("request logs: %d after two imports, want %d (%v)", len(stored), requests, err)
	}
}

// An import run again after gemini-balance logged more requests adds just
// those, though its last batch then holds more rows than the first run's.
func TestImportAgainAfterTheSourceGrewAddsOnlyTheNewRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "default_db")
	src, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fill(t, src, "sqlite", 25) // batches of 10: the last one holds 5
	ctx := context.Background()
	db := freshStore(t)
	res, err := Run(ctx, db, Options{From: path, Zone: time.UTC, BatchSize: 10})
	if err != nil || res.Requests != 25 {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	for i := 0; i < 7; i++ {
		if _, err := src.Exec("INSERT INTO t_request_log (request_time, model_name, api_key, is_success, status_code, latency_ms) VALUES (?, ?, ?, ?, ?, ?)",
			fmt.Sprintf("2025-06-02 09:00:%02d", i), "gemini-2.5-pro", keyOne, true, 200, 50); err != nil {
			t.Fatal(err)
		}
	}
	res, err = Run(ctx, db, Options{From: path, Zone: time.UTC, BatchSize: 10})
	if err != nil || res.Requests != 7 || res.RequestsPresent != 25 {
		t.Fatalf("second run: %d added, %d already there (%v); want 7 and 25", res.Requests, res.RequestsPresent, err)
	}
	stored, err := logstore.ReadRequestLogs(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, r := range stored {
		ids[r.ID]++
	}
	if len(stored) != 32 || len(ids) != 32 {
		t.Fatalf("%d request logs stored, %d distinct; want 32 once each", len(stored), len(ids))
	}
}

// startMariaDB initialises and starts Debian's mariadbd in a temporary
// directory, on a Unix socket only, and stops it when the test ends. It
// skips when MariaDB is not installed, except in CI (.ci/run installs it).
func startMariaDB(t *testing.T) string {
	t.Helper()
	server, err := exec.LookPath("mariadbd")
	if err != nil {
		server, err = exec.LookPath("/usr/sbin/mariadbd")
	}
	install, ierr := exec.LookPath("mariadb-install-db")
	if err != nil || ierr != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mariadb-server is not installed (.ci/run installs it)")
		}
		t.Skip("mariadb-server is not installed")
	}
	dir, err := os.MkdirTemp("", "gb-mariadb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "mysqld.sock")
	if out, err := exec.Command(install, "--no-defaults", "--datadir="+data, "--user="+currentUser(),
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(server, "--no-defaults", "--datadir="+data, "--socket="+sock, "--skip-networking",
		"--user="+currentUser(), "--pid-file="+filepath.Join(dir, "mysqld.pid"), "--innodb-buffer-pool-size=16M")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		db, err := sql.Open("mysql", "root@unix("+sock+")/")
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil {
			return sock
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("mariadbd exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mariadbd not ready: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if os.Getuid() == 0 {
		return "root"
	}
	out, _ := exec.Command("id", "-un").Output()
	return strings.TrimSpace(string(out))
}

// freshStore is the database of a new embedded store, as the all-in-one's.
func freshStore(t *testing.T) *mongo.Database {
	t.Helper()
	cl, err := mongo.Connect(options.Client().ApplyURI(storetest.Start(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl.Database("gemini_balance")
}
