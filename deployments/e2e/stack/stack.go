// Package stack is the process stack of the e2e tests, one concern kept
// whole: build, start, wait, kill and restart every binary against NATS,
// the store and the fake upstream.
package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

// Options shape a stack. The zero value is two edges, one keyd, three keys and one token.
type Options struct {
	Edges int // default 2
	Keyds int // default 1
	// Logds is how many logd processes run (default 1): "logd", then
	// "logd-1", "logd-2"…, sharing one store and the durable consumers.
	Logds int
	// Admins is how many admind processes run (default 1): "admind", then
	// "admind-1", "admind-2"…, sharing one store.
	Admins int
	// Keys are the Gemini API keys (API_KEYS); the fake accepts exactly these.
	Keys []string
	// Tokens are the client tokens (ALLOWED_TOKENS); AuthToken is the admin password.
	Tokens    []string
	AuthToken string
	// Env is added to every service's environment (after the defaults, so it wins).
	Env map[string]string
	// ServiceEnv is added to one process's environment, by process name ("edge-1", "keyd-0").
	ServiceEnv map[string]map[string]string
	// Without names processes not to start at all ("admind", "schedulerd", ...).
	Without []string
	// ReadyTimeout bounds each process's start (default 60s).
	ReadyTimeout time.Duration
	// NATSConfig, when set, is a nats-server config with one user per service
	// (deployments/nats/nats.conf): nats-server runs with it and every service
	// connects as its own least-privileged user. TapURL then logs in as "tap".
	NATSConfig string
	// AllInOne runs the gemini-balance binary (embedded NATS and store, all
	// five services) as process "allinone" instead of the separate services.
	AllInOne bool
	// NATSCluster, when 3 or more, runs that many clustered nats-server
	// processes ("nats-0", "nats-1", ...) with JetStream instead of "nats";
	// every service gets all their URLs in NATS_URL and JETSTREAM_REPLICAS=3
	// (Env may override it). Not combined with NATSConfig.
	NATSCluster int
}

// natsPassword is the e2e password of a NATS user of the deployment config.
func natsPassword(user string) string { return "e2e-" + user + "-secret" }

// natsUsers are the users of deployments/nats/nats.conf.
var natsUsers = []string{"edge", "keyd", "logd", "admind", "schedulerd", "tap"}

// Stack is a running process stack.
type Stack struct {
	t     testing.TB
	opts  Options
	build *Build
	dir   string
	// natsConf is the NATSConfig text to write as {dir}/nats.conf.
	natsConf []byte

	mu    sync.Mutex
	procs map[string]*proc
	order []string
}

type proc struct {
	name    string // process name: nats, store, fake, keyd-0, logd, admind, schedulerd, edge-0…
	bin     string
	args    []string
	env     []string
	port    int
	metrics int // METRICS_ADDR port of a service
	logPath string
	ready   func(ctx context.Context) error
	// micro is the NATS micro service the process registers once fully started; /readyz
	// only says NATS and MongoDB are reachable, and some services still initialise after
	// that (logd ensures its indexes first).
	micro string

	cmd      *exec.Cmd
	done     chan struct{}
	err      error
	stopping bool // the harness asked it to exit; any other exit is a crash
}

// Start builds (once) and starts the whole stack, waiting until every process is ready.
// Missing service binaries skip the test, naming them; other build errors fail it.
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode")
	}
	if opts.Edges <= 0 {
		opts.Edges = 2
	}
	if opts.Keyds <= 0 {
		opts.Keyds = 1
	}
	if len(opts.Keys) == 0 {
		opts.Keys = []string{"AIzaSyE2E-key-one-0000000000000000001", "AIzaSyE2E-key-two-0000000000000000002", "AIzaSyE2E-key-three-000000000000000003"}
	}
	if len(opts.Tokens) == 0 {
		opts.Tokens = []string{"sk-e2e-client-token-0123456789abcdef"}
	}
	if opts.AuthToken == "" {
		opts.AuthToken = "e2e-admin-password-fedcba9876543210"
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	b := Binaries(t)
	s := &Stack{t: t, opts: opts, build: b, procs: map[string]*proc{}}
	s.plan()
	var missing, broken []string
	for _, name := range s.order {
		bin := filepath.Base(s.procs[name].bin)
		if e, ok := b.Errors[bin]; ok {
			if isMissing(e) {
				missing = append(missing, bin)
			} else {
				broken = append(broken, bin+":\n"+e)
			}
		}
	}
	slices.Sort(missing)
	missing = slices.Compact(missing)
	if len(broken) > 0 {
		t.Fatalf("e2e: binaries failed to build:\n%s", strings.Join(slices.Compact(broken), "\n"))
	}
	if len(missing) > 0 {
		t.Skipf("e2e: service binaries not available yet (no main package): %s", strings.Join(missing, ", "))
	}
	dir, err := os.MkdirTemp("", "gb-e2e-"+sanitize(t.Name())+"-")
	if err != nil {
		t.Fatal(err)
	}
	s.dir = dir
	if s.natsConf != nil {
		conf := bytes.ReplaceAll(s.natsConf, []byte("{dir}"), []byte(dir))
		if err := os.WriteFile(filepath.Join(dir, "nats.conf"), conf, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range s.procs {
		p.logPath = filepath.Join(dir, "logs", p.name+".log")
	}
	_ = os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	t.Cleanup(s.teardown)
	began := time.Now()
	// Infrastructure first, then every service at once, as a deployment would.
	var infra, svcs []string
	for _, name := range s.order {
		if strings.HasPrefix(name, "nats") || name == "store" || name == "fake" {
			infra = append(infra, name)
		} else {
			svcs = append(svcs, name)
		}
	}
	for _, group := range [][]string{infra, svcs} {
		if err := s.startAll(group); err != nil {
			t.Fatalf("e2e: %v", err)
		}
	}
	t.Logf("e2e: %d processes ready in %s (dir %s)", len(s.order), time.Since(began).Round(time.Millisecond), s.dir)
	return s
}

// startAll starts names concurrently and waits for all of them.
func (s *Stack) startAll(names []string) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.start(name)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func isMissing(buildErr string) bool {
	for _, m := range []string{"no Go files", "cannot find", "is not in std", "does not contain package", "no required module provides", "not in a main module", "directory not found", "is not a main package"} {
		if strings.Contains(buildErr, m) {
			return true
		}
	}
	return false
}

// sanitize keeps a test name safe inside paths and URIs (FerretDB's SQLite URI breaks on
// '#' from subtest names, for one).
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// plan decides names, ports, arguments and environments (ports stay fixed across restarts).
func (s *Stack) plan() {
	add := func(p *proc) {
		if slices.Contains(s.opts.Without, p.name) || slices.Contains(s.opts.Without, strings.SplitN(p.name, "-", 2)[0]) {
			return
		}
		if s.opts.AllInOne && (p.name == "nats" || p.name == "store") {
			return // embedded in the all-in-one
		}
		s.procs[p.name] = p
		s.order = append(s.order, p.name)
	}
	natsPort, storePort, fakePort := freePort(), freePort(), freePort()
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	if s.opts.NATSCluster >= 3 {
		natsURL = s.planCluster(add)
	}
	mongoURI := fmt.Sprintf("mongodb://127.0.0.1:%d/", storePort)
	fakeURL := fmt.Sprintf("http://127.0.0.1:%d", fakePort)
	path := func(bin string) string { return s.build.Path(bin) }

	natsArgs := []string{"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(natsPort), "-sd", "{dir}/nats", "-n", "gb-e2e"}
	var natsEnv []string
	var natsOpts []nats.Option
	if conf := s.opts.NATSConfig; conf != "" {
		// The deployment config as it is, but for its store directory
		// (nats-server refuses -sd next to a config's store_dir); written
		// into the stack's directory at start.
		text, err := os.ReadFile(conf)
		if err != nil {
			s.t.Fatalf("e2e: nats config: %v", err)
		}
		s.natsConf = bytes.Replace(text, []byte("store_dir: /data"), []byte(`store_dir: "{dir}/nats"`), 1)
		// Flags override the file's port and monitor port.
		natsArgs = []string{"-c", "{dir}/nats.conf", "-a", "127.0.0.1", "-p", strconv.Itoa(natsPort), "-m", strconv.Itoa(freePort()), "-n", "gb-e2e"}
		pw := map[string]string{}
		for _, u := range natsUsers {
			pw[strings.ToUpper(u)+"_NATS_PASSWORD"] = natsPassword(u)
		}
		natsEnv = envList(pw)
		natsOpts = s.harnessOpts()
	}
	if s.opts.NATSCluster < 3 {
		add(&proc{name: "nats", bin: path("nats-server"), port: natsPort, args: natsArgs, env: natsEnv,
			ready: jetStreamReady(natsURL, natsOpts)})
	}
	add(&proc{name: "store", bin: path("gb-store"), port: storePort,
		args: []string{"-listen", fmt.Sprintf("127.0.0.1:%d", storePort), "-data", "{dir}/store"},
		ready: func(ctx context.Context) error {
			c, err := mongo.Connect(options.Client().ApplyURI(mongoURI).SetServerSelectionTimeout(time.Second))
			if err != nil {
				return err
			}
			defer c.Disconnect(context.Background())
			return c.Ping(ctx, nil)
		}})
	add(&proc{name: "fake", bin: path("fakegemini"), port: fakePort,
		args:  []string{"-addr", fmt.Sprintf("127.0.0.1:%d", fakePort), "-keys", strings.Join(s.opts.Keys, ",")},
		ready: httpReady(fakeURL + "/readyz")})
	if s.opts.AllInOne {
		add(s.allInOne(fakeURL))
		return
	}

	keysJSON, _ := json.Marshal(s.opts.Keys)
	tokensJSON, _ := json.Marshal(s.opts.Tokens)
	common := map[string]string{
		"NATS_URL": natsURL, "MONGO_URI": mongoURI, "MONGO_DB": "gemini_balance",
		"BASE_URL": fakeURL, "API_KEYS": string(keysJSON), "ALLOWED_TOKENS": string(tokensJSON),
		"AUTH_TOKEN": s.opts.AuthToken, "LOG_LEVEL": "debug",
	}
	if s.opts.NATSCluster >= 3 {
		common["JETSTREAM_REPLICAS"] = "3"
	}
	service := func(name, bin string) {
		port, metrics := freePort(), freePort()
		env := map[string]string{}
		for k, v := range common {
			env[k] = v
		}
		env["PORT"] = strconv.Itoa(port)
		env["METRICS_ADDR"] = fmt.Sprintf("127.0.0.1:%d", metrics)
		env["REPLICA"] = name
		if s.opts.NATSConfig != "" {
			env["NATS_USER"], env["NATS_PASSWORD"] = bin, natsPassword(bin)
		}
		for k, v := range s.opts.Env {
			env[k] = strings.ReplaceAll(v, "{fake}", fakeURL)
		}
		for k, v := range s.opts.ServiceEnv[name] {
			env[k] = v
		}
		add(&proc{name: name, bin: path(bin), port: port, metrics: metrics, env: envList(env), micro: bin,
			ready: httpReady(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))})
	}
	for i := range s.opts.Keyds {
		service(fmt.Sprintf("keyd-%d", i), "keyd")
	}
	service("logd", "logd")
	for i := 1; i < s.opts.Logds; i++ {
		service(fmt.Sprintf("logd-%d", i), "logd")
	}
	service("admind", "admind")
	for i := 1; i < s.opts.Admins; i++ {
		service(fmt.Sprintf("admind-%d", i), "admind")
	}
	service("schedulerd", "schedulerd")
	for i := range s.opts.Edges {
		service(fmt.Sprintf("edge-%d", i), "edge")
	}
}

// planCluster adds the nodes of a NATS cluster ("nats-0"…) with JetStream,
// each routing to every other, and returns their client URLs as one
// comma-separated NATS_URL.
func (s *Stack) planCluster(add func(*proc)) string {
	n := s.opts.NATSCluster
	ports, clusterPorts := make([]int, n), make([]int, n)
	var urls, routes []string
	for i := range n {
		ports[i], clusterPorts[i] = freePort(), freePort()
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", clusterPorts[i]))
	}
	for i := range n {
		name := fmt.Sprintf("nats-%d", i)
		add(&proc{name: name, bin: s.build.Path("nats-server"), port: ports[i],
			args: []string{"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(ports[i]), "-sd", "{dir}/" + name,
				"-n", name, "--cluster_name", "gb-e2e", "--cluster", fmt.Sprintf("nats://127.0.0.1:%d", clusterPorts[i]),
				"--routes", strings.Join(routes, ",")},
			// This node, and a JetStream meta leader elected in the cluster.
			ready: jetStreamReady(urls[i], nil)})
	}
	return strings.Join(urls, ",")
}

// jetStreamReady connects to url and asks JetStream for the account's info,
// which needs JetStream up (and, in a cluster, a meta leader).
func jetStreamReady(url string, opts []nats.Option) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		nc, err := nats.Connect(url, append(opts, nats.Timeout(time.Second), nats.DontRandomize())...)
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := nc.JetStream()
		if err != nil {
			return err
		}
		_, err = js.AccountInfo(nats.Context(ctx))
		return err
	}
}

// envList is a minimal environment: the variables a Go binary needs from the host, then
// ours. The developer's own API_KEYS etc. must not leak into the stack.
func envList(m map[string]string) []string {
	var out []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOCOVERDIR", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// handedOut holds every port freePort returned in this test binary: a port is
// only probed free, not held, until its process binds it.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort picks a free port below Linux's ephemeral range (32768 and up by
// default): a ":0" port could be handed by the kernel to another process's
// outgoing connection before our process binds it, which happened once the
// stacks gained a METRICS_ADDR port per service.
func freePort() int {
	handedOut.Lock()
	defer handedOut.Unlock()
	for {
		port := 20000 + rand.IntN(12000)
		if handedOut.ports[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // taken
		}
		_ = l.Close()
		handedOut.ports[port] = true
		return port
	}
}

func httpReady(url string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

// start launches one process and waits until it is ready.
func (s *Stack) start(name string) error {
	s.mu.Lock()
	p, ok := s.procs[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("no process %q in this stack", name)
	}
	if p.cmd != nil && !exited(p) {
		return fmt.Errorf("%s is already running", name)
	}
	args := make([]string, len(p.args))
	for i, a := range p.args {
		args[i] = strings.ReplaceAll(a, "{dir}", s.dir)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== harness: start %s at %s\n", name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, args...)
	cmd.Env = make([]string, len(p.env))
	for i, kv := range p.env {
		cmd.Env[i] = strings.ReplaceAll(kv, "{dir}", s.dir)
	}
	if p.env == nil {
		cmd.Env = envList(nil)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p.cmd, p.done, p.err, p.stopping = cmd, make(chan struct{}), nil, false
	go func(done chan struct{}) {
		p.err = cmd.Wait()
		fmt.Fprintf(logf, "=== harness: %s exited (%v) at %s\n", name, exitText(p.err), time.Now().Format(time.RFC3339Nano))
		logf.Close()
		close(done)
	}(p.done)

	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ReadyTimeout)
	defer cancel()
	var last error
	for {
		if exited(p) {
			p.stopping = true // reported here, not again at teardown
			return fmt.Errorf("%s exited during start (%v); log:\n%s", name, p.err, tail(p.logPath, 30))
		}
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		last = p.ready(cctx)
		if last == nil && p.micro != "" {
			last = s.microUp(cctx, p.micro)
		}
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v; log:\n%s", name, s.opts.ReadyTimeout, last, tail(p.logPath, 30))
		case <-p.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// microUp checks that every running process of a service answers its micro service's
// $SRV.PING, i.e. each has finished starting.
func (s *Stack) microUp(ctx context.Context, service string) error {
	want := 0
	s.mu.Lock()
	for _, q := range s.procs {
		if q.micro == service && !exited(q) {
			want++
		}
	}
	s.mu.Unlock()
	nc, err := nats.Connect(s.NATSURL(), append(s.harnessOpts(), nats.Name("e2e-harness"), nats.Timeout(time.Second))...)
	if err != nil {
		return err
	}
	defer nc.Close()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	if err := nc.PublishRequest("$SRV.PING."+service, inbox, nil); err != nil {
		return err
	}
	got := 0
	deadline := time.Now().Add(300 * time.Millisecond)
	for got < want {
		if _, err := sub.NextMsg(time.Until(deadline)); err != nil {
			break
		}
		got++
	}
	if got < want {
		return fmt.Errorf("micro service %s: %d of %d replicas answer $SRV.PING", service, got, want)
	}
	return ctx.Err()
}

func exited(p *proc) bool {
	if p.done == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig and waits for the exit (SIGKILL after grace).
func (s *Stack) signal(name string, sig syscall.Signal, grace time.Duration) error {
	s.mu.Lock()
	p, ok := s.procs[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("no process %q in this stack", name)
	}
	if exited(p) {
		return nil
	}
	s.mu.Lock()
	p.stopping = true
	s.mu.Unlock()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		if sig == syscall.SIGTERM && p.err != nil {
			return fmt.Errorf("%s did not exit cleanly on SIGTERM: %v", name, p.err)
		}
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s ignored %v for %s and was killed", name, sig, grace)
	}
}

// Stop sends SIGTERM and waits for a clean exit; a non-zero exit or one slower than 10 s
// (then SIGKILL) is a test error, since every service must drain cleanly.
func (s *Stack) Stop(name string) {
	s.t.Helper()
	if err := s.signal(name, syscall.SIGTERM, 10*time.Second); err != nil {
		s.t.Errorf("e2e: %v", err)
	}
}

// StopWithin is Stop with another grace period.
func (s *Stack) StopWithin(name string, grace time.Duration) {
	s.t.Helper()
	if err := s.signal(name, syscall.SIGTERM, grace); err != nil {
		s.t.Errorf("e2e: %v", err)
	}
}

// Kill sends SIGKILL: the process gets no chance to drain.
func (s *Stack) Kill(name string) {
	s.t.Helper()
	_ = s.signal(name, syscall.SIGKILL, 10*time.Second)
}

// Start starts a stopped or killed process again (same port, data and env) and waits
// until it is ready.
func (s *Stack) Start(name string) {
	s.t.Helper()
	if err := s.start(name); err != nil {
		s.t.Fatalf("e2e: %v", err)
	}
}

// Launch is Start returning the error instead of failing the test: for goroutines other
// than the test's own, where t.Fatal must not be called.
func (s *Stack) Launch(name string) error { return s.start(name) }

// Restart is Stop then Start.
func (s *Stack) Restart(name string) {
	s.t.Helper()
	s.Stop(name)
	s.Start(name)
}

// Running reports whether the process is alive.
func (s *Stack) Running(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.procs[name]
	return ok && !exited(p)
}

// Names lists the stack's processes in start order.
func (s *Stack) Names() []string { return slices.Clone(s.order) }

// URL is http://127.0.0.1:<port> of a process.
func (s *Stack) URL(name string) string {
	p, ok := s.procs[name]
	if !ok {
		s.t.Fatalf("e2e: no process %q", name)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", p.port)
}

// EdgeURL is the base URL of edge replica i.
func (s *Stack) EdgeURL(i int) string { return s.URL(fmt.Sprintf("edge-%d", i)) }

// MetricsURL is a service process's /metrics (its METRICS_ADDR).
func (s *Stack) MetricsURL(name string) string {
	return fmt.Sprintf("http://127.0.0.1:%d/metrics", s.procs[name].metrics)
}

// AdminURL is admind's base URL.
func (s *Stack) AdminURL() string { return s.URL("admind") }

// NATSURL is the nats-server client URL; with NATSCluster, every node's,
// comma-separated (as the services get it).
func (s *Stack) NATSURL() string {
	if s.opts.NATSCluster >= 3 {
		var urls []string
		for i := range s.opts.NATSCluster {
			urls = append(urls, s.NATSNodeURL(fmt.Sprintf("nats-%d", i)))
		}
		return strings.Join(urls, ",")
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", s.procs["nats"].port)
}

// NATSNodeURL is the client URL of one node of a NATSCluster ("nats-1").
func (s *Stack) NATSNodeURL(name string) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", s.procs[name].port)
}

// TapURL is the URL an operator's `nats sub 'gb.>'` would use: NATSURL, with
// the read-only "tap" user when the stack runs under NATSConfig.
func (s *Stack) TapURL() string {
	if s.opts.NATSConfig == "" {
		return s.NATSURL()
	}
	return fmt.Sprintf("nats://tap:%s@127.0.0.1:%d", natsPassword("tap"), s.procs["nats"].port)
}

// TapSubject is what the tap user may read: "gb.events.>" under NATSConfig,
// everything ("gb.>") otherwise.
func (s *Stack) TapSubject() string {
	if s.opts.NATSConfig == "" {
		return "gb.>"
	}
	return "gb.events.>"
}

// harnessOpts log the harness in as admind under NATSConfig (with admind's
// reply prefix, the only one it may subscribe to): it pings micro services
// and reads JetStream account info.
func (s *Stack) harnessOpts() []nats.Option {
	if s.opts.NATSConfig == "" {
		return nil
	}
	return []nats.Option{nats.UserInfo("admind", natsPassword("admind")), nats.CustomInboxPrefix("_INBOX_admind")}
}

// NATSAs connects as one of the deployment config's users, with its reply
// prefix, and closes the connection at test cleanup. It needs NATSConfig.
func (s *Stack) NATSAs(t testing.TB, user string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	if s.opts.NATSConfig == "" {
		t.Fatal("e2e: NATSAs needs Options.NATSConfig")
	}
	base := []nats.Option{nats.Name("e2e-" + user), nats.UserInfo(user, natsPassword(user)), nats.CustomInboxPrefix("_INBOX_" + user)}
	nc, err := nats.Connect(s.NATSURL(), append(base, opts...)...)
	if err != nil {
		t.Fatalf("e2e: nats as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// MongoURI is the gb-store (FerretDB) URI; the database is "gemini_balance".
func (s *Stack) MongoURI() string {
	return fmt.Sprintf("mongodb://127.0.0.1:%d/", s.procs["store"].port)
}

// MongoDB is the database name the services use.
func (s *Stack) MongoDB() string { return "gemini_balance" }

// FakeURL is the fake upstream's base URL (the services' BASE_URL).
func (s *Stack) FakeURL() string { return s.URL("fake") }

// Fake programs and inspects the fake upstream process.
func (s *Stack) Fake() fakegemini.Remote { return fakegemini.Remote{URL: s.FakeURL()} }

// Keys, Tokens and AuthToken are the configured secrets.
func (s *Stack) Keys() []string   { return slices.Clone(s.opts.Keys) }
func (s *Stack) Tokens() []string { return slices.Clone(s.opts.Tokens) }
func (s *Stack) AuthToken() string {
	return s.opts.AuthToken
}

// Dir is the stack's working directory (logs/, nats/, store/).
func (s *Stack) Dir() string { return s.dir }

// Log is everything process name wrote so far (all its runs).
func (s *Stack) Log(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "logs", name+".log"))
	return string(b)
}

// Logs is every process's output, keyed by process name.
func (s *Stack) Logs() map[string]string {
	out := map[string]string{}
	for _, name := range s.order {
		out[name] = s.Log(name)
	}
	return out
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  | " + strings.Join(lines, "\n  | ")
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// teardown reports crashes, stops everything in reverse order, and on failure keeps the
// directory and says where.
func (s *Stack) teardown() {
	s.mu.Lock()
	for _, name := range s.order {
		p := s.procs[name]
		if p.cmd != nil && exited(p) && !p.stopping {
			s.t.Errorf("e2e: %s exited on its own (%v); log:\n%s", name, exitText(p.err), tail(p.logPath, 30))
		}
	}
	s.mu.Unlock()
	var errs []error
	// Reverse start order: services before the store and NATS they drain into.
	for i := len(s.order) - 1; i >= 0; i-- {
		if err := s.signal(s.order[i], syscall.SIGTERM, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		s.t.Errorf("e2e: teardown: %v", errors.Join(errs...))
	}
	if s.t.Failed() || os.Getenv("E2E_KEEP") != "" {
		var b strings.Builder
		for _, name := range s.order {
			fmt.Fprintf(&b, "--- %s (last lines)\n%s\n", name, tail(s.procs[name].logPath, 15))
		}
		s.t.Logf("e2e: logs kept in %s\n%s", filepath.Join(s.dir, "logs"), b.String())
		return
	}
	_ = os.RemoveAll(s.dir)
}
