package relay

import (
	"context"
	"hash/fnv"
	"net/http"
	"net/url"
	"sync"
)

type proxyKey struct{}

// proxyFromContext is the Transport's Proxy func: the attempt puts the proxy
// chosen for its key on the request context.
func proxyFromContext(r *http.Request) (*url.URL, error) {
	if u, ok := r.Context().Value(proxyKey{}).(*url.URL); ok {
		return u, nil
	}
	return nil, nil
}

// PickProxy chooses a proxy for a key by rendezvous (highest random weight)
// hashing: each key goes to the proxy with the highest hash of (key, proxy).
// Removing a proxy moves only the keys that were on it; adding one takes a
// fair share from each. The mapping is stable across restarts and replicas.
func PickProxy(keyID string, proxies []string) string {
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

var proxyURLs sync.Map // string → *url.URL (nil entry for a bad URL)

func withProxy(ctx context.Context, keyID string, proxies []string, consistent bool, pick func(int) int) context.Context {
	if len(proxies) == 0 {
		return ctx
	}
	var raw string
	if consistent {
		raw = PickProxy(keyID, proxies)
	} else {
		raw = proxies[pick(len(proxies))]
	}
	u, ok := proxyURLs.Load(raw)
	if !ok {
		parsed, err := url.Parse(raw)
		if err != nil || parsed.Host == "" {
			parsed = nil
		}
		u, _ = proxyURLs.LoadOrStore(raw, parsed)
	}
	if pu, _ := u.(*url.URL); pu != nil {
		return context.WithValue(ctx, proxyKey{}, pu)
	}
	return ctx
}
