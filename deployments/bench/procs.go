package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// proc is a child process the benchmark started (and will stop).
type proc struct {
	name    string
	cmd     *exec.Cmd
	url     string
	metrics string        // the all-in-one's METRICS_ADDR /metrics URL
	store   string        // the all-in-one's embedded store (MongoDB URI on its Unix socket)
	control string        // the role's profile switch (serveControl); empty for a built binary
	done    chan struct{} // closed once the process has exited
}

// newProc watches a started command, so that its end is noticed (a crashed
// all-in-one must fail the run, not leave it polling).
func newProc(name string, cmd *exec.Cmd, url string) *proc {
	p := &proc{name: name, cmd: cmd, url: url, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startRole re-runs this binary in a role and waits for its LISTEN line.
func startRole(name string, args ...string) (*proc, error) { return startRoleOf("", name, args...) }

// startRoleOf runs bench binary bin (this one when empty; another build for
// a before/after column) in a role and waits for its LISTEN line.
func startRoleOf(bin, name string, args ...string) (*proc, error) {
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		bin = self
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return newProc(name, cmd, u), nil
		}
	}
	_ = cmd.Process.Kill()
	return nil, fmt.Errorf("%s did not start", name)
}

// startAllInOne runs the all-in-one against the fake: the gemini-balance
// binary bin, or with bin empty this binary's "gb" role (the same app.Start,
// with the profile switch).
func startAllInOne(bin, fakeURL, token string, keys []string, port, natsPort int, dataDir string) (*proc, error) {
	control := ""
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		bin, control = self, freeAddr()
	}
	cmd := exec.Command(bin)
	if control != "" {
		cmd.Args = append(cmd.Args, "gb", control)
	}
	p, err := waitAllInOne(cmd, fakeURL, token, keys, port, natsPort, dataDir)
	if p != nil {
		p.control = control
	}
	return p, err
}

// waitAllInOne starts cmd as the all-in-one with the benchmark's environment
// and waits until it serves.
func waitAllInOne(cmd *exec.Cmd, fakeURL, token string, keys []string, port, natsPort int, dataDir string) (*proc, error) {
	metricsAddr := freeAddr()
	cmd.Env = append(os.Environ(),
		"PORT="+strconv.Itoa(port),
		"METRICS_ADDR="+metricsAddr,
		"DATA_DIR="+dataDir,
		"NATS_LISTEN=127.0.0.1:"+strconv.Itoa(natsPort),
		"NATS_URL=", "MONGO_URI=",
		"API_KEYS="+strings.Join(keys, ","),
		"ALLOWED_TOKENS="+token,
		"AUTH_TOKEN="+adminPassword,
		"BASE_URL="+fakeURL,
		"LOG_LEVEL=error",
	)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := newProc("gemini-balance", cmd, "http://127.0.0.1:"+strconv.Itoa(port))
	p.metrics = "http://" + metricsAddr + "/metrics"
	p.store = "mongodb://" + url.PathEscape(filepath.Join(dataDir, "store.sock")) + "/"
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && !p.exited() {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, p.url+"/v1beta/models", nil)
		req.Header.Set("x-goog-api-key", token)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("gemini-balance did not become ready on %s", p.url)
}

func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// cpu returns the process's user+system CPU time so far.
func (p *proc) cpu() time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// hwm returns the peak resident set size (VmHWM) in bytes since the start
// or the last resetHWM.
func (p *proc) hwm() int64 { return p.status("VmHWM:") }

// resetHWM sets VmHWM back to the current RSS (Linux clear_refs 5).
func (p *proc) resetHWM() error {
	return os.WriteFile("/proc/"+strconv.Itoa(p.cmd.Process.Pid)+"/clear_refs", []byte("5"), 0)
}

// status reads a "kB" field of /proc/<pid>/status, in bytes.
func (p *proc) status(field string) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
