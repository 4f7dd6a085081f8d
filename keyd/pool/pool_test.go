package pool

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/outcome"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestPool(t *testing.T, n int, kind string) (*Pool, *clock, []string) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)}
	p := New(DefaultPolicy(), c.now)
	var ids []string
	for i := 0; i < n; i++ {
		k := NewKey(fmt.Sprintf("AIzaSyTestKey%030d", i), kind, c.now())
		p.Load(k)
		ids = append(ids, k.ID)
	}
	return p, c, ids
}

const model = "gemini-2.5-flash"

// TestPolicyTableRows checks every row of the policy table, with the
// key's state after the report.
func TestPolicyTableRows(t *testing.T) {
	type want struct {
		status   string
		failures int
		cooling  bool
		reason   string
	}
	cases := []struct {
		name   string
		before func(p *Pool, id string)
		report bus.Report
		want   want
	}{
		{"400 API_KEY_INVALID disables now", nil,
			bus.Report{Model: model, Class: string(outcome.KeyInvalid), Status: 400, Reason: "API_KEY_INVALID"},
			want{status: bus.KeyDisabled, reason: "400 key_invalid: API_KEY_INVALID"}},
		{"401 disables now", nil,
			bus.Report{Model: model, Class: string(outcome.KeyInvalid), Status: 401},
			want{status: bus.KeyDisabled, reason: "401 key_invalid"}},
		{"403 PERMISSION_DENIED disables now", nil,
			bus.Report{Model: model, Class: string(outcome.KeyInvalid), Status: 403, Reason: "PERMISSION_DENIED"},
			want{status: bus.KeyDisabled, reason: "403 key_invalid: PERMISSION_DENIED"}},
		{"429 cools the key for the model, not counted toward disable", nil,
			bus.Report{Model: model, Class: string(outcome.RateLimited), Status: 429, RetryDelay: 17000},
			want{status: bus.KeyCooling, cooling: true}},
		{"5xx counts one failure", nil,
			bus.Report{Model: model, Class: string(outcome.ServerError), Status: 503},
			want{status: bus.KeyActive, failures: 1}},
		{"timeout counts one failure", nil,
			bus.Report{Model: model, Class: string(outcome.Timeout)},
			want{status: bus.KeyActive, failures: 1}},
		{"connection error counts one failure", nil,
			bus.Report{Model: model, Class: string(outcome.ConnError)},
			want{status: bus.KeyActive, failures: 1}},
		{"empty answer counts one failure", nil,
			bus.Report{Model: model, Class: string(outcome.Empty), Status: 200},
			want{status: bus.KeyActive, failures: 1}},
		{"soft failure at MAX_FAILURES disables",
			func(p *Pool, id string) {
				for i := 0; i < 2; i++ {
					p.Report(bus.Report{ID: id, Model: model, Class: string(outcome.ServerError), Status: 500}, true)
				}
			},
			bus.Report{Model: model, Class: string(outcome.ServerError), Status: 500},
			want{status: bus.KeyDisabled, failures: 3, reason: "3 consecutive failures, last: 500 server_error"}},
		{"success resets the failure count",
			func(p *Pool, id string) {
				for i := 0; i < 2; i++ {
					p.Report(bus.Report{ID: id, Model: model, Class: string(outcome.Timeout)}, true)
				}
			},
			bus.Report{Model: model, Class: string(outcome.Success), Status: 200},
			want{status: bus.KeyActive, failures: 0}},
		{"client's own 4xx changes nothing",
			func(p *Pool, id string) {
				p.Report(bus.Report{ID: id, Model: model, Class: string(outcome.Timeout)}, true)
			},
			bus.Report{Model: model, Class: string(outcome.ClientError), Status: 400, Reason: "INVALID_ARGUMENT"},
			want{status: bus.KeyActive, failures: 1}},
		{"client going away changes nothing", nil,
			bus.Report{Model: model, Class: string(outcome.Canceled)},
			want{status: bus.KeyActive}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, c, ids := newTestPool(t, 5, bus.KindGemini)
			id := ids[0]
			if tc.before != nil {
				tc.before(p, id)
			}
			r := tc.report
			r.ID = id
			p.Report(r, true)
			k, _ := p.Get(id)
			if got := k.Status(c.now()); got != tc.want.status {
				t.Fatalf("status = %s, want %s", got, tc.want.status)
			}
			if k.Failures != tc.want.failures {
				t.Fatalf("failures = %d, want %d", k.Failures, tc.want.failures)
			}
			if tc.want.reason != "" && k.DisabledReason != tc.want.reason {
				t.Fatalf("reason = %q, want %q", k.DisabledReason, tc.want.reason)
			}
			if got := !k.coolingUntil(model, c.now()).IsZero(); got != tc.want.cooling {
				t.Fatalf("cooling for %s = %v, want %v", model, got, tc.want.cooling)
			}
			// A disabled key is never handed out; every other key still is.
			for i := 0; i < 10; i++ {
				rep := p.Acquire(bus.AcquireRequest{Kind: bus.KindGemini, Model: model})
				if rep.ID == "" {
					t.Fatalf("no key: %+v", rep)
				}
				if rep.ID == id && tc.want.status != bus.KeyActive {
					t.Fatalf("key in state %s was handed out", tc.want.status)
				}
			}
		})
	}
}

func TestEveryOutcomeClassHasARow(t *testing.T) {
	for _, c := range []outcome.Class{outcome.Success, outcome.ClientError, outcome.KeyInvalid, outcome.RateLimited,
		outcome.ServerError, outcome.Timeout, outcome.ConnError, outcome.Empty, outcome.Canceled} {
		if _, ok := outcome.Policy[c]; !ok {
			t.Errorf("class %s has no policy row", c)
		}
	}
}

func TestCooldownHonoursRetryDelay(t *testing.T) {
	p, c, ids := newTestPool(t, 5, bus.KindGemini)
	evs := p.Report(bus.Report{ID: ids[0], Model: "models/" + model, Class: string(outcome.RateLimited), Status: 429, RetryDelay: 17000}, true)
	if len(evs) != 1 || evs[0].To != bus.KeyCooling || !evs[0].Until.Equal(c.now().Add(17*time.Second)) || evs[0].Model != model {
		t.Fatalf("event = %+v", evs)
	}
	k, _ := p.Get(ids[0])
	if k.Failures != 0 {
		t.Fatalf("a 429 counted toward disable: failures = %d", k.Failures)
	}
	c.add(16 * time.Second)
	if k, _ := p.Get(ids[0]); k.Status(c.now()) != bus.KeyCooling {
		t.Fatal("cooldown ended early")
	}
	c.add(2 * time.Second)
	if k, _ := p.Get(ids[0]); k.Status(c.now()) != bus.KeyActive {
		t.Fatal("cooldown did not end at the retry delay")
	}
}

func TestCooldownIsPerModel(t *testing.T) {
	p, _, ids := newTestPool(t, 1, bus.KindGemini)
	p.Report(bus.Report{ID: ids[0], Model: "gemini-2.5-pro", Class: string(outcome.RateLimited), Status: 429}, true)
	if rep := p.Acquire(bus.AcquireRequest{Model: "gemini-2.5-pro"}); rep.NoKey != bus.NoKeyAllCooling || rep.RetryAt.IsZero() {
		t.Fatalf("pro: %+v, want all_cooling with retry time", rep)
	}
	if rep := p.Acquire(bus.AcquireRequest{Model: "gemini-2.5-flash"}); rep.ID != ids[0] {
		t.Fatalf("flash: %+v, want the key (its cooldown is for pro only)", rep)
	}
}

func TestDefaultCooldownGrowsWhenRateLimitRepeats(t *testing.T) {
	p, c, ids := newTestPool(t, 10, bus.KindGemini)
	var got []time.Duration
	for i := 0; i < 3; i++ {
		evs := p.Report(bus.Report{ID: ids[0], Model: model, Class: string(outcome.RateLimited), Status: 429}, true)
		got = append(got, evs[0].Until.Sub(c.now()))
		c.add(evs[0].Until.Sub(c.now()) + time.Second) // the cooldown runs out, then it 429s again
	}
	want := []time.Duration{60 * time.Second, 120 * time.Second, 240 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("cooldowns = %v, want %v", got, want)
		}
	}
	// A success for the model forgets the strikes.
	p.Report(bus.Report{ID: ids[0], Model: model, Class: string(outcome.Success), Status: 200}, true)
	evs := p.Report(bus.Report{ID: ids[0], Model: model, Class: string(outcome.RateLimited), Status: 429}, true)
	if d := evs[0].Until.Sub(c.now()); d != 60*time.Second {
		t.Fatalf("after success cooldown = %v, want 60s", d)
	}
}

// TestMostKeys429IsAnIPThrottle: when most keys answer 429 together the pool
// backs off for the kind and model, and no key is left cooling or punished.
func TestMostKeys429IsAnIPThrottle(t *testing.T) {
	p, c, ids := newTestPool(t, 10, bus.KindGemini)
	for _, id := range ids[:5] {
		p.Report(bus.Report{ID: id, Model: model, Class: string(outcome.RateLimited), Status: 429}, true)
		c.add(100 * time.Millisecond)
	}
	until, ok := p.Throttled(bus.KindGemini, model)
	if !ok {
		t.Fatal("5 of 10 keys 429 within the window: want an IP throttle")
	}
	rep := p.Acquire(bus.AcquireRequest{Kind: bus.KindGemini, Model: model})
	if rep.NoKey != bus.NoKeyAllCooling || !rep.RetryAt.Equal(until) {
		t.Fatalf("acquire during throttle = %+v, want all_cooling until %v", rep, until)
	}
	for _, id := range ids {
		k, _ := p.Get(id)
		if k.Status(c.now()) != bus.KeyActive || k.Failures != 0 {
			t.Fatalf("key %s punished: status %s failures %d", id, k.Status(c.now()), k.Failures)
		}
		if cd := k.cooldown(model); cd != nil && cd.Strikes != 0 {
			t.Fatalf("key %s kept a strike", id)
		}
	}
	// More 429s during the throttle extend it but still punish nobody.
	p.Report(bus.Report{ID: ids[7], Model: model, Class: string(outcome.RateLimited), Status: 429}, true)
	if k, _ := p.Get(ids[7]); k.Status(c.now()) != bus.KeyActive {
		t.Fatal("a 429 during the throttle cooled a key")
	}
	c.add(6 * time.Second)
	if rep := p.Acquire(bus.AcquireRequest{Kind: bus.KindGemini, Model: model}); rep.ID == "" {
		t.Fatalf("after the back-off: %+v, want a key", rep)
	}
	// Other models were never affected.
	if _, ok := p.Throttled(bus.KindGemini, "gemini-2.5-pro"); ok {
		t.Fatal("throttle leaked to another model")
	}
}

func TestFewKeys429IsNotAThrottle(t *testing.T) {
	p, c, ids := newTestPool(t, 10, bus.KindGemini)
	for _, id := range ids[:2] {
		p.Report(bus.Report{ID: id, Model: model, Class: string(outcome.RateLimited), Status: 429}, true)
	}
	if _, ok := p.Throttled(bus.KindGemini, model); ok {
		t.Fatal("2 of 10 keys: no throttle expected")
	}
	if k, _ := p.Get(ids[0]); k.Status(c.now()) != bus.KeyCooling {
		t.Fatal("the 429 key should cool down")
	}
}

func TestNoKeyReasons(t *testing.T) {
	p, c, ids := newTestPool(t, 2, bus.KindGemini)
	if rep := p.Acquire(bus.AcquireRequest{Kind: bus.KindVertex, Model: model}); rep.NoKey != bus.NoKeyNone {
		t.Fatalf("empty kind: %+v", rep)
	}
	if rep := p.Acquire(bus.AcquireRequest{Kind: bus.KindGemini, Model: model, Exclude: ids}); rep.NoKey != bus.NoKeyExhausted {
		t.Fatalf("all excluded: %+v", rep)
	}
	p.Report(bus.Report{ID: ids[0], Model: model, Class: string(outcome.RateLimited), Status: 429, RetryDelay: 30000}, true)
	p.Report(bus.Report{ID: ids[1], Model: model, Class: string(outcome.RateLimited), Status: 429, RetryDelay: 10000}, true)
	rep := p.Acquire(bus.AcquireRequest{Kind: bus.KindGemini, Model: model})
	if rep.NoKey != bus.NoKeyAllCooling || !rep.RetryAt.Equal(c.now().Add(10*time.Second)) {
		t.Fatalf("all cooling: %+v, want earliest retry in 10s", rep)
	}
	p.Disable(ids[0], "")
	p.Disable(ids[1], "")
	if rep := p.Acquire(bus.AcquireRequest{Kind: bus.KindGemini, Model: model}); rep.NoKey != bus.NoKeyAllDisabled {
		t.Fatalf("all disabled: %+v", rep)
	}
}

func TestAcquireSkipsExcludedKeys(t *testing.T) {
	p, _, ids := newTestPool(t, 3, bus.KindGemini)
	for i := 0; i < 20; i++ {
		rep := p.Acquire(bus.AcquireRequest{Model: model, Exclude: ids[:2]})
		if rep.ID != ids[2] {
			t.Fatalf("got %s, want the only non-excluded key", rep.ID)
		}
	}
}

func TestPinnedKeyForFileAffinity(t *testing.T) {
	p, _, ids := newTestPool(t, 3, bus.KindGemini)
	for i := 0; i < 5; i++ {
		if rep := p.Acquire(bus.AcquireRequest{Model: model, KeyID: ids[1]}); rep.ID != ids[1] {
			t.Fatalf("pinned acquire = %+v", rep)
		}
	}
	p.Disable(ids[1], "")
	if rep := p.Acquire(bus.AcquireRequest{Model: model, KeyID: ids[1]}); rep.NoKey != bus.NoKeyAllDisabled {
		t.Fatalf("pinned disabled = %+v", rep)
	}
}

func TestKindsRotateSeparately(t *testing.T) {
	p, c, gem := newTestPool(t, 2, bus.KindGemini)
	vk := NewKey("AQ.vertexkey-000000000000000000000000", bus.KindVertex, c.now())
	pk := NewKey("AIzaSyPaidKey000000000000000000000000000", bus.KindPaid, c.now())
	p.Load(vk, pk)
	for i := 0; i < 10; i++ {
		if rep := p.Acquire(bus.AcquireRequest{Kind: bus.KindVertex, Model: model}); rep.ID != vk.ID {
			t.Fatalf("vertex got %+v", rep)
		}
		if rep := p.Acquire(bus.AcquireRequest{Kind: bus.KindPaid, Model: model}); rep.ID != pk.ID {
			t.Fatalf("paid got %+v", rep)
		}
		if rep := p.Acquire(bus.AcquireRequest{Kind: bus.KindGemini, Model: model}); rep.ID != gem[0] && rep.ID != gem[1] {
			t.Fatalf("gemini got %+v", rep)
		}
	}
}

// TestFairRotationShares: 10,000 acquires from concurrent callers on 20 keys
// give each key its share within ±5%.
func TestFairRotationShares(t *testing.T) {
	p, _, ids := newTestPool(t, 20, bus.KindGemini)
	counts := acquireConcurrently(t, p, 10000)
	for _, id := range ids {
		share := float64(counts[id]) / 10000
		if share < 0.05*0.95 || share > 0.05*1.05 {
			t.Fatalf("key %s share %.4f, want 0.05 ±5%% (counts %v)", id, share, counts)
		}
	}
}

func TestWeightsAreHonoured(t *testing.T) {
	p, _, ids := newTestPool(t, 20, bus.KindGemini)
	p.SetMeta(ids[0], 3, "triple", true)
	counts := acquireConcurrently(t, p, 11000) // 22 shares of 500
	for i, id := range ids {
		want := 500.0
		if i == 0 {
			want = 1500
		}
		if got := float64(counts[id]); got < want*0.95 || got > want*1.05 {
			t.Fatalf("key %d got %v acquires, want %v ±5%%", i, got, want)
		}
	}
}

func TestFairRotationWhileKeysCoolAndReturn(t *testing.T) {
	p, c, ids := newTestPool(t, 20, bus.KindGemini)
	p.Report(bus.Report{ID: ids[3], Model: model, Class: string(outcome.RateLimited), Status: 429, RetryDelay: 1000}, true)
	p.Disable(ids[4], "")
	counts := acquireConcurrently(t, p, 9000) // 18 usable keys
	if counts[ids[3]] != 0 || counts[ids[4]] != 0 {
		t.Fatalf("cooling or disabled key handed out: %v", counts)
	}
	for _, id := range ids {
		if id == ids[3] || id == ids[4] {
			continue
		}
		if got := counts[id]; got < 475 || got > 525 {
			t.Fatalf("key %s got %d, want 500 ±5%%", id, got)
		}
	}
	c.add(2 * time.Second)
	p.Restore(ids[4], "enabled by admin")
	counts = acquireConcurrently(t, p, 10000)
	if got := counts[ids[3]]; got < 475 || got > 525 {
		t.Fatalf("key back from cooldown got %d, want 500 ±5%%", got)
	}
	if got := counts[ids[4]]; got < 475 || got > 525 {
		t.Fatalf("re-enabled key got %d, want 500 ±5%%", got)
	}
}

func acquireConcurrently(t *testing.T, p *Pool, n int) map[string]int {
	t.Helper()
	const workers = 8
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[string]int{}
			for i := 0; i < n/workers; i++ {
				rep := p.Acquire(bus.AcquireRequest{Kind: bus.KindGemini, Model: model})
				if rep.ID == "" {
					t.Errorf("no key: %+v", rep)
					return
				}
				local[rep.ID]++
				if i%50 == 0 { // reports race with acquires, as in production
					p.Report(bus.Report{ID: rep.ID, Model: model, Class: string(outcome.Success), Status: 200}, true)
				}
			}
			mu.Lock()
			for k, v := range local {
				counts[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return counts
}

func TestApplyFromAnotherReplica(t *testing.T) {
	p, c, ids := newTestPool(t, 3, bus.KindGemini)
	p.Apply(bus.KeyStateEvent{KeyID: ids[0], To: bus.KeyDisabled, Reason: "by admin", Time: c.now()})
	p.Apply(bus.KeyStateEvent{KeyID: ids[1], To: bus.KeyCooling, Model: model, Until: c.now().Add(time.Minute)})
	for i := 0; i < 10; i++ {
		if rep := p.Acquire(bus.AcquireRequest{Model: model}); rep.ID != ids[2] {
			t.Fatalf("got %s, want only the third key", rep.ID)
		}
	}
	if len(p.TakeDirty()) != 0 {
		t.Fatal("applied events must not be persisted again by this replica")
	}
	p.Apply(bus.KeyStateEvent{KeyID: ids[0], To: bus.KeyActive})
	p.Apply(bus.KeyStateEvent{KeyID: ids[1], To: bus.KeyActive, Model: model, Time: c.now()})
	seen := map[string]bool{}
	for i := 0; i < 6; i++ {
		seen[p.Acquire(bus.AcquireRequest{Model: model}).ID] = true
	}
	if len(seen) != 3 {
		t.Fatalf("after re-activation saw %d keys, want 3", len(seen))
	}
}

func TestDirtyKeysAreBatched(t *testing.T) {
	p, _, ids := newTestPool(t, 3, bus.KindGemini)
	for i := 0; i < 100; i++ {
		p.Acquire(bus.AcquireRequest{Model: model})
	}
	if d := p.TakeDirty(); len(d) != 0 {
		t.Fatalf("acquire marked %d keys dirty; it must not write", len(d))
	}
	for i := 0; i < 10; i++ {
		p.Report(bus.Report{ID: ids[0], Model: model, Class: string(outcome.Success)}, true)
	}
	p.Report(bus.Report{ID: ids[1], Model: model, Class: string(outcome.Success)}, false)
	d := p.TakeDirty()
	if len(d) != 1 || d[0].ID != ids[0] || d[0].Successes != 10 {
		t.Fatalf("dirty = %+v, want one write of key 0 with 10 successes", d)
	}
}

func TestRecoveryCandidates(t *testing.T) {
	p, c, ids := newTestPool(t, 4, bus.KindGemini)
	p.Disable(ids[0], "")
	p.Report(bus.Report{ID: ids[1], Model: model, Class: string(outcome.RateLimited), RetryDelay: 1000}, true)
	p.Report(bus.Report{ID: ids[2], Model: model, Class: string(outcome.RateLimited), RetryDelay: 100000}, true)
	c.add(2 * time.Second)
	got := map[string]bool{}
	for _, k := range p.RecoveryCandidates() {
		got[k.ID] = true
	}
	if !got[ids[0]] || !got[ids[1]] || got[ids[2]] || got[ids[3]] || len(got) != 2 {
		t.Fatalf("candidates = %v, want the disabled key and the expired cooldown", got)
	}
}

func TestAllCoolingAnswerEndsWhenAKeyReturns(t *testing.T) {
	p, c, ids := newTestPool(t, 3, bus.KindGemini)
	start := c.now()
	for i, id := range ids { // 11 s apart: separate rate limits, not an IP throttle
		p.Report(bus.Report{ID: id, Model: model, Class: string(outcome.RateLimited), RetryDelay: int64(100+i) * 1000}, true)
		c.add(11 * time.Second)
	}
	firstBack := start.Add(100 * time.Second)
	for i := 0; i < 3; i++ { // answered from the remembered scan after the first
		if rep := p.Acquire(bus.AcquireRequest{Model: model}); rep.NoKey != bus.NoKeyAllCooling || !rep.RetryAt.Equal(firstBack) {
			t.Fatalf("all cooling: %+v, want retry at %v", rep, firstBack)
		}
	}
	// A success on one key (a request in flight) makes it usable at once.
	p.Report(bus.Report{ID: ids[2], Model: model, Class: string(outcome.Success)}, true)
	if rep := p.Acquire(bus.AcquireRequest{Model: model}); rep.ID != ids[2] {
		t.Fatalf("after a success: %+v, want key 2", rep)
	}
	// And the earliest cooldown running out brings that key back.
	p.Report(bus.Report{ID: ids[2], Model: model, Class: string(outcome.RateLimited), RetryDelay: 600000}, true)
	if rep := p.Acquire(bus.AcquireRequest{Model: model}); rep.NoKey != bus.NoKeyAllCooling {
		t.Fatalf("all cooling again: %+v", rep)
	}
	c.add(firstBack.Sub(c.now()) + time.Millisecond)
	if rep := p.Acquire(bus.AcquireRequest{Model: model}); rep.ID != ids[0] {
		t.Fatalf("after the first cooldown ended: %+v, want key 0", rep)
	}
}
