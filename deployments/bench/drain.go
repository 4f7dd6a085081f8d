package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// adminPassword is the all-in-one's AUTH_TOKEN; the admin API takes it as
// a Bearer credential.
const adminPassword = "bench-admin-password-0123456789"

// drain waits until the all-in-one has stored want requests (it started
// with an empty store). Reading the store through the admin API costs the
// all-in-one CPU inside the window being counted (the overview reads several
// rollup collections, each a scan on FerretDB: tens of ms, seconds while
// logd catches up), so the wait first watches logd's own counter of written
// logs on /metrics (in memory, cheap; logd counts a log once the store has
// acknowledged it), then confirms through the rollups (/api/stats/overview:
// logd writes a batch's rollup parts after its logs, and folds them within
// a second), which also covers the deferred rollup work. Admin API errors
// (logd busy past its 10 s reply timeout) are retried. The run ends with an
// exact count of the logs themselves (logsStored).
func (t *target) drain(ctx context.Context, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for t.proc.metrics != "" {
		n, ok, err := loggedByLogd(ctx, t.proc.metrics)
		if err != nil || !ok || n >= float64(want) {
			break // no counter (another build): the overview alone decides
		}
		if err := t.sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("logd wrote %.0f of %d request logs: %w", n, want, err)
		}
	}
	for {
		var ov struct {
			Month struct {
				Requests int `json:"requests"`
			} `json:"month"`
		}
		err := t.admin(ctx, "/api/stats/overview", &ov)
		if err == nil && ov.Month.Requests >= want {
			return nil
		}
		if serr := t.sleep(ctx, 500*time.Millisecond); serr != nil {
			return fmt.Errorf("rollups count %d of %d requests (last error: %v): %w", ov.Month.Requests, want, err, serr)
		}
	}
}

// loggedByLogd sums logd_ingest_events_total{kind="request"} (inserted and
// duplicate) from a /metrics page; ok is false when the page has no such
// series.
func loggedByLogd(ctx context.Context, metricsURL string) (n float64, ok bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, false, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "logd_ingest_events_total{") || !strings.Contains(line, `kind="request"`) {
			continue
		}
		f := strings.Fields(line)
		v, perr := strconv.ParseFloat(f[len(f)-1], 64)
		if perr == nil {
			n, ok = n+v, true
		}
	}
	return n, ok, sc.Err()
}

// logsStored counts the request logs in the store exactly. That scans
// every log, which can outlast logd's request-reply timeout on a loaded
// machine (503), so it is retried for a few minutes.
func (t *target) logsStored(ctx context.Context) (int, error) {
	var page struct {
		Total *int `json:"total"`
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		err := t.admin(ctx, "/api/logs/requests?count=exact&limit=1", &page)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return 0, err
		}
		if err := t.sleep(ctx, time.Second); err != nil {
			return 0, err
		}
	}
	if page.Total == nil {
		return 0, fmt.Errorf("/api/logs/requests?count=exact answered without a total")
	}
	return *page.Total, nil
}

func (t *target) admin(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminPassword)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin %s: %w", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("admin %s: %w", path, err)
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("admin %s: status %d: %s", path, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("admin %s: %w", path, err)
	}
	return nil
}

// sleep waits d, or fails when ctx ends or the target's process has exited.
func (t *target) sleep(ctx context.Context, d time.Duration) error {
	if t.proc.exited() {
		return fmt.Errorf("%s exited", t.name)
	}
	return sleep(ctx, d)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
