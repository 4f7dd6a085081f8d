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

	"go.mongodb.org/mongo-driver/v2/mongo"
	mopts "go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/logd/logstore"
)

// adminPassword is the all-in-one's AUTH_TOKEN; the admin API takes it as
// a Bearer credential.
const adminPassword = "bench-admin-password-0123456789"

// drain waits until the all-in-one has stored want requests (it started
// with an empty store), deferred work included. Reading the store through
// the admin API costs the all-in-one CPU inside the window being counted,
// and while logd catches up it is slow and piles up (the overview reads every
// rollup part not yet folded), so the wait watches logd's own /metrics (in
// memory; a scrape every 250 ms is well under 1% of the window's CPU): first
// its count of written logs (a log counts once the store acknowledged it),
// then its fold rounds and the process's CPU until both are quiet (the
// rollup parts are folded). One overview read (/api/stats/overview) then
// confirms through the rollups; it is repeated, slowly, only while they fall
// short. A build without these series is judged by the overview alone. The
// run ends with an exact count of the logs themselves (logsStored).
func (t *target) drain(ctx context.Context, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	if err := t.waitLogd(ctx, want); err != nil {
		return err
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
		pause := 2 * time.Second
		if err != nil {
			pause = 5 * time.Second // logd busy: do not queue more reads on it
		}
		if serr := t.sleep(ctx, pause); serr != nil {
			return fmt.Errorf("rollups count %d of %d requests (last error: %v): %w", ov.Month.Requests, want, err, serr)
		}
	}
}

// waitLogd returns once logd's /metrics count want written request logs, no
// fold round has finished for foldQuiet and the process has been about idle
// for the last second (a fold round only counts when it ends), or at once
// without those series.
func (t *target) waitLogd(ctx context.Context, want int) error {
	if t.proc.metrics == "" {
		return nil
	}
	var folds float64
	var quietSince time.Time
	type sample struct {
		at  time.Time
		cpu time.Duration
	}
	var cpu []sample // the last second's, oldest first
	for {
		m, err := logdMetrics(ctx, t.proc.metrics)
		if err != nil || !m.found {
			return nil
		}
		now := sample{time.Now(), t.proc.cpu()}
		cpu = append(cpu, now)
		for len(cpu) > 1 && now.at.Sub(cpu[1].at) >= time.Second {
			cpu = cpu[1:]
		}
		idle := now.at.Sub(cpu[0].at) >= time.Second && now.cpu-cpu[0].cpu <= idleCPU
		switch {
		case m.logged < float64(want):
			quietSince = time.Time{}
		case quietSince.IsZero() || m.folds != folds:
			folds, quietSince = m.folds, now.at
		case now.at.Sub(quietSince) >= foldQuiet && idle:
			return nil
		}
		if err := t.sleep(ctx, 250*time.Millisecond); err != nil {
			return fmt.Errorf("logd wrote %.0f of %d request logs: %w", m.logged, want, err)
		}
	}
}

// foldQuiet is how long logd's fold loop (a pass every second while parts
// are left) must have finished no round before the rollups count as done;
// idleCPU is the most CPU per second an all-in-one with nothing left to do
// uses (its tickers; about 12 ms on the shared 2-core machine).
const (
	foldQuiet = 2500 * time.Millisecond
	idleCPU   = 50 * time.Millisecond
)

type logdSeries struct {
	found         bool
	logged, folds float64
}

// logdMetrics reads, from a /metrics page, logd's written request logs
// (logd_ingest_events_total{kind="request"}, inserted and duplicate) and its
// fold rounds (logd_ingest_fold_round_seconds_count).
func logdMetrics(ctx context.Context, metricsURL string) (logdSeries, error) {
	var m logdSeries
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return m, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, perr := strconv.ParseFloat(f[len(f)-1], 64)
		if perr != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "logd_ingest_events_total{") && strings.Contains(line, `kind="request"`):
			m.logged, m.found = m.logged+v, true
		case strings.HasPrefix(line, "logd_ingest_fold_round_seconds_count "):
			m.folds = v
		}
	}
	return m, sc.Err()
}

// logsStored counts the request logs in the store exactly, from the store
// itself (the all-in-one's embedded FerretDB, on its Unix socket in
// DATA_DIR). Through the admin API a count of 100,000 logs written as rows
// (earlier builds) outlasts logd's request-reply timeout on FerretDB/SQLite.
func (t *target) logsStored(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cl, err := mongo.Connect(mopts.Client().ApplyURI(t.proc.store))
	if err != nil {
		return 0, fmt.Errorf("connect to the store: %w", err)
	}
	defer cl.Disconnect(context.Background())
	// Buckets and rows alike: a build before the buckets wrote rows.
	rows, err := logstore.ReadRequestLogs(ctx, cl.Database(storeDB))
	if err != nil {
		return 0, fmt.Errorf("count request logs: %w", err)
	}
	return len(rows), nil
}

// storeDB is the all-in-one's database (MONGO_DB's default).
const storeDB = "gemini_balance"

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
