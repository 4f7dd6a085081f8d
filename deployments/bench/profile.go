package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gemini-balance-go/deployments/allinone/app"
	"github.com/gemini-balance-go/shared/config"
)

// serveAllInOne is the "gb" role: the all-in-one (app.Start, as
// deployments/allinone's main does, configured by the same environment) in
// this process, with net/http/pprof on pprofAddr so -profile can take a CPU
// profile of every component at once.
func serveAllInOne(pprofAddr string) error {
	l, err := net.Listen("tcp", pprofAddr)
	if err != nil {
		return err
	}
	go func() { _ = http.Serve(l, http.DefaultServeMux) }() // net/http/pprof registers there
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
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return a.Stop(sctx)
}

// captureProfile fetches a CPU profile of secs seconds from a pprof endpoint.
func captureProfile(ctx context.Context, pprofURL string, secs int, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", pprofURL, secs), nil)
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
		return fmt.Errorf("pprof: status %d: %s", res.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
	{"FerretDB + SQLite (store)", []string{"github.com/FerretDB/", "modernc.org/"}},
	{"NATS server (JetStream)", []string{"github.com/nats-io/nats-server/"}},
	{"logd (ingest, rollups, its mongo calls)", []string{"gemini-balance-go/logd/"}},
	{"keyd (pool, endpoints)", []string{"gemini-balance-go/keyd/"}},
	{"edge: keyd client (acquire, report)", []string{"gemini-balance-go/edge/keydclient."}},
	{"edge: event publisher (encode, Watermill)", []string{"gemini-balance-go/edge/events.", "ThreeDotsLabs/watermill"}},
	{"edge: HTTP, auth, relay, upstream client", []string{"gemini-balance-go/edge/", "github.com/gin-gonic/", "net/http."}},
	{"nats.go client I/O (all services)", []string{"github.com/nats-io/nats.go"}},
	{"mongo driver I/O (logd, keyd, admind)", []string{"go.mongodb.org/mongo-driver"}},
	{"Go runtime: GC workers", []string{"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge"}},
	{"Go runtime: scheduler, netpoll, other", []string{"runtime."}},
}

// summarizeProfile prints CPU time by component (from `go tool pprof
// -traces`) and the top functions, per 1,000 requests served in the window.
func summarizeProfile(path string, requests float64) error {
	out, err := exec.Command("go", "tool", "pprof", "-traces", path).Output()
	if err != nil {
		return fmt.Errorf("go tool pprof -traces: %w", err)
	}
	by := map[string]time.Duration{}
	var total time.Duration
	var cur time.Duration
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
	sc := bufio.NewScanner(bytes.NewReader(out))
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
		case head && len(fields) >= 2:
			head = false
			if d, err := time.ParseDuration(fields[0]); err == nil {
				cur, frames = d, append(frames, fields[1])
			}
		case cur != 0:
			frames = append(frames, fields[0])
		}
	}
	flush()
	if total == 0 {
		return fmt.Errorf("profile %s has no samples", path)
	}
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return int(by[b] - by[a]) })
	fmt.Printf("\n== CPU profile of the all-in-one under 32 clients (%s) ==\n", path)
	fmt.Printf("%-44s %9s %7s %12s\n", "component", "CPU", "share", "ms/1k req")
	for _, n := range names {
		fmt.Printf("%-44s %9s %6.1f%% %12.1f\n", n, by[n].Round(time.Millisecond), 100*float64(by[n])/float64(total), ms(by[n])/requests*1000)
	}
	fmt.Printf("%-44s %9s %6.1f%% %12.1f\n", "total", total.Round(time.Millisecond), 100.0, ms(total)/requests*1000)
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

// startAllInOneRole runs the "gb" role of this binary (the all-in-one
// in-process, with pprof) under the same environment as startAllInOne.
func startAllInOneRole(fakeURL, token string, keys []string, port, natsPort int, dataDir, pprofAddr string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "gb", pprofAddr)
	return waitAllInOne(cmd, fakeURL, token, keys, port, natsPort, dataDir)
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
