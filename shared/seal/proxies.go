package seal

import (
	"errors"
	"fmt"
	"strings"
)

// aadProxy binds sealed proxy entries to PROXIES.
const aadProxy = "PROXIES"

// ErrProxyCredentialsNeedKey refuses a proxy with credentials when no
// ENCRYPTION_KEY is set: they would otherwise sit in MongoDB and travel on the
// settings bucket in clear.
var ErrProxyCredentialsNeedKey = errors.New("PROXIES: a proxy with credentials (user:pass@) needs ENCRYPTION_KEY, so the password is not stored and published in clear")

// HasCredentials reports whether a proxy entry carries user info.
func HasCredentials(proxy string) bool { return strings.Contains(proxy, "@") }

// SealProxies returns the entries as they may be stored and published: every
// entry with credentials sealed whole (the host is not secret, but one
// opaque value is simpler and reveals nothing). Without a Box such an entry
// is refused.
func (b *Box) SealProxies(list []string) ([]string, error) {
	var out []string
	for _, p := range list {
		if IsSealed(p) || !HasCredentials(p) {
			out = append(out, p)
			continue
		}
		if b == nil {
			return nil, ErrProxyCredentialsNeedKey
		}
		out = append(out, b.Seal(p, aadProxy))
	}
	return out, nil
}

// OpenProxies opens sealed entries. An entry that does not open (no or
// another ENCRYPTION_KEY) is left out, so no call goes to a proxy with a
// garbled address, and reported in err for the caller to log.
func (b *Box) OpenProxies(list []string) ([]string, error) {
	var out []string
	var errs []error
	for i, p := range list {
		plain, err := b.Open(p, aadProxy)
		if err != nil {
			errs = append(errs, fmt.Errorf("PROXIES entry %d: %w", i+1, err))
			continue
		}
		out = append(out, plain)
	}
	return out, errors.Join(errs...)
}
