package auth

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Network tells what a request's client address and scheme are, believing
// X-Forwarded-For and X-Forwarded-Proto only from TRUSTED_PROXIES.
type Network struct {
	Trusted []netip.Prefix
}

func (n Network) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range n.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peer(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// FromTrustedProxy reports whether the connection comes from TRUSTED_PROXIES.
func (n Network) FromTrustedProxy(r *http.Request) bool {
	return len(n.Trusted) > 0 && n.trusted(peer(r))
}

// ClientIP is the peer address or, behind trusted proxies, the right-most
// X-Forwarded-For entry that is not itself a trusted proxy (entries further
// left are whatever the client chose to send).
func (n Network) ClientIP(r *http.Request) string {
	a := peer(r)
	if !n.FromTrustedProxy(r) {
		return a.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if a = h.Unmap(); !n.trusted(a) {
			break
		}
	}
	return a.String()
}

// Secure reports whether the client reached us over TLS: directly, or
// through a trusted proxy that says X-Forwarded-Proto: https.
func (n Network) Secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return n.FromTrustedProxy(r) && strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
}
