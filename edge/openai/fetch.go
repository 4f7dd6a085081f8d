package openai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// FetcherOptions bound image downloads.
type FetcherOptions struct {
	MaxBytes int64         // default 20 MiB, Gemini's inline request cap
	Timeout  time.Duration // whole download, default 15 s
	// Allow decides which resolved addresses may be dialled; nil refuses
	// loopback, private, link-local, multicast and unspecified addresses.
	Allow func(netip.Addr) bool
}

// Fetcher downloads images referenced by http(s) URL in chat messages. The
// address check runs on the resolved address at dial time, so neither a
// redirect nor a DNS answer can point it at the gateway's own network.
type Fetcher struct {
	opt    FetcherOptions
	client *http.Client
}

// ErrForbiddenAddress is returned for URLs that resolve to a refused address.
var ErrForbiddenAddress = errors.New("address not allowed (private, loopback or link-local)")

// NewFetcher returns a guarded image fetcher.
func NewFetcher(o FetcherOptions) *Fetcher {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 20 << 20
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.Allow == nil {
		o.Allow = PublicAddress
	}
	dialer := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !o.Allow(ap.Addr().Unmap()) {
				return ErrForbiddenAddress
			}
			return nil
		},
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us and skip the address check
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConns:          16,
		IdleConnTimeout:       30 * time.Second,
	}
	return &Fetcher{opt: o, client: &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return errors.New("redirect to a non-http URL")
			}
			return nil
		},
	}}
}

// PublicAddress reports an address on the public internet.
func PublicAddress(a netip.Addr) bool {
	return a.IsValid() && !a.IsLoopback() && !a.IsPrivate() && !a.IsLinkLocalUnicast() &&
		!a.IsLinkLocalMulticast() && !a.IsInterfaceLocalMulticast() && !a.IsMulticast() &&
		!a.IsUnspecified() && !cgnat.Contains(a)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Fetch downloads an image: at most MaxBytes, within Timeout, image/* only.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (string, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Accept", "image/*")
	req.Header.Set("User-Agent", "gemini-balance-go image fetcher")
	res, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrForbiddenAddress) {
			return "", nil, ErrForbiddenAddress
		}
		return "", nil, fmt.Errorf("download: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("download: HTTP %d", res.StatusCode)
	}
	if res.ContentLength > f.opt.MaxBytes {
		return "", nil, fmt.Errorf("image larger than %d bytes", f.opt.MaxBytes)
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, f.opt.MaxBytes+1))
	if err != nil {
		return "", nil, fmt.Errorf("download: %w", err)
	}
	if int64(len(data)) > f.opt.MaxBytes {
		return "", nil, fmt.Errorf("image larger than %d bytes", f.opt.MaxBytes)
	}
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if !strings.HasPrefix(mt, "image/") {
		mt = http.DetectContentType(data)
	}
	if !strings.HasPrefix(mt, "image/") {
		return "", nil, fmt.Errorf("not an image (%s)", mt)
	}
	return mt, data, nil
}
