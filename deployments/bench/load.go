package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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
	"sync"
	"sync/atomic"
	"time"
)

const generatePath = "/v1beta/models/gemini-2.5-flash:generateContent"

var genBody = []byte(`{"contents":[{"role":"user","parts":[{"text":"benchmark hello"}]}]}`)

// loadResult is one non-stream load: answered requests (status 200) and
// their latency percentiles.
type loadResult struct {
	answered, failed int
	elapsed          time.Duration
	p50, p99         time.Duration
}

func (r loadResult) rps() float64 { return float64(r.answered) / r.elapsed.Seconds() }

// loader runs a non-stream load of conns connections for dur on a target.
type loader func(ctx context.Context, t *target, conns int, dur time.Duration) (loadResult, error)

// wrkLoad runs wrk (-t2, one thread per core here) with a Lua script that
// posts generateContent with the target's credential.
func wrkLoad(ctx context.Context, t *target, conns int, dur time.Duration) (loadResult, error) {
	dir, err := os.MkdirTemp("", "bench-wrk-")
	if err != nil {
		return loadResult{}, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "post.lua")
	lua := fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = %q\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"x-goog-api-key\"] = %q\n", genBody, t.cred)
	if err := os.WriteFile(script, []byte(lua), 0o600); err != nil {
		return loadResult{}, err
	}
	cmd := exec.CommandContext(ctx, "wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(int(dur.Seconds()))+"s",
		"--latency", "-s", script, t.url+generatePath)
	out, err := cmd.Output()
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk: %w", err)
	}
	return parseWrk(string(out))
}

// parseWrk reads the figures of wrk --latency's report.
func parseWrk(out string) (loadResult, error) {
	var r loadResult
	var total, errs int
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			d, err := time.ParseDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("wrk latency %q: %w", line, err)
			}
			if f[0] == "50%" {
				r.p50 = d
			} else {
				r.p99 = d
			}
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			total, _ = strconv.Atoi(f[0])
			secs, err := time.ParseDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return r, fmt.Errorf("wrk total %q: %w", line, err)
			}
			r.elapsed = secs
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			errs, _ = strconv.Atoi(f[len(f)-1])
		}
	}
	if total == 0 || r.elapsed == 0 {
		return r, fmt.Errorf("wrk report without a request count:\n%s", out)
	}
	r.answered, r.failed = total-errs, errs
	return r, nil
}

// goLoad is the fallback load generator: conns goroutines, one keep-alive
// connection each, for dur.
func goLoad(ctx context.Context, t *target, conns int, dur time.Duration) (loadResult, error) {
	client := newClient(conns)
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var all []time.Duration
	var failed int
	var firstErr error
	start := time.Now()
	stop := start.Add(dur)
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			local := make([]time.Duration, 0, 4096)
			bad := 0
			var lerr error
			for time.Now().Before(stop) {
				t0 := time.Now()
				err := t.generate(ctx, client)
				if err != nil {
					bad++
					lerr = cmpErr(lerr, err)
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			all, failed, firstErr = append(all, local...), failed+bad, cmpErr(firstErr, lerr)
			mu.Unlock()
		})
	}
	wg.Wait()
	r := loadResult{answered: len(all), failed: failed, elapsed: time.Since(start), p50: pct(all, .5), p99: pct(all, .99)}
	if r.answered == 0 {
		return r, fmt.Errorf("no request answered: %w", firstErr)
	}
	return r, nil
}

func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
	}}
}

func (t *target) post(ctx context.Context, client *http.Client, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-goog-api-key", t.cred)
	res, err := client.Do(req)
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

func (t *target) generate(ctx context.Context, client *http.Client) error {
	res, err := t.post(ctx, client, generatePath, genBody)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return err
}

// warm sends n generateContent requests over 8 connections.
func warm(ctx context.Context, t *target, n int) error {
	client := newClient(8)
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	var first atomic.Value
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if err := t.generate(ctx, client); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return err
	}
	return nil
}

// streamEvents is how many events the fake streams for model bench-stream.
const streamEvents = 65

// burst opens n streams at once, each on a new connection (n clients
// arriving together), reads each to its end and returns the times to the
// first event.
func burst(ctx context.Context, t *target, n int) ([]time.Duration, error) {
	client := newClient(n)
	defer client.CloseIdleConnections()
	ttfb := make([]time.Duration, n)
	errs := make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-gate
			ttfb[i], errs[i] = t.stream(ctx, client)
		})
	}
	close(gate)
	wg.Wait()
	return ttfb, errors.Join(errs...)
}

// stream reads one SSE stream to its end and returns its time to first event.
func (t *target) stream(ctx context.Context, client *http.Client) (time.Duration, error) {
	start := time.Now()
	res, err := t.post(ctx, client, "/v1beta/models/bench-stream:streamGenerateContent?alt=sse", genBody)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var ttfb time.Duration
	events := 0
	br := bufio.NewReaderSize(res.Body, 4096)
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte("data: ")) {
			if events == 0 {
				ttfb = time.Since(start)
			}
			events++
		}
		if err == io.EOF {
			if events != streamEvents {
				return ttfb, fmt.Errorf("stream had %d events, want %d", events, streamEvents)
			}
			return ttfb, nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return ttfb, err
		}
	}
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
