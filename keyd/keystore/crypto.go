package keystore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// Errors at start-up when stored keys cannot be read. Their text tells the
// operator what to do.
var (
	ErrEncryptionKeyMissing = errors.New("stored keys are encrypted: set ENCRYPTION_KEY to the passphrase they were encrypted with")
	ErrEncryptionKeyWrong   = errors.New("ENCRYPTION_KEY does not match the passphrase the stored keys were encrypted with: start with the original ENCRYPTION_KEY")
)

// pbkdf2Rounds makes guessing a weak passphrase from a stolen database slow
// while keeping start-up well under a second.
const pbkdf2Rounds = 200_000

// checkPlain is encrypted into the meta document so a wrong passphrase is
// detected at start even when there are no keys yet.
const checkPlain = "gemini-balance-go keyd encryption check"

// sealer encrypts key secrets with AES-256-GCM. The key id is the additional
// data, so a ciphertext moved onto another key's document does not open.
type sealer struct{ aead cipher.AEAD }

func newSealer(passphrase string, salt []byte) (*sealer, error) {
	key, err := pbkdf2.Key(sha256.New, passphrase, salt, pbkdf2Rounds, 32)
	if err != nil {
		return nil, fmt.Errorf("derive encryption key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain, aad string) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := s.aead.Seal(nonce, nonce, []byte(plain), []byte(aad))
	return base64.StdEncoding.EncodeToString(out)
}

func (s *sealer) open(sealed, aad string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", ErrEncryptionKeyWrong
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(aad))
	if err != nil {
		return "", ErrEncryptionKeyWrong
	}
	return string(plain), nil
}
