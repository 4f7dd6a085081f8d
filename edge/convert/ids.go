package convert

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
)

// Tool-call ids carry Gemini's thoughtSignature so that it survives the round
// trip through a stateless OpenAI client: "call_<random>" or
// "call_<random>.<base64url signature>". Gemini 3 rejects a follow-up whose
// functionCall parts lack their signature; the id is the one thing every
// OpenAI client sends back verbatim.
const idSigSep = '.'

// EncodeToolCallID builds a tool-call id from a random stem and a signature.
func EncodeToolCallID(stem, signature string) string {
	if signature == "" {
		return "call_" + stem
	}
	raw, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		// Not standard base64: carry it as is (still free of '.').
		if strings.IndexByte(signature, idSigSep) < 0 {
			return "call_" + stem + string(idSigSep) + "~" + signature
		}
		return "call_" + stem
	}
	return "call_" + stem + string(idSigSep) + base64.RawURLEncoding.EncodeToString(raw)
}

// DecodeToolCallID returns the signature carried in a tool-call id, if any.
func DecodeToolCallID(id string) (signature string) {
	i := strings.IndexByte(id, idSigSep)
	if i < 0 || i == len(id)-1 {
		return ""
	}
	enc := id[i+1:]
	if enc[0] == '~' {
		return enc[1:]
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(raw)
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// RandomID returns n random alphanumeric characters.
func RandomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}
