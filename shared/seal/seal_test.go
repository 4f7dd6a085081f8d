package seal_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gemini-balance-go/shared/seal"
)

func TestSealedProxyOpensOnlyWithTheSamePassphrase(t *testing.T) {
	const proxy = "http://alice:s3cret-pass@proxy.example:3128"
	sealed, err := seal.New("passphrase one").SealProxies([]string{proxy, "socks5://open.example:1080"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed[0], "s3cret-pass") || !seal.IsSealed(sealed[0]) {
		t.Fatalf("credentials in clear: %q", sealed[0])
	}
	if sealed[1] != "socks5://open.example:1080" {
		t.Fatalf("a proxy without credentials was changed: %q", sealed[1])
	}
	// Another process with the same passphrase (its own salt) opens it.
	got, err := seal.New("passphrase one").OpenProxies(sealed)
	if err != nil || len(got) != 2 || got[0] != proxy {
		t.Fatalf("open = %v, %v", got, err)
	}
	got, err = seal.New("another").OpenProxies(sealed)
	if !errors.Is(err, seal.ErrWrongKey) || len(got) != 1 {
		t.Fatalf("wrong passphrase: %v, %v", got, err)
	}
	var none *seal.Box
	got, err = none.OpenProxies(sealed)
	if !errors.Is(err, seal.ErrNoKey) || len(got) != 1 {
		t.Fatalf("no passphrase: %v, %v", got, err)
	}
}

func TestProxyCredentialsWithoutEncryptionKeyAreRefused(t *testing.T) {
	var none *seal.Box
	if _, err := none.SealProxies([]string{"http://u:p@h:1"}); !errors.Is(err, seal.ErrProxyCredentialsNeedKey) {
		t.Fatalf("err = %v", err)
	}
	if out, err := none.SealProxies([]string{"http://h:1"}); err != nil || out[0] != "http://h:1" {
		t.Fatalf("plain proxy: %v %v", out, err)
	}
}

func TestASealedValueMovedToAnotherPurposeDoesNotOpen(t *testing.T) {
	b := seal.New("k")
	v := b.Seal("secret", "PROXIES")
	if _, err := b.Open(v, "OTHER"); !errors.Is(err, seal.ErrWrongKey) {
		t.Fatalf("err = %v", err)
	}
}
