package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// Issue 11: a gemini-balance .env works unchanged. The all-in-one runs in a
// directory holding one that uses every variable gemini-balance documents;
// only the upstream is pointed at the fake, through the environment (which
// wins over .env, as in gemini-balance). Every variable is either read or
// reported by name at start; its keys, client token and admin password work;
// its settings are the live ones.
func TestGeminiBalanceDotEnvWorksUnchanged(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode")
	}
	envText, err := os.ReadFile("../allinone/testdata/gemini-balance.env")
	if err != nil {
		t.Fatal(err)
	}
	vars, err := config.ParseDotEnv(strings.NewReader(string(envText)))
	if err != nil {
		t.Fatal(err)
	}
	file := map[string]string{}
	for _, kv := range vars {
		file[kv[0]] = kv[1]
		if !config.Known(kv[0]) && config.GeminiBalanceOnly[kv[0]] == "" {
			t.Errorf("%s, which gemini-balance documents, is neither read nor reported", kv[0])
		}
	}
	var keys []string
	if err := json.Unmarshal([]byte(file["API_KEYS"]), &keys); err != nil {
		t.Fatal(err)
	}
	fake := fakegemini.Start(t, fakegemini.Options{Keys: keys})

	b := stack.Binaries(t)
	if e, ok := b.Errors["allinone"]; ok {
		t.Fatalf("build gemini-balance: %s", e)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), envText, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freeTCPPort(t)
	cmd := exec.Command(b.Path("allinone"))
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"PORT=" + strconv.Itoa(port), "DATA_DIR=" + filepath.Join(dir, "data"), "NATS_LISTEN=off", "METRICS_ADDR=off",
		"BASE_URL=" + fake.URL}
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	var mu sync.Mutex
	errPipe, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			mu.Lock()
			stderr.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "gemini-balance ready") {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			mu.Lock()
			t.Fatalf("gemini-balance exited before ready:\n%s", stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("gemini-balance not ready after 2 minutes")
	}
	mu.Lock()
	started := stderr.String()
	mu.Unlock()
	for name := range config.GeminiBalanceOnly {
		reported := strings.Contains(started, "not supported, ignored: "+name+" (")
		if set := strings.TrimSpace(file[name]) != ""; set != reported {
			t.Errorf("%s (set: %v) reported at start: %v", name, set, reported)
		}
	}
	for _, secret := range []string{file["AUTH_TOKEN"], keys[0], file["MYSQL_PASSWORD"], file["OSS_ACCESS_KEY_SECRET"]} {
		if strings.Contains(started, secret) {
			t.Errorf("start-up output carries a secret from .env (…%s)", secret[len(secret)-4:])
		}
	}

	// The .env's client token and keys serve a request.
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	var tokens []string
	_ = json.Unmarshal([]byte(file["ALLOWED_TOKENS"]), &tokens)
	client, err := genai.NewClient(context.Background(), &genai.ClientConfig{APIKey: tokens[0], Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: base + "/", APIVersion: "v1beta"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := client.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("from a gemini-balance .env"), nil)
	if err != nil || res.Text() != "echo: from a gemini-balance .env" {
		t.Fatalf("request with the .env's token: %v", err)
	}

	// The .env's AUTH_TOKEN is the admin password, and its settings are live.
	req, _ := http.NewRequest(http.MethodGet, base+"/api/config", nil)
	req.Header.Set("Authorization", "Bearer "+file["AUTH_TOKEN"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var live map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&live); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/config with the .env's AUTH_TOKEN: %d %v", resp.StatusCode, err)
	}
	budgets, _ := live["THINKING_BUDGET_MAP"].(map[string]any)
	for name, want := range map[string]any{"MAX_FAILURES": 10.0, "TIMEZONE": "Asia/Shanghai", "FAKE_STREAM_ENABLED": true,
		"CREATE_IMAGE_MODEL": "imagen-3.0-generate-002", "LOG_LEVEL": "INFO"} {
		if live[name] != want {
			t.Errorf("live %s = %v, want %v (from .env)", name, live[name], want)
		}
	}
	if budgets["gemini-2.5-pro"] != 1024.0 || budgets["gemini-2.5-flash"] != -1.0 {
		t.Errorf("live THINKING_BUDGET_MAP = %v, want the .env's (1024.0 read as 1024)", live["THINKING_BUDGET_MAP"])
	}
}
