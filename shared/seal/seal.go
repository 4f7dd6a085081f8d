// Package seal encrypts the secrets that must travel in the settings document
// (proxy credentials) with ENCRYPTION_KEY: admind seals them before storing
// and publishing, every service opens them when a settings version arrives.
// The scheme is keyd's for stored keys: AES-256-GCM under a key derived from
// the passphrase by PBKDF2-SHA256, the sealed value's purpose as additional
// data. The salt travels inside each sealed value, so any process holding
// the passphrase can open it without shared state.
//
//	box := seal.New(os.Getenv("ENCRYPTION_KEY")) // nil without a passphrase
//	s := box.Seal("http://u:p@proxy:3128", "PROXIES")
//	plain, err := box.Open(s, "PROXIES")
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Prefix marks a sealed value: "gbenc:v1:<salt>:<nonce+ciphertext>", both base64.
const Prefix = "gbenc:v1:"

// Rounds makes guessing a weak passphrase from a stolen value slow; the
// derivation runs once per salt and process.
const Rounds = 200_000

// ErrWrongKey means the value was sealed under another passphrase, or altered.
var ErrWrongKey = errors.New("sealed value does not open with ENCRYPTION_KEY (another passphrase, or altered)")

// ErrNoKey means a sealed value arrived where no ENCRYPTION_KEY is set.
var ErrNoKey = errors.New("value is sealed but ENCRYPTION_KEY is not set")

// Box seals and opens values under one passphrase. A nil *Box is valid and
// means "no ENCRYPTION_KEY": Sealed reports false and Open fails with ErrNoKey.
type Box struct {
	passphrase string
	salt       []byte // this process's salt for sealing

	mu    sync.Mutex
	aeads map[string]cipher.AEAD // by salt
}

// New returns a Box for passphrase, or nil when it is empty.
func New(passphrase string) *Box {
	if passphrase == "" {
		return nil
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	return &Box{passphrase: passphrase, salt: salt, aeads: map[string]cipher.AEAD{}}
}

// Enabled reports whether b seals (ENCRYPTION_KEY is set).
func (b *Box) Enabled() bool { return b != nil }

// IsSealed reports whether v is a sealed value.
func IsSealed(v string) bool { return strings.HasPrefix(v, Prefix) }

func (b *Box) aead(salt []byte) (cipher.AEAD, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.aeads[string(salt)]; ok {
		return a, nil
	}
	if len(b.aeads) >= 64 { // bound the cache against many foreign salts
		clear(b.aeads)
	}
	key, err := pbkdf2.Key(sha256.New, b.passphrase, salt, Rounds, 32)
	if err != nil {
		return nil, fmt.Errorf("derive encryption key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	b.aeads[string(salt)] = a
	return a, nil
}

// Seal encrypts plain; aad names what the value is, so a sealed value moved
// into another field does not open. It panics on a nil Box: callers decide
// first what to do without a passphrase.
func (b *Box) Seal(plain, aad string) string {
	a, err := b.aead(b.salt)
	if err != nil {
		panic(err) // pbkdf2 with constant parameters does not fail
	}
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	ct := a.Seal(nonce, nonce, []byte(plain), []byte(aad))
	enc := base64.RawURLEncoding
	return Prefix + enc.EncodeToString(b.salt) + ":" + enc.EncodeToString(ct)
}

// Open decrypts a sealed value; a value that is not sealed is returned as is.
func (b *Box) Open(v, aad string) (string, error) {
	if !IsSealed(v) {
		return v, nil
	}
	if b == nil {
		return "", ErrNoKey
	}
	saltText, ctText, ok := strings.Cut(strings.TrimPrefix(v, Prefix), ":")
	enc := base64.RawURLEncoding
	salt, err1 := enc.DecodeString(saltText)
	ct, err2 := enc.DecodeString(ctText)
	if !ok || err1 != nil || err2 != nil || len(salt) == 0 {
		return "", ErrWrongKey
	}
	a, err := b.aead(salt)
	if err != nil {
		return "", err
	}
	if len(ct) < a.NonceSize() {
		return "", ErrWrongKey
	}
	n := a.NonceSize()
	plain, err := a.Open(nil, ct[:n], ct[n:], []byte(aad))
	if err != nil {
		return "", ErrWrongKey
	}
	return string(plain), nil
}
