package bus_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gemini-balance-go/shared/bus"
)

// batchJSON is a request batch like edge's under load.
func batchJSON(t *testing.T, n int) []byte {
	t.Helper()
	b := bus.RequestBatch{V: bus.Version}
	at := time.Date(2026, 12, 5, 19, 0, 0, 0, time.UTC)
	for i := range n {
		b.Events = append(b.Events, bus.RequestEvent{V: bus.Version, ID: fmt.Sprintf("ev%08d", i), Time: at.Add(time.Duration(i) * time.Millisecond),
			Route: "gemini.generateContent", Method: "POST", Path: "/v1beta/models/gemini-2.5-flash:generateContent", Model: "gemini-2.5-flash",
			TokenID: "tok1", TokenHint: "sk-...abcd", KeyID: fmt.Sprintf("key%d", i%8), KeyHint: "AIza...wxyz", Attempts: 1, Status: 200, Success: true,
			LatencyMS: float64(100 + i%50), Usage: bus.Usage{Prompt: 12, Candidates: 40 + i%7, Total: 52 + i%7}})
	}
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestS2BatchDecodesToTheSameJSONAndIsSeveralTimesSmaller(t *testing.T) {
	plain := batchJSON(t, 130)
	z := bus.EncodeBatchS2(make([]byte, 0, 16), plain) // a short buffer is grown
	got, err := bus.DecodeBatch(bus.EncodingS2, z)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatal("decoded batch differs from the JSON encoded")
	}
	if 3*len(z) > len(plain) {
		t.Fatalf("compressed %d bytes to %d: not even a third off", len(plain), len(z))
	}
	t.Logf("%d events: %d bytes of JSON, %d compressed (%.1f×)", 130, len(plain), len(z), float64(len(plain))/float64(len(z)))

	// A reused buffer gives the same bytes.
	again := bus.EncodeBatchS2(z, batchJSON(t, 3))
	if got, err := bus.DecodeBatch(bus.EncodingS2, again); err != nil || !bytes.Equal(got, batchJSON(t, 3)) {
		t.Fatalf("reused buffer: %v", err)
	}
	// No header: the payload is the JSON as it is.
	if got, err := bus.DecodeBatch("", plain); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("plain payload: %v", err)
	}
}

func TestUndecodableBatchesAreErrorsNotHugeAllocations(t *testing.T) {
	plain := batchJSON(t, 20)
	z := bus.EncodeBatchS2(nil, plain)
	// S2 blocks start with their decoded length: claim 1 GiB.
	bomb := binary.AppendUvarint(nil, 1<<30)
	bomb = append(bomb, z[binary.PutUvarint(make([]byte, 10), uint64(len(plain))):]...)
	for name, c := range map[string]struct {
		encoding string
		payload  []byte
		want     string
	}{
		"unknown encoding": {"gzip", z, `unknown payload encoding "gzip"`},
		"truncated":        {bus.EncodingS2, z[:len(z)/2], "s2 payload"},
		"not s2 at all":    {bus.EncodingS2, plain, "s2 payload"},
		"claims 1 GiB":     {bus.EncodingS2, bomb, "over the"},
		"empty":            {bus.EncodingS2, nil, "s2 payload"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := bus.DecodeBatch(c.encoding, c.payload)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("DecodeBatch = %d bytes, %v; want an error with %q", len(got), err, c.want)
			}
		})
	}
}

// A consumer decodes message after message into one buffer: each decode is
// that message's JSON alone, whether the buffer had room or not.
func TestBatchesDecodedIntoOneBufferAreEachTheirOwn(t *testing.T) {
	big, small := batchJSON(t, 200), batchJSON(t, 3)
	var buf []byte
	for i, want := range [][]byte{big, small, big, small} {
		got, err := bus.DecodeBatchInto(buf, bus.EncodingS2, bus.EncodeBatchS2(nil, want))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("decode %d: %d bytes, %v; want %d bytes", i, len(got), err, len(want))
		}
		if i > 0 && len(want) <= cap(buf) && &got[0] != &buf[:1][0] {
			t.Fatalf("decode %d: a new buffer though %d bytes fit in %d", i, len(want), cap(buf))
		}
		buf = got
	}
	if got, err := bus.DecodeBatchInto(buf, "", small); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("plain JSON: %v", err)
	}
}
