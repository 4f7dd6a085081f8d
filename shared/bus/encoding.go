package bus

import (
	"fmt"

	"github.com/klauspost/compress/s2"
)

// HeaderEncoding is the NATS header that names how a batch message's payload
// (RequestBatch, ErrorBatch) is compressed. Without it the payload is plain
// JSON, as every message before the header existed was.
//
// Edge compresses request and error batches with S2: the JSON of a batch
// shrinks several times, and JetStream keeps each stream block it writes in
// memory for ten seconds, so at full rate the bytes on the bus were the
// all-in-one's largest live allocation.
const HeaderEncoding = "Gb-Encoding"

// EncodingS2 is HeaderEncoding's value for an S2 block (klauspost/compress/s2).
const EncodingS2 = "s2"

// MaxDecodedBatch bounds a batch's decoded size, so a hostile or corrupt
// compressed message cannot make a consumer allocate without limit. It is
// far above what edge sends (a batch is cut at 512 KiB of JSON).
const MaxDecodedBatch = 16 << 20

// DecodeBatch returns a batch message's JSON, given the value of its
// HeaderEncoding header ("" for plain JSON).
func DecodeBatch(encoding string, payload []byte) ([]byte, error) {
	return DecodeBatchInto(nil, encoding, payload)
}

// DecodeBatchInto is DecodeBatch decoding into buf when its capacity is
// enough, so a consumer can decode message after message into one buffer.
// Plain JSON is payload itself.
func DecodeBatchInto(buf []byte, encoding string, payload []byte) ([]byte, error) {
	switch encoding {
	case "":
		return payload, nil
	case EncodingS2:
		n, err := s2.DecodedLen(payload)
		if err != nil {
			return nil, fmt.Errorf("s2 payload: %w", err)
		}
		if n > MaxDecodedBatch {
			return nil, fmt.Errorf("s2 payload decodes to %d bytes, over the %d-byte bound", n, MaxDecodedBatch)
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		out, err := s2.Decode(buf[:n], payload)
		if err != nil {
			return nil, fmt.Errorf("s2 payload: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown payload encoding %q", encoding)
}

// CompressBatchFrom is the smallest batch JSON edge sends S2-compressed.
// Below it a message saves too little to matter; batches under load (100
// and more events, tens of KiB) shrink several times.
const CompressBatchFrom = 1 << 10

// EncodeBatchS2 appends the S2 block of a batch's JSON to dst[:0] (reusing
// its capacity) and returns it; send it with HeaderEncoding: EncodingS2.
func EncodeBatchS2(dst, batch []byte) []byte {
	if n := s2.MaxEncodedLen(len(batch)); cap(dst) < n {
		dst = make([]byte, n)
	}
	return s2.Encode(dst[:cap(dst)], batch)
}
