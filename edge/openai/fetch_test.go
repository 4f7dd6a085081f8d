package openai

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestFetcherRefusesLoopbackAndPrivateAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(pngBytes) }))
	defer srv.Close()
	f := NewFetcher(FetcherOptions{})
	for _, u := range []string{srv.URL + "/a.png", "http://localhost:1/a.png", "http://10.0.0.1:9/a.png", "http://[::1]:9/a.png", "http://169.254.169.254/latest/meta-data"} {
		if _, _, err := f.Fetch(context.Background(), u); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s: want ErrForbiddenAddress, got %v", u, err)
		}
	}
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "192.168.1.1", "172.16.0.1", "100.64.0.1", "fe80::1", "::", "fd00::1"} {
		if PublicAddress(netip.MustParseAddr(a)) {
			t.Errorf("%s counted as public", a)
		}
	}
	if !PublicAddress(netip.MustParseAddr("8.8.8.8")) {
		t.Error("8.8.8.8 is public")
	}
}

// pngBytes is a 1×1 PNG.
var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

func TestFetcherLimitsSizeTypeAndTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write(pngBytes) // no Content-Type: sniffed
		case "/big":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write([]byte(strings.Repeat("x", 2048)))
		case "/html":
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html></html>"))
		case "/slow":
			time.Sleep(800 * time.Millisecond)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		}
	}))
	defer srv.Close()
	f := NewFetcher(FetcherOptions{MaxBytes: 1024, Timeout: 300 * time.Millisecond, Allow: func(netip.Addr) bool { return true }})
	ctx := context.Background()
	if mt, data, err := f.Fetch(ctx, srv.URL+"/redirect"); err != nil || mt != "image/png" || len(data) != len(pngBytes) {
		t.Errorf("ok image: %q %d %v", mt, len(data), err)
	}
	if _, _, err := f.Fetch(ctx, srv.URL+"/big"); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("big image: %v", err)
	}
	if _, _, err := f.Fetch(ctx, srv.URL+"/html"); err == nil || !strings.Contains(err.Error(), "not an image") {
		t.Errorf("html: %v", err)
	}
	if _, _, err := f.Fetch(ctx, srv.URL+"/slow"); err == nil {
		t.Error("slow download must time out")
	}
}
