package service

import (
	"context"
	"regexp"
	"strings"
	"time"

	"github.com/gemini-balance-go/keyd/pool"
	"github.com/gemini-balance-go/keyd/recovery"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/outcome"
	"github.com/gemini-balance-go/shared/redact"
)

// view is a key as admins see it: masked, with only running cooldowns.
func view(k pool.Key, now time.Time) keyapi.Key {
	v := keyapi.Key{
		ID: k.ID, Hint: k.Hint, Kind: k.Kind, Status: k.Status(now), Weight: k.Weight, Note: k.Note,
		DisabledReason: k.DisabledReason, DisabledAt: k.DisabledAt, Failures: k.Failures,
		LastUsed: k.LastUsed, LastError: k.LastError, Successes: k.Successes, FailuresTotal: k.FailuresTotal, Created: k.Created,
	}
	for _, c := range k.Cooldowns {
		if c.Until.After(now) {
			v.Cooldowns = append(v.Cooldowns, keyapi.Cooldown{Model: c.Model, Until: c.Until, Strikes: c.Strikes})
		}
	}
	return v
}

// List pages the keys that match a filter. Only the page is copied, so a
// page of 30,000 keys costs one pass over the pool.
func (s *Service) List(req keyapi.ListRequest) keyapi.ListReply {
	size := req.PageSize
	if size <= 0 {
		size = 50
	}
	size = min(size, 1000)
	page := max(1, req.Page)
	f, err := listFilter(req.Kind, req.Status)
	if err != "" {
		return keyapi.ListReply{Keys: []keyapi.Key{}, Error: err}
	}
	f.Search, f.MinFailures = req.Search, req.MinFailures
	rep := keyapi.ListReply{Keys: []keyapi.Key{}, Page: page, PageSize: size}
	now := time.Now()
	from, to := (page-1)*size, page*size
	s.pool.Each(f, func(k *pool.Key) {
		if rep.Total >= from && rep.Total < to {
			rep.Keys = append(rep.Keys, view(*k, now))
		}
		rep.Total++
	})
	return rep
}

// listFilter maps a kind and a status (keyd's own, or gemini-balance's
// valid = not disabled, invalid = disabled) onto a pool filter.
func listFilter(kind, status string) (pool.Filter, string) {
	f := pool.Filter{Kind: kind}
	switch status {
	case "", "all":
	case keyapi.StatusValid:
		f.Status = pool.StatusValid
	case keyapi.StatusInvalid:
		f.Status = bus.KeyDisabled
	case bus.KeyActive, bus.KeyCooling, bus.KeyDisabled:
		f.Status = status
	default:
		return f, "bad request: status must be active, cooling, disabled, valid, invalid or all"
	}
	return f, ""
}

// Export returns full keys, one string each, for the admin's "copy keys":
// the listed ids in the order asked (unknown ones skipped), or every key of
// a status and kind. Logged by count, never by key.
func (s *Service) Export(req keyapi.ExportRequest) keyapi.ExportReply {
	rep := keyapi.ExportReply{Keys: []string{}}
	if len(req.IDs) > 0 {
		for _, id := range req.IDs {
			if k, ok := s.pool.Get(id); ok {
				rep.Keys = append(rep.Keys, k.Secret)
			}
		}
	} else {
		f, err := listFilter(req.Kind, req.Status)
		if err != "" {
			return keyapi.ExportReply{Keys: []string{}, Error: err}
		}
		s.pool.Each(f, func(k *pool.Key) { rep.Keys = append(rep.Keys, k.Secret) })
	}
	s.log.Info("keys exported to admin", "count", len(rep.Keys), "ids", len(req.IDs), "status", req.Status, "kind", req.Kind)
	return rep
}

// Get returns one key, masked.
func (s *Service) Get(req keyapi.GetRequest) keyapi.GetReply {
	k, ok := s.pool.Get(req.ID)
	if !ok {
		return keyapi.GetReply{Error: "not found"}
	}
	v := view(k, time.Now())
	return keyapi.GetReply{Key: &v}
}

// Update sets a key's weight and/or note, stores it and tells the other replicas.
func (s *Service) Update(ctx context.Context, req keyapi.UpdateRequest) keyapi.GetReply {
	k, ok := s.pool.Get(req.ID)
	if !ok {
		return keyapi.GetReply{Error: "not found"}
	}
	weight, note := k.Weight, k.Note
	if req.Weight != nil {
		if *req.Weight < 0 || *req.Weight > pool.MaxWeight {
			return keyapi.GetReply{Error: "weight must be between 0 and 100"}
		}
		weight = *req.Weight
	}
	if req.Note != nil {
		note = *req.Note
	}
	s.pool.SetMeta(k.ID, weight, note, true)
	if err := s.persistNow(ctx, []string{k.ID}); err != nil {
		return keyapi.GetReply{Error: err.Error()}
	}
	s.publish(bus.KeyStateEvent{KeyID: k.ID, KeyHint: k.Hint, Kind: k.Kind, From: k.Status(time.Now()), To: bus.KeyUpdated, Reason: "updated by admin"})
	return s.Get(keyapi.GetRequest{ID: k.ID})
}

// Reveal returns a full key for the admin's copy button. It is logged by id.
func (s *Service) Reveal(req keyapi.GetRequest) keyapi.RevealReply {
	k, ok := s.pool.Get(req.ID)
	if !ok {
		return keyapi.RevealReply{ID: req.ID, Error: "not found"}
	}
	s.log.Info("key revealed to admin", "key_id", k.ID, "key", k.Hint)
	return keyapi.RevealReply{ID: k.ID, Secret: k.Secret}
}

// Stats counts keys per kind and status.
func (s *Service) Stats() keyapi.StatsReply {
	c := s.pool.Counts()
	return keyapi.StatsReply{Counts: c, Total: s.pool.Len(), Replica: s.d.Infra.Replica}
}

// Key patterns recognised in pasted text: Gemini API keys and Vertex Express keys.
var (
	geminiKeyPattern = regexp.MustCompile(`AIza[0-9A-Za-z_\-]{35}`)
	vertexKeyPattern = regexp.MustCompile(`AQ\.[0-9A-Za-z_\-]{20,}`)
	separators       = regexp.MustCompile(`[\s,;"'\[\]{}()|]+`)
)

// Add extracts keys from pasted text (and takes explicit ones as they are),
// stores the new ones and reports added, duplicate and invalid candidates.
func (s *Service) Add(ctx context.Context, req keyapi.AddRequest) keyapi.AddReply {
	rep := keyapi.AddReply{Added: []keyapi.Key{}, Duplicates: []string{}, Invalid: []string{}}
	now := time.Now().UTC()
	kindFor := func(secret string) string {
		switch {
		case req.Kind != "":
			return req.Kind
		case strings.HasPrefix(secret, "AQ."):
			return bus.KindVertex
		default:
			return bus.KindGemini
		}
	}
	switch req.Kind {
	case "", bus.KindGemini, bus.KindVertex, bus.KindPaid:
	default:
		rep.Error = "unknown kind " + req.Kind + " (want gemini, vertex or paid)"
		return rep
	}
	var cands []string
	rest := req.Text
	for _, pat := range []*regexp.Regexp{geminiKeyPattern, vertexKeyPattern} {
		cands = append(cands, pat.FindAllString(rest, -1)...)
		rest = pat.ReplaceAllString(rest, " ")
	}
	for _, frag := range separators.Split(rest, -1) {
		if len(frag) >= 8 { // shorter fragments are labels and punctuation, not failed keys
			rep.Invalid = append(rep.Invalid, redact.Hint(frag))
		}
	}
	for _, k := range req.Keys {
		if k = strings.TrimSpace(k); k != "" {
			cands = append(cands, k)
		}
	}
	seen := map[string]bool{}
	var fresh []pool.Key
	for _, sec := range cands {
		k := pool.NewKey(sec, kindFor(sec), now)
		k.Weight, k.Note = req.Weight, req.Note
		if _, exists := s.pool.Get(k.ID); exists || seen[k.ID] {
			rep.Duplicates = append(rep.Duplicates, k.Hint)
			continue
		}
		seen[k.ID] = true
		fresh = append(fresh, k)
	}
	added, err := s.addKeys(ctx, fresh)
	if err != nil {
		rep.Error = err.Error()
	}
	addedIDs := map[string]bool{}
	for _, k := range added {
		addedIDs[k.ID] = true
		rep.Added = append(rep.Added, view(k, now))
	}
	for _, k := range fresh {
		if !addedIDs[k.ID] && err == nil { // stored meanwhile by another replica
			rep.Duplicates = append(rep.Duplicates, k.Hint)
		}
	}
	rep.AddedCount, rep.DupCount, rep.InvalidCnt = len(rep.Added), len(rep.Duplicates), len(rep.Invalid)
	return rep
}

// addKeys stores new keys, puts them in the pool and tells the other replicas.
func (s *Service) addKeys(ctx context.Context, keys []pool.Key) ([]pool.Key, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	ins, err := s.store.Insert(ctx, keys)
	added := s.pool.Add(ins...)
	evs := make([]bus.KeyStateEvent, 0, len(added))
	for _, k := range added {
		evs = append(evs, bus.KeyStateEvent{KeyID: k.ID, KeyHint: k.Hint, Kind: k.Kind, To: bus.KeyAdded})
	}
	s.publish(evs...)
	return added, err
}

// selected resolves a selection to key ids.
func (s *Service) selected(sel keyapi.Selection) []string {
	if len(sel.IDs) == 0 && !sel.All && sel.Status == "" {
		return nil
	}
	f := pool.Filter{Kind: sel.Kind, Status: sel.Status, IDs: sel.IDs}
	var ids []string
	for _, k := range s.pool.List(f) {
		ids = append(ids, k.ID)
	}
	return ids
}

// Delete removes keys from the store and every replica's pool.
func (s *Service) Delete(ctx context.Context, sel keyapi.Selection) keyapi.ChangeReply {
	ids := s.selected(sel)
	if _, err := s.store.Delete(ctx, ids); err != nil {
		return keyapi.ChangeReply{IDs: []string{}, Error: err.Error()}
	}
	removed := s.pool.Remove(ids...)
	rep := keyapi.ChangeReply{IDs: []string{}}
	for _, k := range removed {
		rep.IDs = append(rep.IDs, k.ID)
		s.publish(bus.KeyStateEvent{KeyID: k.ID, KeyHint: k.Hint, Kind: k.Kind, From: k.Status(time.Now()), To: bus.KeyDeleted, Reason: "deleted by admin"})
	}
	rep.Changed = len(rep.IDs)
	return rep
}

// Reset sets failure counts to zero and makes the keys active again.
func (s *Service) Reset(ctx context.Context, sel keyapi.Selection) keyapi.ChangeReply {
	return s.restoreAll(ctx, sel, "reset by admin")
}

// Enable re-enables keys by hand.
func (s *Service) Enable(ctx context.Context, sel keyapi.Selection) keyapi.ChangeReply {
	return s.restoreAll(ctx, sel, "enabled by admin")
}

func (s *Service) restoreAll(ctx context.Context, sel keyapi.Selection, reason string) keyapi.ChangeReply {
	rep := keyapi.ChangeReply{IDs: []string{}}
	for _, id := range s.selected(sel) {
		if ev, ok := s.pool.Restore(id, reason); ok {
			s.publish(ev)
			rep.IDs = append(rep.IDs, id)
		}
	}
	rep.Changed = len(rep.IDs)
	if err := s.persistNow(ctx, rep.IDs); err != nil {
		rep.Error = err.Error()
	}
	return rep
}

// Disable takes keys out of rotation by hand.
func (s *Service) Disable(ctx context.Context, sel keyapi.Selection) keyapi.ChangeReply {
	rep := keyapi.ChangeReply{IDs: []string{}}
	reason := sel.Reason
	if reason == "" {
		reason = "disabled by admin"
	}
	for _, id := range s.selected(sel) {
		if ev, ok := s.pool.Disable(id, reason); ok {
			s.publish(ev)
			rep.IDs = append(rep.IDs, id)
		}
	}
	rep.Changed = len(rep.IDs)
	if err := s.persistNow(ctx, rep.IDs); err != nil {
		rep.Error = err.Error()
	}
	return rep
}

// Verify makes a live test call with each selected key and applies the verdicts.
func (s *Service) Verify(ctx context.Context, sel keyapi.Selection) keyapi.VerifyReply {
	ids := s.selected(sel)
	keys := make([]pool.Key, 0, len(ids))
	for _, id := range ids {
		if k, ok := s.pool.Get(id); ok {
			keys = append(keys, k)
		}
	}
	results := s.verifyAndApply(ctx, keys, "verified by admin")
	rep := keyapi.VerifyReply{Results: make([]keyapi.VerifyResult, 0, len(results))}
	now := time.Now()
	for _, r := range results {
		vr := keyapi.VerifyResult{ID: r.ID, Hint: r.Hint, OK: r.OK(), Class: string(r.Verdict.Class), Status: r.Verdict.Status,
			Error: r.Err, LatencyMS: float64(r.Latency.Microseconds()) / 1000}
		if k, ok := s.pool.Get(r.ID); ok {
			vr.State = k.Status(now)
		}
		if vr.OK {
			rep.OK++
		} else {
			rep.Failed++
		}
		rep.Results = append(rep.Results, vr)
	}
	return rep
}

// verifyAndApply checks keys upstream: a good key is restored (enabled,
// cooldowns and count cleared); a bad answer is applied like any report.
func (s *Service) verifyAndApply(ctx context.Context, keys []pool.Key, reason string) []recovery.Result {
	results := s.verify.Verify(ctx, keys)
	model := pool.NormalizeModel(s.d.Settings.Get().TestModel)
	var changed []string
	for i, r := range results {
		k := keys[i]
		switch {
		case r.Verdict.Class == outcome.Canceled:
		case r.OK():
			if k.Disabled || len(k.Cooldowns) > 0 || k.Failures > 0 {
				if ev, ok := s.pool.Restore(k.ID, reason); ok {
					s.publish(ev)
					changed = append(changed, k.ID)
				}
			}
		default:
			s.Report(r.Report(model))
			changed = append(changed, k.ID)
		}
	}
	if err := s.persistNow(context.WithoutCancel(ctx), changed); err != nil {
		s.log.Warn("persist verify results failed; the batched writer retries", "err", err)
		s.pool.MarkDirty(changed...)
	}
	return results
}

// onRecoverTick re-verifies disabled keys and keys whose cooldown ran out.
func (s *Service) onRecoverTick(ctx context.Context, t bus.Tick) error {
	keys := s.pool.RecoveryCandidates()
	if len(keys) == 0 {
		s.log.Debug("recover tick: nothing to verify", "slot", t.Slot)
		return nil
	}
	results := s.verifyAndApply(ctx, keys, "recovered on tick "+t.Slot)
	ok := 0
	for _, r := range results {
		if r.OK() {
			ok++
		}
	}
	s.metrics.recovered.Add(float64(ok))
	s.log.Info("recover tick", "slot", t.Slot, "verified", len(results), "restored", ok)
	return ctx.Err()
}

// modelsTTL is how long an upstream model list is reused.
const modelsTTL = 5 * time.Minute

// Models lists the upstream models with one pool key (the next one in
// rotation), for the admin's model pickers; the answer is cached.
func (s *Service) Models(ctx context.Context, _ struct{}) keyapi.ModelsReply {
	s.modelsMu.Lock()
	defer s.modelsMu.Unlock()
	if s.models.Error == "" && time.Since(s.models.FetchedAt) < modelsTTL {
		return s.models
	}
	a := s.pool.Acquire(bus.AcquireRequest{Kind: bus.KindGemini})
	if a.ID == "" {
		return keyapi.ModelsReply{Models: []keyapi.ModelInfo{}, Error: "no usable Gemini key in the pool (" + a.NoKey + ")"}
	}
	list, err := s.verify.ListModels(ctx, pool.Key{ID: a.ID, Secret: a.Secret, Hint: a.Hint, Kind: a.Kind})
	if err != nil {
		s.log.Warn("upstream model list failed", "key_id", a.ID, "err", err)
		return keyapi.ModelsReply{Models: []keyapi.ModelInfo{}, Error: err.Error()}
	}
	s.models = keyapi.ModelsReply{Models: list, FetchedAt: time.Now().UTC()}
	return s.models
}
