// Command edgebench measures what the gateway adds on loopback. It runs the
// fake Gemini upstream, a bare httputil.ReverseProxy that injects keys (full
// duplex) and the gemini-balance all-in-one (embedded NATS and FerretDB,
// keyd, logd writing every request, edge) as separate processes, and loads
// each of them side by side with calling the fake directly:
//
//	go build -o /tmp/gb ./deployments/allinone && go run ./deployments/bench -allinone /tmp/gb
//
// A fourth row, "edge only", is edge with embedded NATS and a minimal keyd
// peer but no logd: it separates edge's own cost from request logging.
//
// It prints added latency p50/p99 at 1 and 32 clients, throughput, CPU per
// 1,000 requests of the gateway processes (from /proc), time to first byte
// and chunk throughput of streams, and memory per open stream.
//
// With -profile FILE the all-in-one runs inside this binary (the "gb" role:
// the same app.Start, plus net/http/pprof), a CPU profile is taken during its
// 32-client generateContent run, and CPU time is printed by component
// (FerretDB, NATS server, logd, keyd, edge's parts, client I/O, runtime):
//
//	go run ./deployments/bench -targets bare,gb -streams 0 -profile /tmp/gb-cpu.pprof
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

func main() {
	if len(os.Args) > 1 {
		if addr := os.Getenv("EDGEBENCH_PPROF"); addr != "" && os.Args[1] == "edge" {
			go func() { _ = http.ListenAndServe(addr, nil) }() // profile the edge-only row
		}
		var err error
		switch os.Args[1] {
		case "fake":
			err = serveFake()
		case "bare":
			err = serveBare(os.Args[2], splitKeys(os.Args[3]))
		case "edge":
			err = serveEdgeOnly(os.Args[2], splitKeys(os.Args[3]))
		case "gb":
			err = serveAllInOne(os.Args[2])
		default:
			goto bench
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
			os.Exit(1)
		}
		return
	}
bench:
	allinone := flag.String("allinone", "", "path of the gemini-balance all-in-one binary (go build ./deployments/allinone)")
	n1 := flag.Int("n1", 2000, "requests at 1 client")
	clients := flag.Int("clients", 32, "concurrent clients for throughput")
	dur := flag.Duration("dur", 8*time.Second, "length of each throughput run")
	streams := flag.Int("streams", 5000, "concurrent open streams for the memory figure (0 skips)")
	only := flag.String("targets", "direct,bare,edge,gb", "targets to load: direct, bare, edge (edge+NATS+minimal keyd, no logd), gb")
	profile := flag.String("profile", "", "write a CPU profile of the all-in-one during its 32-client generateContent run to this file and print CPU by component; the all-in-one then runs inside this binary (same code as -allinone, with pprof)")
	flag.Parse()
	if err := run(*allinone, *n1, *clients, *dur, *streams, splitKeys(*only), *profile); err != nil {
		fmt.Fprintln(os.Stderr, "edgebench:", err)
		os.Exit(1)
	}
}

type target struct {
	name   string
	url    string
	cred   string
	procs  []*proc // processes counted as "the gateway"
	client *http.Client
}

func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
	}}
}

func run(allinone string, n1, clients int, dur time.Duration, streams int, only []string, profile string) error {
	if allinone == "" && profile == "" {
		return errors.New("-allinone is required: go build -o /tmp/gb ./deployments/allinone")
	}
	fake, err := startRole("fake", "fake")
	if err != nil {
		return err
	}
	defer fake.stop()
	bare, err := startRole("bare proxy", "bare", fake.url, strings.Join(benchKeys, ","))
	if err != nil {
		return err
	}
	defer bare.stop()
	edge, err := startRole("edge only", "edge", fake.url, strings.Join(benchKeys, ","))
	if err != nil {
		return err
	}
	defer edge.stop()
	dir, _ := os.MkdirTemp("", "edgebench-")
	defer os.RemoveAll(dir)
	var gb *proc
	pprofURL := ""
	if profile != "" {
		addr := freeAddr()
		pprofURL = "http://" + addr
		gb, err = startAllInOneRole(fake.url, token, benchKeys, freePort(), freePort(), dir, addr)
	} else {
		gb, err = startAllInOne(allinone, fake.url, token, benchKeys, freePort(), freePort(), dir)
	}
	if err != nil {
		return err
	}
	defer gb.stop()
	ctx := context.Background()
	if err := (fakegemini.Remote{URL: fake.url}).Always(ctx, "bench-hold", fakegemini.Reply{
		Chunks:    [][]fakegemini.Part{{fakegemini.Text("held ")}, {fakegemini.Text("open")}},
		Behaviour: &fakegemini.Behaviour{ChunkDelay: fakegemini.Duration(time.Hour)},
	}); err != nil {
		return err
	}
	if err := (fakegemini.Remote{URL: fake.url}).Always(ctx, "bench-stream", fakegemini.Reply{Chunks: streamChunks}); err != nil {
		return err
	}
	var targets []*target
	for _, t := range []*target{
		{name: "direct (fake)", url: fake.url, cred: benchKeys[0]},
		{name: "bare proxy", url: bare.url, cred: token, procs: []*proc{bare}},
		{name: "edge only", url: edge.url, cred: token, procs: []*proc{edge}},
		{name: "gemini-balance", url: gb.url, cred: token, procs: []*proc{gb}},
	} {
		if slices.Contains(only, strings.Fields(strings.ReplaceAll(strings.ReplaceAll(t.name, "gemini-balance", "gb"), " proxy", ""))[0]) {
			targets = append(targets, t)
		}
	}
	for _, t := range targets {
		t.client = newClient(max(clients, 64))
	}
	fmt.Printf("edgebench: %d keys, loopback, GOMAXPROCS of each process = its default; gemini-balance = all-in-one (edge, keyd, logd→FerretDB, NATS, admind, schedulerd)\n\n", len(benchKeys))

	fmt.Println("== generateContent (non-stream) ==")
	fmt.Printf("%-16s %9s %9s %9s %9s | %9s %9s %9s %14s %12s\n", "target", "p50@1", "p99@1", "+p50@1", "+p99@1", "p50@32", "p99@32", "req/s@32", "CPU ms/1k req", "fake CPU/1k")
	var base1 []time.Duration
	for i, t := range targets {
		if err := warm(ctx, t, 400); err != nil {
			return fmt.Errorf("%s warm-up: %w", t.name, err)
		}
		lat1, err := sequential(ctx, t, n1)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		if i == 0 && t.procs == nil {
			base1 = lat1
		}
		cpu0, fcpu0 := cpuOf(t.procs), fake.cpu()
		var ev0, b0 float64
		if t.name == "gemini-balance" {
			ev0, b0, _ = eventBatches(ctx, t.procs[0].metrics)
		}
		profiled := make(chan error, 1)
		secs := 0
		if profile != "" && t.name == "gemini-balance" {
			secs = max(1, int(dur.Seconds())-1) // within the run
			go func() { profiled <- captureProfile(ctx, pprofURL, secs, profile) }()
		} else {
			profiled <- nil
		}
		latN, count, elapsed, err := concurrent(ctx, t, clients, dur)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		if err := <-profiled; err != nil {
			return fmt.Errorf("%s: cpu profile: %w", t.name, err)
		}
		if secs > 0 {
			defer func(reqs float64) {
				if err := summarizeProfile(profile, reqs); err != nil {
					fmt.Fprintln(os.Stderr, "edgebench:", err)
				}
			}(float64(count) * float64(secs) / elapsed.Seconds())
		}
		if t.name == "gemini-balance" {
			if ev1, b1, err := eventBatches(ctx, t.procs[0].metrics); err == nil && b1 > b0 {
				defer fmt.Printf("\nall-in-one events during its 32-client run: %.0f in %.0f batch messages (%.1f per message)\n", ev1-ev0, b1-b0, (ev1-ev0)/(b1-b0))
			}
		}
		cpu, fcpu := cpuOf(t.procs)-cpu0, fake.cpu()-fcpu0
		cpuPer := "-"
		if len(t.procs) > 0 {
			cpuPer = fmt.Sprintf("%.1f", ms(cpu)/float64(count)*1000)
		}
		fmt.Printf("%-16s %9s %9s %9s %9s | %9s %9s %9.0f %14s %12.1f\n", t.name,
			fmtD(pct(lat1, .5)), fmtD(pct(lat1, .99)), fmtD(pct(lat1, .5)-pct(base1, .5)), fmtD(pct(lat1, .99)-pct(base1, .99)),
			fmtD(pct(latN, .5)), fmtD(pct(latN, .99)), float64(count)/elapsed.Seconds(), cpuPer, ms(fcpu)/float64(count)*1000)
	}

	fmt.Println("\n== streamGenerateContent?alt=sse (65 events per stream) ==")
	fmt.Printf("%-16s %10s %10s %10s %10s | %12s %10s\n", "target", "TTFB p50", "TTFB p99", "+TTFB p50", "whole p50", "events/s@32", "streams/s")
	var baseTTFB []time.Duration
	for i, t := range targets {
		ttfb, whole, err := streamSequential(ctx, t, 300)
		if err != nil {
			return fmt.Errorf("%s stream: %w", t.name, err)
		}
		if i == 0 && t.procs == nil {
			baseTTFB = ttfb
		}
		events, count, elapsed, err := streamConcurrent(ctx, t, clients, dur/2)
		if err != nil {
			return fmt.Errorf("%s stream: %w", t.name, err)
		}
		fmt.Printf("%-16s %10s %10s %10s %10s | %12.0f %10.0f\n", t.name, fmtD(pct(ttfb, .5)), fmtD(pct(ttfb, .99)),
			fmtD(pct(ttfb, .5)-pct(baseTTFB, .5)), fmtD(pct(whole, .5)), float64(events)/elapsed.Seconds(), float64(count)/elapsed.Seconds())
	}

	if streams > 0 {
		fmt.Printf("\n== memory with %d open streams (first event received, upstream holding) ==\n", streams)
		fmt.Printf("%-16s %12s %12s %14s\n", "target", "RSS before", "RSS open", "per stream")
		for _, t := range targets {
			if t.procs == nil {
				continue
			}
			before, during, err := holdStreams(ctx, t, streams)
			if err != nil {
				return fmt.Errorf("%s memory: %w", t.name, err)
			}
			fmt.Printf("%-16s %10.1fMB %10.1fMB %12.1fKiB\n", t.name, mb(before), mb(during), float64(during-before)/float64(streams)/1024)
		}
	}
	return nil
}

var genBody = []byte(`{"contents":[{"role":"user","parts":[{"text":"benchmark hello"}]}]}`)

var streamBody = genBody

// streamChunks is the scripted answer of model bench-stream: 65 events of
// about 40 characters each.
var streamChunks = func() [][]fakegemini.Part {
	out := make([][]fakegemini.Part, 65)
	for i := range out {
		out[i] = []fakegemini.Part{fakegemini.Text(fmt.Sprintf("chunk %02d of the benchmark stream text. ", i))}
	}
	return out
}()

func (t *target) do(ctx context.Context, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-goog-api-key", t.cred)
	res, err := t.client.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return nil, fmt.Errorf("status %d: %s", res.StatusCode, b)
	}
	return res, nil
}

func (t *target) generate(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	res, err := t.do(ctx, "/v1beta/models/gemini-2.5-flash:generateContent", genBody)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return time.Since(start), err
}

// stream reads an SSE stream to its end, counting events.
func (t *target) stream(ctx context.Context, model string, body []byte, firstOnly func()) (ttfb, whole time.Duration, events int, err error) {
	start := time.Now()
	res, err := t.do(ctx, "/v1beta/models/"+model+":streamGenerateContent?alt=sse", body)
	if err != nil {
		return 0, 0, 0, err
	}
	defer res.Body.Close()
	br := bufio.NewReaderSize(res.Body, 4096)
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte("data: ")) {
			if events == 0 {
				ttfb = time.Since(start)
				if firstOnly != nil {
					firstOnly()
					<-ctx.Done()
					return ttfb, 0, 1, nil
				}
			}
			events++
		}
		if err == io.EOF {
			return ttfb, time.Since(start), events, nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return ttfb, 0, events, err
		}
	}
}

func warm(ctx context.Context, t *target, n int) error {
	var wg sync.WaitGroup
	var first atomic.Value
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := t.generate(ctx); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return err
	}
	return nil
}

func sequential(ctx context.Context, t *target, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		d, err := t.generate(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func concurrent(ctx context.Context, t *target, clients int, dur time.Duration) ([]time.Duration, int, time.Duration, error) {
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	start := time.Now()
	stop := start.Add(dur)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for time.Now().Before(stop) {
				d, err := t.generate(ctx)
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					break
				}
				local = append(local, d)
			}
			mu.Lock()
			all = append(all, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, len(all), time.Since(start), firstErr
}

func streamSequential(ctx context.Context, t *target, n int) (ttfb, whole []time.Duration, err error) {
	for range n {
		f, w, ev, err := t.stream(ctx, "bench-stream", streamBody, nil)
		if err != nil {
			return nil, nil, err
		}
		if ev != 65 {
			return nil, nil, fmt.Errorf("stream had %d events, want 65", ev)
		}
		ttfb, whole = append(ttfb, f), append(whole, w)
	}
	return ttfb, whole, nil
}

func streamConcurrent(ctx context.Context, t *target, clients int, dur time.Duration) (events, count int, elapsed time.Duration, err error) {
	var ev, n atomic.Int64
	var mu sync.Mutex
	start := time.Now()
	stop := start.Add(dur)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				_, _, e, serr := t.stream(ctx, "bench-stream", streamBody, nil)
				if serr != nil {
					mu.Lock()
					err = cmpErr(err, serr)
					mu.Unlock()
					return
				}
				ev.Add(int64(e))
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(ev.Load()), int(n.Load()), time.Since(start), err
}

// holdStreams opens n streams that upstream keeps open after one event and
// reads the gateway's RSS once every client has its first event.
func holdStreams(ctx context.Context, t *target, n int) (before, during int64, err error) {
	p := t.procs[0]
	before = p.rss()
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t.client = newClient(n)
	var got sync.WaitGroup
	got.Add(n)
	var failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, 256) // pace the dials
	var done sync.WaitGroup
	for range n {
		done.Add(1)
		sem <- struct{}{}
		go func() {
			defer done.Done()
			once := sync.OnceFunc(func() { <-sem; got.Done() })
			_, _, _, err := t.stream(hctx, "bench-hold", genBody, once)
			if err != nil && hctx.Err() == nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				once()
			}
		}()
	}
	got.Wait()
	if f := failed.Load(); f > 0 {
		cancel()
		done.Wait()
		return 0, 0, fmt.Errorf("%d of %d streams failed: %v", f, n, firstErr.Load())
	}
	time.Sleep(500 * time.Millisecond) // let the runtime settle before reading RSS
	during = p.rss()
	cancel()
	done.Wait()
	t.client.CloseIdleConnections()
	return before, during, nil
}

func cpuOf(ps []*proc) time.Duration {
	var d time.Duration
	for _, p := range ps {
		d += p.cpu()
	}
	return d
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(int(p*float64(len(s))), len(s)-1)]
}

func fmtD(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d.Microseconds())/1000) }
func ms(d time.Duration) float64  { return float64(d.Microseconds()) / 1000 }
func mb(b int64) float64          { return float64(b) / (1 << 20) }

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
