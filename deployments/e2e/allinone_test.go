package e2e_test

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gemini-balance-go/deployments/e2e/stack"
)

// allInOne is a running gemini-balance process.
type allInOne struct {
	cmd                     *exec.Cmd
	dataDir                 string
	port, natsPort, metrics int
	natsHost                string
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startAllInOne runs the all-in-one binary with DATA_DIR in a fresh
// directory and waits for its ready line.
func startAllInOne(t *testing.T, natsHost string) *allInOne {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode")
	}
	b := stack.Binaries(t)
	if e, ok := b.Errors["allinone"]; ok {
		t.Fatalf("build gemini-balance: %s", e)
	}
	a := &allInOne{dataDir: filepath.Join(t.TempDir(), "data"), port: freeTCPPort(t), natsPort: freeTCPPort(t), metrics: freeTCPPort(t), natsHost: natsHost}
	a.cmd = exec.Command(b.Path("allinone"))
	a.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"PORT=" + strconv.Itoa(a.port), "DATA_DIR=" + a.dataDir,
		"NATS_LISTEN=" + net.JoinHostPort(natsHost, strconv.Itoa(a.natsPort)),
		"METRICS_ADDR=127.0.0.1:" + strconv.Itoa(a.metrics),
		"API_KEYS=AIzaSyE2E-allinone-00000000000000000001", "ALLOWED_TOKENS=sk-e2e-allinone-token-0123456789",
		"AUTH_TOKEN=e2e-allinone-admin-password", "LOG_LEVEL=warn"}
	out, err := a.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(t.TempDir(), "gemini-balance.log"))
	if err != nil {
		t.Fatal(err)
	}
	a.cmd.Stderr = logs
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = a.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = a.cmd.Process.Kill()
			<-done
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "gemini-balance ready") {
				ready <- true
			}
		}
		ready <- false
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case ok := <-ready:
		if !ok {
			b, _ := os.ReadFile(logs.Name())
			t.Fatalf("gemini-balance exited before ready:\n%s", b)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("gemini-balance not ready in 2 minutes")
	}
	return a
}

// listeningTCPPorts are the TCP ports pid listens on, from /proc.
func listeningTCPPorts(t *testing.T, pid int) []int {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A: LISTEN
				continue
			}
			local := fields[1]
			p, err := strconv.ParseInt(local[strings.LastIndex(local, ":")+1:], 16, 32)
			if err == nil && !slices.Contains(ports, int(p)) {
				ports = append(ports, int(p))
			}
		}
	}
	slices.Sort(ports)
	return ports
}

// The all-in-one a user builds (`make run`, `make build`, the Dockerfile:
// plain `go build`) is optimised with its profile, deployments/allinone/default.pgo:
// the binary records the profile it was built with.
func TestAllInOneIsBuiltWithItsProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode")
	}
	b := stack.Binaries(t)
	if e, ok := b.Errors["allinone"]; ok {
		t.Fatalf("build gemini-balance: %s", e)
	}
	info, err := buildinfo.ReadFile(b.Path("allinone"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range info.Settings {
		if s.Key == "-pgo" {
			if want := filepath.Join("deployments", "allinone", "default.pgo"); !strings.HasSuffix(s.Value, want) {
				t.Errorf("built with -pgo=%s, want its own %s", s.Value, want)
			}
			return
		}
	}
	t.Errorf("the all-in-one was built without a profile (no -pgo in its build settings: %v)", info.Settings)
}

// Another local user can neither use the all-in-one's bus nor its store:
// NATS wants the credentials generated at this start (kept in 0600 files in
// a 0700 DATA_DIR), the store has no TCP port, and /metrics is not public.
func TestAllInOneIsClosedToOtherLocalUsers(t *testing.T) {
	a := startAllInOne(t, "127.0.0.1")
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", a.natsPort)

	if nc, err := nats.Connect(natsURL, nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("the embedded NATS server accepted a connection without credentials")
	}
	if nc, err := nats.Connect(natsURL, nats.UserInfo("tap", "guess"), nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("the embedded NATS server accepted a guessed password")
	}

	for _, d := range []string{a.dataDir, filepath.Join(a.dataDir, "nats"), filepath.Join(a.dataDir, "store")} {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v (%v), want 0700", d, fi.Mode().Perm(), err)
		}
	}
	tapFile := filepath.Join(a.dataDir, "nats-tap.url")
	fi, err := os.Stat(tapFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, want a 0600 file", tapFile, err)
	}
	raw, _ := os.ReadFile(tapFile)
	tap, err := nats.Connect(strings.TrimSpace(string(raw)), nats.Timeout(2*time.Second), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatalf("the owner's tap URL does not connect: %v", err)
	}
	defer tap.Close()
	if _, err := tap.SubscribeSync("gb.events.>"); err != nil {
		t.Fatal(err)
	}
	if err := tap.Flush(); err != nil || tap.LastError() != nil {
		t.Fatalf("the tap may not read events: %v %v", err, tap.LastError())
	}
	if _, err := tap.SubscribeSync("gb.keyd.>"); err != nil {
		t.Fatal(err)
	}
	_ = tap.Flush()
	if err := tap.LastError(); err == nil || !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
		t.Fatalf("the tap subscribed to gb.keyd.> (pasted keys, acquire replies): %v", err)
	}

	// The store: a socket in DATA_DIR, and no TCP port but PORT, NATS_LISTEN
	// and METRICS_ADDR.
	if fi, err := os.Stat(filepath.Join(a.dataDir, "store.sock")); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("no store socket in DATA_DIR: %v", err)
	}
	want := []int{a.port, a.natsPort, a.metrics}
	slices.Sort(want)
	if got := listeningTCPPorts(t, a.cmd.Process.Pid); !slices.Equal(got, want) {
		t.Errorf("listening TCP ports %v, want only PORT, NATS_LISTEN and METRICS_ADDR %v", got, want)
	}

	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", a.port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode == http.StatusOK || strings.Contains(string(body), "go_goroutines") {
		t.Errorf("/metrics is public on PORT: %d", res.StatusCode)
	}
	res, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", a.metrics))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "gb_edge_") {
		t.Errorf("/metrics on METRICS_ADDR: %d", res.StatusCode)
	}
}

// Listening for NATS beyond loopback keeps the generated credentials: a
// network peer without them is refused.
func TestAllInOneOnANetworkAddressStillWantsTheCredentials(t *testing.T) {
	a := startAllInOne(t, "0.0.0.0")
	if nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", a.natsPort), nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("NATS on 0.0.0.0 accepted a connection without credentials")
	}
}
