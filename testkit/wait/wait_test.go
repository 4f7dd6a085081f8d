package wait_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gemini-balance-go/testkit/wait"
)

func TestPollReturnsOnceTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	if !wait.Poll(context.Background(), func() bool { return calls.Add(1) == 3 }) {
		t.Fatal("Poll gave up on a condition that came true")
	}
	if calls.Load() != 3 {
		t.Fatalf("cond called %d times, want 3 (it stops once true)", calls.Load())
	}
}

func TestPollGivesUpWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if wait.Poll(ctx, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never held")
	}
}

func TestForStateSeesTheEffectOfAnotherGoroutine(t *testing.T) {
	var stored atomic.Int32
	go func() {
		for range 5 {
			stored.Add(1)
		}
	}()
	wait.ForState(t, "5 stored", func() (bool, string) { return stored.Load() == 5, "" })
}
