package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// adminPassword is the all-in-one's AUTH_TOKEN; the admin API takes it as
// a Bearer credential.
const adminPassword = "bench-admin-password-0123456789"

// drain waits until the all-in-one's rollups count want requests (it
// started with an empty store). logd writes a batch's logs before its
// rollup parts, so this means the logs are stored too. The overview is
// read every 200 ms: each read costs the all-in-one some CPU (about 15 ms on
// the shared 2-core machine), which the window counts; polling faster would
// cost more than it saves. The run ends with an exact count of the logs
// themselves (logsStored).
func (t *target) drain(ctx context.Context, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for {
		var ov struct {
			Month struct {
				Requests int `json:"requests"`
			} `json:"month"`
		}
		if err := t.admin(ctx, "/api/stats/overview", &ov); err != nil {
			return err
		}
		if ov.Month.Requests >= want {
			return nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("rollups count %d of %d requests: %w", ov.Month.Requests, want, err)
		}
	}
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
		if err := sleep(ctx, time.Second); err != nil {
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

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
