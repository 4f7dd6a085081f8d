// Package keydtest is a minimal keyd peer for edge's tests and benchmark
// when the real keyd is not wanted: a real NATS responder on keyd's subjects
// with round-robin selection, the shared policy's effects (disable,
// cooldown) and in-memory file bindings. It is not keyd: no persistence, no
// replicas, no admin endpoints.
package keydtest

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/outcome"
	"github.com/gemini-balance-go/shared/redact"
)

type key struct {
	id, secret, kind string
	disabled         bool
	failures         int
	cool             map[string]time.Time
}

// Keyd is the responder. Its counters are safe to read while it runs.
type Keyd struct {
	mu      sync.Mutex
	keys    []*key
	next    map[string]int
	files   []bus.FileBinding
	reports []bus.Report
	subs    []*nats.Subscription
	// Cooldown is used for a 429 without RetryInfo.
	Cooldown time.Duration
	// MaxFailures disables a key after that many soft failures in a row.
	MaxFailures int
}

// Start serves keyd's acquire, report and file subjects on nc with the given
// secrets per kind (bus.KindGemini, bus.KindVertex).
func Start(nc *nats.Conn, secrets map[string][]string) (*Keyd, error) {
	k := &Keyd{next: map[string]int{}, Cooldown: time.Minute, MaxFailures: 3}
	for kind, list := range secrets {
		for _, s := range list {
			k.keys = append(k.keys, &key{id: redact.ID(s), secret: s, kind: kind, cool: map[string]time.Time{}})
		}
	}
	handlers := map[string]nats.MsgHandler{
		bus.SubjectKeyAcquire: k.acquire,
		bus.SubjectKeyReport:  k.report,
		bus.SubjectFileBind:   k.bind,
		bus.SubjectFileLookup: k.lookup,
		bus.SubjectFileList:   k.list,
		bus.SubjectFileDelete: k.delete,
	}
	for subj, h := range handlers {
		sub, err := nc.QueueSubscribe(subj, "keyd", h)
		if err != nil {
			return nil, err
		}
		k.subs = append(k.subs, sub)
	}
	return k, nc.Flush()
}

// Stop unsubscribes.
func (k *Keyd) Stop() {
	for _, s := range k.subs {
		_ = s.Unsubscribe()
	}
}

// Reports returns the reports received so far.
func (k *Keyd) Reports() []bus.Report {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.reports)
}

// Disabled reports whether the key of a secret is disabled.
func (k *Keyd) Disabled(secret string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, kk := range k.keys {
		if kk.secret == secret {
			return kk.disabled
		}
	}
	return false
}

// Reset enables the key of a secret again and forgets its failures, as an
// admin's re-enable does.
func (k *Keyd) Reset(secret string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, kk := range k.keys {
		if kk.secret == secret {
			kk.disabled, kk.failures, kk.cool = false, 0, map[string]time.Time{}
		}
	}
}

// Files returns the current bindings.
func (k *Keyd) Files() []bus.FileBinding {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.files)
}

func reply(m *nats.Msg, v any) {
	data, _ := json.Marshal(v)
	_ = m.Respond(data)
}

func (k *Keyd) acquire(m *nats.Msg) {
	var req bus.AcquireRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		reply(m, bus.AcquireReply{Error: err.Error()})
		return
	}
	if req.Kind == "" {
		req.Kind = bus.KindGemini
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	var pool []*key
	for _, kk := range k.keys {
		if kk.kind == req.Kind {
			pool = append(pool, kk)
		}
	}
	if len(pool) == 0 {
		reply(m, bus.AcquireReply{NoKey: bus.NoKeyNone})
		return
	}
	usable := func(kk *key) bool { return !kk.disabled && !kk.cool[req.Model].After(now) }
	if req.KeyID != "" {
		for _, kk := range pool {
			if kk.id == req.KeyID && usable(kk) {
				reply(m, bus.AcquireReply{ID: kk.id, Secret: kk.secret, Hint: redact.Hint(kk.secret), Kind: kk.kind})
				return
			}
		}
		reply(m, bus.AcquireReply{NoKey: bus.NoKeyExhausted, Error: "pinned key not usable"})
		return
	}
	start := k.next[req.Kind]
	for i := range pool {
		kk := pool[(start+i)%len(pool)]
		if usable(kk) && !slices.Contains(req.Exclude, kk.id) {
			k.next[req.Kind] = (start + i + 1) % len(pool)
			reply(m, bus.AcquireReply{ID: kk.id, Secret: kk.secret, Hint: redact.Hint(kk.secret), Kind: kk.kind})
			return
		}
	}
	disabled, cooling := 0, 0
	var retryAt time.Time
	for _, kk := range pool {
		switch {
		case kk.disabled:
			disabled++
		case kk.cool[req.Model].After(now):
			cooling++
			if retryAt.IsZero() || kk.cool[req.Model].Before(retryAt) {
				retryAt = kk.cool[req.Model]
			}
		}
	}
	switch {
	case disabled == len(pool):
		reply(m, bus.AcquireReply{NoKey: bus.NoKeyAllDisabled})
	case disabled+cooling == len(pool):
		reply(m, bus.AcquireReply{NoKey: bus.NoKeyAllCooling, RetryAt: retryAt})
	default:
		reply(m, bus.AcquireReply{NoKey: bus.NoKeyExhausted})
	}
}

func (k *Keyd) report(m *nats.Msg) {
	var r bus.Report
	if json.Unmarshal(m.Data, &r) != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reports = append(k.reports, r)
	for _, kk := range k.keys {
		if kk.id != r.ID {
			continue
		}
		switch outcome.Class(r.Class).Effect() {
		case outcome.EffectDisable:
			kk.disabled = true
		case outcome.EffectReset:
			kk.failures = 0
		case outcome.EffectSoftFail:
			kk.failures++
			if kk.failures >= k.MaxFailures {
				kk.disabled = true
			}
		case outcome.EffectCooldown:
			d := time.Duration(r.RetryDelay) * time.Millisecond
			if d <= 0 {
				d = k.Cooldown
			}
			kk.cool[r.Model] = time.Now().Add(d)
		}
	}
	if m.Reply != "" {
		_ = m.Respond([]byte(`{"ok":true}`))
	}
}

type fileQuery struct {
	Name     string `json:"name,omitempty"`
	UploadID string `json:"upload_id,omitempty"`
	TokenID  string `json:"token_id,omitempty"`
	Prefix   string `json:"prefix,omitempty"`
}

func (k *Keyd) find(q fileQuery) int {
	for i, f := range k.files {
		if (q.Name != "" && f.Name == q.Name) || (q.Name == "" && q.UploadID != "" && f.UploadID == q.UploadID) {
			return i
		}
	}
	return -1
}

func (k *Keyd) bind(m *nats.Msg) {
	var b bus.FileBinding
	if err := json.Unmarshal(m.Data, &b); err != nil {
		reply(m, map[string]any{"error": err.Error()})
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	i := k.find(fileQuery{Name: b.Name, UploadID: b.UploadID})
	if i < 0 && b.Name != "" && b.UploadID != "" {
		i = k.find(fileQuery{UploadID: b.UploadID}) // the finished upload replaces its session
	}
	if i >= 0 {
		k.files[i] = b
	} else {
		k.files = append(k.files, b)
	}
	reply(m, map[string]any{"ok": true})
}

func (k *Keyd) lookup(m *nats.Msg) {
	var q fileQuery
	_ = json.Unmarshal(m.Data, &q)
	k.mu.Lock()
	defer k.mu.Unlock()
	if i := k.find(q); i >= 0 && (q.TokenID == "" || k.files[i].TokenID == q.TokenID) {
		reply(m, map[string]any{"file": k.files[i]})
		return
	}
	reply(m, map[string]any{})
}

func (k *Keyd) list(m *nats.Msg) {
	var q fileQuery
	_ = json.Unmarshal(m.Data, &q)
	k.mu.Lock()
	defer k.mu.Unlock()
	out := []bus.FileBinding{}
	for _, f := range k.files {
		if f.Name != "" && strings.HasPrefix(f.Name, q.Prefix) && (q.TokenID == "" || f.TokenID == q.TokenID) {
			out = append(out, f)
		}
	}
	reply(m, map[string]any{"files": out})
}

func (k *Keyd) delete(m *nats.Msg) {
	var q fileQuery
	_ = json.Unmarshal(m.Data, &q)
	k.mu.Lock()
	defer k.mu.Unlock()
	if i := k.find(q); i >= 0 {
		k.files = slices.Delete(k.files, i, i+1)
	}
	reply(m, map[string]any{"ok": true})
}
