// Package wait is how tests wait for an asynchronous effect (a published
// event, a stored row, a replica that answers): poll a condition until it
// holds, and fail the test only after a bound so generous that only a broken
// system reaches it. It asserts nothing about timing.
//
//	wait.For(t, "keyd answers", func() bool { _, err := nc.Request(subj, nil, time.Second); return err == nil })
//	wait.Within(t, time.Minute, "all 300 stored", func() bool { return count() == 300 })
//	wait.ForState(t, "token works", func() (bool, string) { code := call(); return code == 200, fmt.Sprint(code) })
package wait

import (
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
	deadline := time.Now().Add(d)
	// Start fast (most effects land within milliseconds), back off so a slow
	// condition (a query, a process) does not spin the shared CPU.
	pause := 5 * time.Millisecond
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("timed out after %s waiting for %s", d, what)
			if last != "" {
				msg += "; last attempt: " + last
			}
			t.Fatal(msg)
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}
