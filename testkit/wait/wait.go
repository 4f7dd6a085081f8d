// Package wait is how tests wait for an asynchronous effect (a published
// event, a stored row, a replica that answers): poll a condition until it
// holds, and fail the test only after a bound so generous that only a broken
// system reaches it. It asserts nothing about timing.
//
//	wait.For(t, "keyd answers", func() bool { _, err := nc.Request(subj, nil, time.Second); return err == nil })
//	wait.Within(t, time.Minute, "all 300 stored", func() bool { return count() == 300 })
//	wait.ForState(t, "token works", func() (bool, string) { code := call(); return code == 200, fmt.Sprint(code) })
//	if !wait.Poll(ctx, cond) { t.Fatalf("…; logs:\n%s", logs) } // report a failure your own way
package wait

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Bound is how long For and ForState wait: long enough for a loaded
// 2-core CI machine, and only a broken system waits that long.
const Bound = 30 * time.Second

// For polls cond until it holds; it fails the test after Bound.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Within(t, Bound, what, cond)
}

// Within polls cond until it holds; it fails the test after d.
func Within(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	within(t, d, what, func() (bool, string) { return cond(), "" })
}

// ForState polls cond until it holds; it fails the test after Bound and
// reports what the last attempt saw (cond's second result).
func ForState(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	within(t, Bound, what, cond)
}

func within(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var last string
	if Poll(ctx, func() (ok bool) { ok, last = cond(); return ok }) {
		return
	}
	msg := fmt.Sprintf("timed out after %s waiting for %s", d, what)
	if last != "" {
		msg += "; last attempt: " + last
	}
	t.Fatal(msg)
}

// Poll polls cond until it holds (true) or ctx ends (false), for a caller
// that reports the failure its own way. cond runs at least once.
func Poll(ctx context.Context, cond func() bool) bool {
	// Start fast (most effects land within milliseconds), back off so a slow
	// condition (a query, a process) does not spin the shared CPU.
	pause := 5 * time.Millisecond
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-time.After(pause):
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}
