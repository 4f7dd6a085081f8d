package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Healthcheck runs a service process's binary with the `healthcheck`
// subcommand in that process's environment (as a container engine runs it)
// and returns its exit code and output.
func (s *Stack) Healthcheck(name string) (int, string) {
	s.mu.Lock()
	p, ok := s.procs[name]
	s.mu.Unlock()
	if !ok {
		s.t.Fatalf("e2e: no process %q", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, "healthcheck")
	for _, kv := range p.env {
		cmd.Env = append(cmd.Env, strings.ReplaceAll(kv, "{dir}", s.dir))
	}
	out, err := cmd.CombinedOutput()
	if err == nil {
		return 0, string(out)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	s.t.Fatalf("e2e: %s healthcheck: %v", name, err)
	return -1, ""
}

// Caddy starts Debian's caddy (or the binary GB_CADDY names; skipping the
// test when there is none) as
// process "caddy", running caddyfile with env added to its environment
// ({port} in a value is Caddy's listening port), and waits until ready
// answers through it. It returns Caddy's base URL, http://127.0.0.1:<port>.
// Its admin endpoint (GB_PROXY_ADMIN, which the shipped Caddyfile reads)
// gets a free port of its own, so tests run side by side.
func (s *Stack) Caddy(caddyfile string, env map[string]string, ready string) string {
	s.t.Helper()
	bin, err := CaddyPath()
	if err != nil {
		if os.Getenv("CI") != "" {
			s.t.Fatal("e2e: caddy is not installed (apt-get install caddy; .ci/run does)")
		}
		s.t.Skip("e2e: caddy is not installed (apt-get install caddy)")
	}
	port := freePort()
	vars := map[string]string{
		"HOME": s.dir, "XDG_DATA_HOME": filepath.Join(s.dir, "caddy"), "XDG_CONFIG_HOME": filepath.Join(s.dir, "caddy"),
		"GB_PROXY_ADMIN": "127.0.0.1:" + strconv.Itoa(freePort()),
	}
	for k, v := range env {
		vars[k] = strings.ReplaceAll(v, "{port}", strconv.Itoa(port))
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := &proc{name: "caddy", bin: bin, port: port, env: envList(vars),
		args:    []string{"run", "--config", caddyfile, "--adapter", "caddyfile"},
		logPath: filepath.Join(s.dir, "logs", "caddy.log"), ready: httpReady(base + ready)}
	s.mu.Lock()
	s.procs[p.name] = p
	s.order = append(s.order, p.name)
	s.mu.Unlock()
	if err := s.start(p.name); err != nil {
		s.t.Fatalf("e2e: %v", err)
	}
	return base
}

// CaddyPath is the caddy binary the tests run: GB_CADDY, or caddy on PATH.
func CaddyPath() (string, error) {
	if p := os.Getenv("GB_CADDY"); p != "" {
		return p, nil
	}
	return exec.LookPath("caddy")
}
