package relay

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gemini-balance-go/shared/proxies"
)

// proxyFromContext is the Transport's Proxy func: the attempt puts the proxy
// chosen for its key on the request context.
func proxyFromContext(r *http.Request) (*url.URL, error) { return proxies.FromContext(r) }

// PickProxy chooses a proxy for a key by rendezvous hashing (proxies.Pick),
// the same choice keyd makes when it verifies the key.
func PickProxy(keyID string, list []string) string { return proxies.Pick(keyID, list) }

func withProxy(ctx context.Context, keyID string, list []string, consistent bool, pick func(int) int) context.Context {
	return proxies.WithKey(ctx, keyID, list, consistent, pick)
}
