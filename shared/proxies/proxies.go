// Package proxies picks the PROXIES entry an upstream call with a key goes
// through. edge (every relayed call) and keyd (key verification) both use
// it, so a key reaches Google through the same proxy from either service.
//
//	tr := &http.Transport{Proxy: proxies.FromContext}
//	ctx = proxies.WithKey(ctx, keyID, s.Proxies, s.ProxiesConsistentHash, rand.IntN)
//	req, _ := http.NewRequestWithContext(ctx, ...) // goes through the key's proxy
package proxies

import (
	"context"
	"hash/fnv"
	"net/http"
	"net/url"
	"sync"
)

type ctxKey struct{}

// FromContext is an http.Transport's Proxy func: WithKey put the proxy
// chosen for the call's key on the request context; none means direct.
func FromContext(r *http.Request) (*url.URL, error) {
	if u, ok := r.Context().Value(ctxKey{}).(*url.URL); ok {
		return u, nil
	}
	return nil, nil
}

// Pick chooses a proxy for a key by rendezvous (highest random weight)
// hashing: each key goes to the proxy with the highest hash of (key, proxy).
// Removing a proxy moves only the keys that were on it; adding one takes a
// fair share from each. The mapping is stable across restarts and replicas.
func Pick(keyID string, proxies []string) string {
	best, bestScore := "", uint64(0)
	for _, p := range proxies {
		h := fnv.New64a()
		_, _ = h.Write([]byte(keyID))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(p))
		if s := mix64(h.Sum64()); best == "" || s > bestScore {
			best, bestScore = p, s
		}
	}
	return best
}

// mix64 is murmur3's finalizer: FNV alone barely spreads proxies whose names
// differ only in their last characters.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

var parsed sync.Map // string → *url.URL (nil entry for a bad URL)

// WithKey returns ctx carrying the proxy for keyID: by Pick when consistent,
// else a random one (pick(n) returns an index below n). Without proxies, or
// with an unparsable entry, the call goes direct.
func WithKey(ctx context.Context, keyID string, proxies []string, consistent bool, pick func(int) int) context.Context {
	if len(proxies) == 0 {
		return ctx
	}
	var raw string
	if consistent {
		raw = Pick(keyID, proxies)
	} else {
		raw = proxies[pick(len(proxies))]
	}
	u, ok := parsed.Load(raw)
	if !ok {
		p, err := url.Parse(raw)
		if err != nil || p.Host == "" {
			p = nil
		}
		u, _ = parsed.LoadOrStore(raw, p)
	}
	if pu, _ := u.(*url.URL); pu != nil {
		return context.WithValue(ctx, ctxKey{}, pu)
	}
	return ctx
}
