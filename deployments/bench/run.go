package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gemini-balance-go/testkit/fakegemini"
)

const token = "sk-bench-client-token-000000000000000000000000"

var benchKeys = []string{
	"AIzaSyBENCH-key-000000000000000000000001", "AIzaSyBENCH-key-000000000000000000000002",
	"AIzaSyBENCH-key-000000000000000000000003", "AIzaSyBENCH-key-000000000000000000000004",
	"AIzaSyBENCH-key-000000000000000000000005", "AIzaSyBENCH-key-000000000000000000000006",
	"AIzaSyBENCH-key-000000000000000000000007", "AIzaSyBENCH-key-000000000000000000000008",
}

type options struct {
	reps, conns, bursts, burst int
	dur                        time.Duration
	targets                    []string
	load, allinone, profile    string
}

// target is one column of the table: a gateway process under test.
type target struct {
	kind, name string // kind: floor, edge or gb
	url, cred  string
	proc       *proc
	bin        string // another build under test (edge=BIN, gb=BIN); not profiled
	// answered counts the requests the target answered so far; the
	// all-in-one's store must end up with a log entry for each.
	answered int
	reps     []rep
	// events and batches are edge's published events and batch messages
	// during the all-in-one's first non-stream window (from /metrics).
	events, batches float64
}

// rep is one target's figures in one repetition.
type rep struct {
	load  loadResult
	cpu   time.Duration // whole process, load start until every log is stored
	hwm   int64         // peak RSS during that window
	drain time.Duration // from the end of the load until every log is stored
	ttfb  time.Duration // p50 of time to first event over the stream bursts
}

func (r rep) cpuPer1k() float64 { return ms(r.cpu) / float64(r.load.answered) * 1000 }

var columns = map[string]string{"floor": "floor", "edge": "edge only", "gb": "all-in-one"}

func run(o options) error {
	if len(o.targets) == 0 || o.targets[0] != "floor" {
		return errors.New("-targets must start with floor: the ratios are to the floor")
	}
	for _, spec := range o.targets {
		if k, _, _ := strings.Cut(spec, "="); columns[k] == "" || spec == "floor=" {
			return fmt.Errorf("-targets: unknown target %q (floor, edge, gb, edge=BENCH_BINARY, gb=GEMINI_BALANCE_BINARY)", spec)
		}
	}
	if o.profile != "" && o.allinone != "" {
		return errors.New("-profile needs the in-process all-in-one: drop -allinone")
	}
	load, loadName, err := pickLoader(o.load)
	if err != nil {
		return err
	}
	// Ctrl-C ends the run through its deferred stops, so no role outlives it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fake, err := startRole("fake", "fake")
	if err != nil {
		return err
	}
	defer fake.stop()
	if err := (fakegemini.Remote{URL: fake.url}).Always(ctx, "bench-stream", fakegemini.Reply{Chunks: streamChunks}); err != nil {
		return err
	}
	keys := strings.Join(benchKeys, ",")
	var targets []*target
	defer func() {
		for _, t := range targets {
			t.proc.stop()
		}
	}()
	for _, spec := range o.targets {
		k, bin, _ := strings.Cut(spec, "=")
		t := &target{kind: k, name: columns[k], cred: token, bin: bin}
		if bin != "" {
			t.name += " [" + filepath.Base(bin) + "]"
		}
		switch {
		case k == "floor":
			t.proc, err = startRole("floor", "floor", fake.url, keys)
		case k == "edge":
			control := freeAddr()
			if t.proc, err = startRoleOf(bin, "edge only", "edge", fake.url, keys, control); err == nil {
				t.proc.control = control
			}
		case k == "gb" && bin != "":
			dir, derr := os.MkdirTemp("", "bench-gb-")
			if derr != nil {
				return derr
			}
			defer os.RemoveAll(dir)
			t.proc, err = startAllInOne(bin, fake.url, token, benchKeys, freePort(), freePort(), dir)
		case k == "gb":
			dir, derr := os.MkdirTemp("", "bench-gb-")
			if derr != nil {
				return derr
			}
			defer os.RemoveAll(dir)
			t.proc, err = startAllInOne(o.allinone, fake.url, token, benchKeys, freePort(), freePort(), dir)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		t.url = t.proc.url
		targets = append(targets, t)
	}

	fmt.Printf("bench: %s; %d interleaved reps of %s each, %d connections (%s), one fake upstream, %d keys\n",
		strings.Join(o.targets, " vs "), o.reps, o.dur, o.conns, loadName, len(benchKeys))
	fmt.Println("floor = bare httputil.ReverseProxy injecting keys (full duplex); all-in-one = gemini-balance with embedded NATS and FerretDB on SQLite, every request logged")
	for _, t := range targets {
		if err := warm(ctx, t, 400); err != nil {
			return fmt.Errorf("%s warm-up: %w", t.name, err)
		}
		if _, err := burst(ctx, t, 50); err != nil {
			return fmt.Errorf("%s warm-up streams: %w", t.name, err)
		}
		t.answered += 450
		if t.kind == "gb" {
			if err := t.drain(ctx, t.answered); err != nil {
				return fmt.Errorf("%s warm-up: %w", t.name, err)
			}
		}
	}
	for i := range o.reps {
		for _, t := range targets {
			prof := ""
			if i == 0 && o.profile != "" && t.proc.control != "" && t.bin == "" {
				prof = o.profile
				if t.kind == "edge" {
					prof = strings.TrimSuffix(o.profile, ".pprof") + "-edge.pprof"
				}
			}
			r, err := t.measure(ctx, o, load, prof)
			if err != nil {
				return fmt.Errorf("%s, rep %d: %w", t.name, i+1, err)
			}
			t.reps = append(t.reps, r)
			fmt.Fprintf(os.Stderr, "rep %d %-10s %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  CPU %6.1f ms/1k  RSS %5.1f MB  drain %5.2f s  TTFB p50 %6.1f ms  (%d answered, %d failed)\n",
				i+1, t.name, r.load.rps(), ms(r.load.p50), ms(r.load.p99), r.cpuPer1k(), mb(r.hwm), r.drain.Seconds(), ms(r.ttfb), r.load.answered, r.load.failed)
		}
	}
	printTable(o, targets)
	if o.profile != "" {
		for _, t := range targets {
			if len(t.reps) == 0 || t.proc.control == "" || t.bin != "" {
				continue
			}
			path, title := o.profile, "the all-in-one, first rep's non-stream load until every log is stored"
			if t.kind == "edge" {
				path, title = strings.TrimSuffix(o.profile, ".pprof")+"-edge.pprof", "edge only, first rep's non-stream load"
			}
			if err := summarizeWindow(title, path, float64(t.reps[0].load.answered)); err != nil {
				return err
			}
		}
	}
	// Last, as it is the slowest read: every answered request has its log.
	for _, t := range targets {
		if t.kind != "gb" {
			continue
		}
		if t.batches > 0 {
			fmt.Printf("\n%s: edge published %.0f events in %.0f batch messages (%.1f per message) in its first window\n", t.name, t.events, t.batches, t.events/t.batches)
		}
		n, err := t.logsStored(ctx)
		if err != nil {
			return fmt.Errorf("%s: request logs not counted: %w", t.name, err)
		}
		fmt.Printf("%s: %d request logs stored for %d answered requests (every one: %v)\n", t.name, n, t.answered, n >= t.answered)
		if n < t.answered {
			return fmt.Errorf("%s lost request logs: %d stored, %d answered", t.name, n, t.answered)
		}
	}
	return nil
}

// measure runs one rep on t: the non-stream load (CPU, RSS and, for the
// all-in-one, the wait until the store holds every log), then the bursts.
func (t *target) measure(ctx context.Context, o options, load loader, profile string) (rep, error) {
	var r rep
	if err := t.proc.resetHWM(); err != nil {
		return r, fmt.Errorf("reset VmHWM: %w", err)
	}
	var ev0, b0 float64
	if t.kind == "gb" && profile != "" && t.proc.metrics != "" {
		ev0, b0, _ = eventBatches(ctx, t.proc.metrics)
	}
	if profile != "" {
		if err := profileSwitch(ctx, t.proc.control, profile, true); err != nil {
			return r, err
		}
	}
	cpu0 := t.proc.cpu()
	lr, err := load(ctx, t, o.conns, o.dur)
	if err != nil {
		return r, err
	}
	loaded := time.Now()
	r.load = lr
	t.answered += lr.answered + lr.failed // a failed request is logged too
	if t.kind == "gb" {
		if err := t.drain(ctx, t.answered); err != nil {
			return r, err
		}
	}
	r.cpu, r.drain, r.hwm = t.proc.cpu()-cpu0, time.Since(loaded), t.proc.hwm()
	if profile != "" {
		if err := profileSwitch(ctx, t.proc.control, profile, false); err != nil {
			return r, err
		}
		if t.kind == "gb" && t.proc.metrics != "" {
			if ev1, b1, err := eventBatches(ctx, t.proc.metrics); err == nil {
				t.events, t.batches = ev1-ev0, b1-b0
			}
		}
	}
	var ttfb []time.Duration
	if profile != "" { // the bursts get their own profile: PATH-bursts.pprof
		if err := profileSwitch(ctx, t.proc.control, strings.TrimSuffix(profile, ".pprof")+"-bursts.pprof", true); err != nil {
			return r, err
		}
	}
	for range o.bursts {
		d, err := burst(ctx, t, o.burst)
		if err != nil {
			return r, fmt.Errorf("stream burst: %w", err)
		}
		ttfb = append(ttfb, d...)
		t.answered += o.burst
	}
	if profile != "" {
		if err := profileSwitch(ctx, t.proc.control, "", false); err != nil {
			return r, err
		}
	}
	r.ttfb = pct(ttfb, .5)
	if t.kind == "gb" { // the next window starts with the store idle
		if err := t.drain(ctx, t.answered); err != nil {
			return r, err
		}
	}
	return r, nil
}

func pickLoader(name string) (loader, string, error) {
	_, werr := exec.LookPath("wrk")
	switch {
	case name == "wrk" && werr != nil:
		return nil, "", fmt.Errorf("-load wrk: %w", werr)
	case name == "wrk" || name == "auto" && werr == nil:
		return wrkLoad, "wrk -t2", nil
	case name == "go" || name == "auto":
		return goLoad, "Go load generator", nil
	}
	return nil, "", fmt.Errorf("-load: %q is not wrk, go or auto", name)
}

// printTable prints the #13 table: the median of the reps for each figure,
// with the ratio to the floor's median.
func printTable(o options, targets []*target) {
	med := func(t *target, f func(rep) float64) float64 {
		v := make([]float64, len(t.reps))
		for i, r := range t.reps {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	floor := targets[0]
	ratio := func(t *target, f func(rep) float64) string {
		if t == floor {
			return ""
		}
		return fmt.Sprintf(" (%.2f×)", med(t, f)/med(floor, f))
	}
	rps := func(r rep) float64 { return r.load.rps() }
	p50 := func(r rep) float64 { return ms(r.load.p50) }
	p99 := func(r rep) float64 { return ms(r.load.p99) }
	ttfb := func(r rep) float64 { return ms(r.ttfb) }
	cpu := func(r rep) float64 { return r.cpuPer1k() }
	rss := func(r rep) float64 { return mb(r.hwm) }
	rows := []struct {
		name string
		cell func(t *target) string
	}{
		{"non-stream req/s", func(t *target) string { return thousands(med(t, rps)) + ratio(t, rps) }},
		{"non-stream p50 / p99 ms", func(t *target) string {
			s := fmt.Sprintf("%.2f / %.2f", med(t, p50), med(t, p99))
			if t != floor {
				s += fmt.Sprintf(" (%.2f× / %.2f×)", med(t, p50)/med(floor, p50), med(t, p99)/med(floor, p99))
			}
			return s
		}},
		{fmt.Sprintf("stream burst (%d×%d streams) TTFB p50 ms", o.burst, o.bursts), func(t *target) string {
			return fmt.Sprintf("%.1f", med(t, ttfb)) + ratio(t, ttfb)
		}},
		{"CPU per 1k requests, whole run, deferred log writes included", func(t *target) string {
			return fmt.Sprintf("%.0f ms", med(t, cpu)) + ratio(t, cpu)
		}},
		{"peak RSS (non-stream load)", func(t *target) string { return fmt.Sprintf("%.0f MB", med(t, rss)) }},
	}
	fmt.Printf("\n| median of %d reps |", o.reps)
	for _, t := range targets {
		fmt.Printf(" %s |", t.name)
	}
	fmt.Print("\n|---|")
	for range targets {
		fmt.Print("---|")
	}
	fmt.Println()
	for _, row := range rows {
		fmt.Printf("| %s |", row.name)
		for _, t := range targets {
			fmt.Printf(" %s |", row.cell(t))
		}
		fmt.Println()
	}
	for _, t := range targets {
		if t.kind == "gb" {
			fmt.Printf("\nall-in-one: the store had every log %.2f s (median) after the load ended; #13's goals: req/s ≥ 0.9×, p99 ≤ 1.5×, TTFB p50 ≤ 1.2×, CPU ≤ 1.5× the floor's, peak RSS ≤ 100 MB\n",
				med(t, func(r rep) float64 { return r.drain.Seconds() }))
		}
	}
}

// streamChunks is the scripted answer of model bench-stream: 65 events of
// about 40 characters each.
var streamChunks = func() [][]fakegemini.Part {
	out := make([][]fakegemini.Part, streamEvents)
	for i := range out {
		out[i] = []fakegemini.Part{fakegemini.Text(fmt.Sprintf("chunk %02d of the benchmark stream text. ", i))}
	}
	return out
}()

// thousands formats v with no decimals and a comma between thousands.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func mb(b int64) float64         { return float64(b) / (1 << 20) }
