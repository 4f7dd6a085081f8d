package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gemini-balance-go/deployments/allinone/app"
	"github.com/gemini-balance-go/shared/config"
)

// serveAllInOne is the "gb" role: the all-in-one (app.Start, as
// deployments/allinone's main does, configured by the same environment) in
// this process, with the profile switch on control.
func serveAllInOne(control string) error {
	if err := serveControl(control); err != nil {
		return err
	}
	infra, err := config.LoadInfra()
	if err != nil {
		return err
	}
	settings, err := config.LoadSettings()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.Start(ctx, app.Options{Infra: infra, Settings: settings, LogOutput: os.Stderr})
	if err != nil {
		return err
	}
	if err := app.ReleaseMemory(ctx); err != nil { // as app.Run does
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return a.Stop(sctx)
}

// serveControl serves POST /profile/start?path=FILE and POST /profile/stop
// on addr, so the benchmark profiles exactly the window it counts CPU over
// (the load and the store's deferred work), not a fixed number of seconds.
func serveControl(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("control listener: %w", err)
	}
	var mu sync.Mutex
	var f *os.File
	var stopHeap func()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /profile/start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		out, err := os.Create(r.URL.Query().Get("path"))
		if err == nil {
			if err = pprof.StartCPUProfile(out); err != nil {
				out.Close()
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		f = out
		stopHeap = keepPeakHeap(strings.TrimSuffix(r.URL.Query().Get("path"), ".pprof") + "-heap.pprof")
	})
	mux.HandleFunc("POST /profile/stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if f == nil {
			http.Error(w, "no profile running", http.StatusConflict)
			return
		}
		pprof.StopCPUProfile()
		stopHeap()
		// Allocation counts are cumulative: against -start, the window's.
		if out, err := os.Create(strings.TrimSuffix(f.Name(), ".pprof") + "-heap-end.pprof"); err == nil {
			_ = pprof.WriteHeapProfile(out)
			_ = out.Close()
		}
		if err := f.Close(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		f = nil
	})
	go func() { _ = http.Serve(l, mux) }()
	return nil
}

// keepPeakHeap writes the heap profile at the start of the window to
// PATH-start.pprof, then a heap profile to path each time the live heap (as of
// the last GC) is larger than at any earlier check, until stop is called, so
// the file shows what is in memory at the window's peak, not after it.
func keepPeakHeap(path string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	if out, err := os.Create(strings.TrimSuffix(path, ".pprof") + "-start.pprof"); err == nil {
		runtime.GC() // the live heap as the window starts, for -diff_base
		_ = pprof.WriteHeapProfile(out)
		_ = out.Close()
	}
	go func() {
		defer close(finished)
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var peak uint64
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if live := sample[0].Value.Uint64(); live > peak {
				peak = live
				if out, err := os.Create(path); err == nil {
					_ = pprof.WriteHeapProfile(out)
					_ = out.Close()
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// profileSwitch starts (on) or stops a CPU profile in a role's process.
func profileSwitch(ctx context.Context, control, path string, on bool) error {
	u := "http://" + control + "/profile/stop"
	if on {
		u = "http://" + control + "/profile/start?path=" + url.QueryEscape(path)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("profile switch: status %d: %s", res.StatusCode, b)
	}
	return nil
}

// component names a part of the all-in-one by the packages on a sample's
// stack. The first rule with a matching frame wins, so a stack is counted
// once: the store and the NATS server run on their own goroutines; logd,
// keyd and edge's parts are recognised by their own frames; what is left
// are the client libraries' I/O goroutines and the Go runtime.
var components = []struct {
	name  string
	match []string
}{
	// The store by wire command, so a data-model change shows where it saves.
	{"store: insert (FerretDB + SQLite)", []string{"FerretDB/internal/handler.(*Handler).MsgInsert"}},
	{"store: delete (FerretDB + SQLite)", []string{"FerretDB/internal/handler.(*Handler).MsgDelete"}},
	{"store: update (FerretDB + SQLite)", []string{"FerretDB/internal/handler.(*Handler).MsgUpdate", "FerretDB/internal/handler.(*Handler).MsgFindAndModify"}},
	{"store: find, count, aggregate (FerretDB + SQLite)", []string{"FerretDB/internal/handler.(*Handler).MsgFind", "FerretDB/internal/handler.(*Handler).MsgGetMore",
		"FerretDB/internal/handler.(*Handler).MsgCount", "FerretDB/internal/handler.(*Handler).MsgAggregate"}},
	{"store: other (FerretDB + SQLite)", []string{"github.com/FerretDB/", "modernc.org/"}},
	{"NATS server (JetStream)", []string{"github.com/nats-io/nats-server/"}},
	{"logd (ingest, rollups, its mongo calls)", []string{"gemini-balance-go/logd/"}},
	{"keyd (pool, endpoints)", []string{"gemini-balance-go/keyd/", "main.keydPeer"}},
	{"admind (the benchmark's admin API polls)", []string{"gemini-balance-go/admind/"}},
	{"edge: keyd client (acquire, report)", []string{"gemini-balance-go/edge/keydclient."}},
	{"edge: event publisher (encode, Watermill)", []string{"gemini-balance-go/edge/events.", "ThreeDotsLabs/watermill"}},
	{"edge: HTTP, auth, relay, upstream client", []string{"gemini-balance-go/edge/", "github.com/gin-gonic/", "net/http."}},
	{"nats.go client I/O (all services)", []string{"github.com/nats-io/nats.go"}},
	{"mongo driver I/O (logd, keyd, admind)", []string{"go.mongodb.org/mongo-driver"}},
	{"Go runtime: GC workers", []string{"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge"}},
	{"Go runtime: scheduler, netpoll, other", []string{"runtime."}},
}

// summarizeWindow prints a window's CPU by component and, when its heap profiles
// at the start and end sit beside the CPU profile, its allocation.
func summarizeWindow(title, path string, requests float64) error {
	if err := summarizeProfile(title, path, requests); err != nil {
		return err
	}
	heap := strings.TrimSuffix(path, ".pprof") + "-heap"
	if _, err := os.Stat(heap + "-end.pprof"); err != nil {
		return nil
	}
	return summarizeAllocs(title, heap+"-start.pprof", heap+"-end.pprof", requests)
}

// summarizeProfile prints CPU time by component (from `go tool pprof
// -traces`) and the top functions, per 1,000 requests served in the window.
func summarizeProfile(title, path string, requests float64) error {
	out, err := exec.Command("go", "tool", "pprof", "-traces", path).Output()
	if err != nil {
		return fmt.Errorf("go tool pprof -traces: %w", err)
	}
	by, total := byComponent(out, func(v string) (float64, bool) {
		d, err := time.ParseDuration(v)
		return float64(d), err == nil
	})
	if total == 0 {
		return fmt.Errorf("profile %s has no samples", path)
	}
	fmt.Printf("\n== CPU profile: %s (%s) ==\n", title, path)
	fmt.Printf("%-50s %9s %7s %12s\n", "component", "CPU", "share", "ms/1k req")
	for _, n := range sortedByValue(by) {
		d := time.Duration(by[n])
		fmt.Printf("%-50s %9s %6.1f%% %12.1f\n", n, d.Round(time.Millisecond), 100*by[n]/total, ms(d)/requests*1000)
	}
	fmt.Printf("%-50s %9s %6.1f%% %12.1f\n", "total", time.Duration(total).Round(time.Millisecond), 100.0, ms(time.Duration(total))/requests*1000)
	top, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=30", path).Output()
	if err == nil {
		fmt.Println("\ntop functions by cumulative CPU (go tool pprof -top -cum):")
		lines := strings.Split(string(top), "\n")
		for _, l := range lines {
			if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
				continue
			}
			fmt.Println(l)
		}
	}
	return nil
}

// summarizeAllocs prints the bytes allocated over the window by component,
// per request: the heap profile at its end against the one at its start
// (allocation counts are cumulative and sampled, so the figures are
// estimates; they count what the collector then has to reclaim).
func summarizeAllocs(title, start, end string, requests float64) error {
	out, err := exec.Command("go", "tool", "pprof", "-traces", "-sample_index=alloc_space", "-diff_base", start, end).Output()
	if err != nil {
		return fmt.Errorf("go tool pprof -traces -diff_base: %w", err)
	}
	by, total := byComponent(out, parseBytes)
	if total <= 0 {
		return fmt.Errorf("heap profiles %s, %s: nothing allocated between them", start, end)
	}
	fmt.Printf("\n== Allocation: %s (%s against %s) ==\n", title, end, start)
	fmt.Printf("%-50s %9s %7s %12s\n", "component", "MB", "share", "KB/request")
	for _, n := range sortedByValue(by) {
		fmt.Printf("%-50s %9.1f %6.1f%% %12.2f\n", n, by[n]/1e6, 100*by[n]/total, by[n]/1e3/requests)
	}
	fmt.Printf("%-50s %9.1f %6.1f%% %12.2f\n", "total", total/1e6, 100.0, total/1e3/requests)
	return nil
}

// parseBytes reads a pprof size ("512kB", "1.50MB", "-2GB").
func parseBytes(v string) (float64, bool) {
	for _, u := range []struct {
		suffix string
		scale  float64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			f, err := strconv.ParseFloat(n, 64)
			return f * u.scale, err == nil
		}
	}
	return 0, false
}

func sortedByValue(by map[string]float64) []string {
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(by[b], by[a]) })
	return names
}

// byComponent sums `go tool pprof -traces` output by component (the first
// rule of components that matches a frame of the sample's stack).
func byComponent(traces []byte, value func(string) (float64, bool)) (by map[string]float64, total float64) {
	by = map[string]float64{}
	var cur float64
	var frames []string
	flush := func() {
		if cur == 0 {
			return
		}
		name := "other"
	rules:
		for _, c := range components {
			for _, f := range frames {
				for _, m := range c.match {
					if strings.Contains(f, m) {
						name = c.name
						break rules
					}
				}
			}
		}
		by[name] += cur
		total += cur
		cur, frames = 0, frames[:0]
	}
	sc := bufio.NewScanner(bytes.NewReader(traces))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	head := false // the next line is a sample's first: "<value> <leaf frame>"
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----") {
			flush()
			head = true
			continue
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case head && strings.HasSuffix(fields[0], ":"): // a label ("bytes: 48B"), before the value
		case head && len(fields) >= 2:
			head = false
			if v, ok := value(fields[0]); ok {
				cur, frames = v, append(frames, fields[1])
			}
		case cur != 0:
			frames = append(frames, fields[0])
		}
	}
	flush()
	return by, total
}

// freeAddr is a loopback address nothing listens on.
func freeAddr() string { return "127.0.0.1:" + strconv.Itoa(freePort()) }

// eventBatches reads, from the all-in-one's /metrics (on its METRICS_ADDR),
// how many request and error events edge has published and in how many
// batch messages.
func eventBatches(ctx context.Context, metricsURL string) (events, batches float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch {
		case strings.HasPrefix(line, "gb_edge_events_published_total{"):
			events += v
		case strings.HasPrefix(line, "gb_edge_events_batch_size_count{"):
			batches += v
		}
	}
	return events, batches, sc.Err()
}
