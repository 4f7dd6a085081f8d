package relay

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// chunkReader hands out its input in reads of a fuzzed size, so event
// boundaries fall anywhere.
type chunkReader struct {
	b    []byte
	size int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.size, len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

func stripSpace(b []byte) []byte {
	return bytes.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, b)
}

// FuzzFramerReassemblesItsInput: on any upstream bytes, read in any chunk
// size, the framer never panics and loses nothing: the Raw of its events
// put back together is the input (for SSE, up to the blank lines it drops
// between events), or a prefix of it when it reports a truncated stream;
// each array element's Data lies inside its Raw. Asking ready (which may
// cut the next event early) changes none of it.
func FuzzFramerReassemblesItsInput(f *testing.F) {
	for _, s := range []string{
		"data: {\"a\":1}\n\ndata: {\"b\":\"x\\n\\ny\"}\n\n",
		"data: {\"a\":1}\r\n\r\ndata: {\"b\":2}\r\n\r\n",
		"data: {\"a\":\ndata: 1}\n\n",
		"\n\n\ndata: {}\n\n\n\n",
		"data: {\"a\":1}\n",
		`[{"candidates":[{"content":{"parts":[{"text":"a]}"}]}}]}` + "\r\n,\r\n" + `{"b":"\"}"}]`,
		`[]`, ` [ ] `, `[{"a":1},{"b":2}]  `, `[{"a":`, `[{"a":"\`, `]]]`, `}{`, `[[[[`,
		"[" + strings.Repeat("[", 10000), "data: " + strings.Repeat("[", 10000) + "\n\n",
		`[{"t":"` + "\xff\xfe\xc3" + `"}]`, "data: \xff\xfe\n\n",
		`{"error":{"code":500}}`,
	} {
		for _, sse := range []bool{false, true} {
			f.Add([]byte(s), sse, uint8(1))
			f.Add([]byte(s), sse, uint8(7))
			f.Add([]byte(s), sse, uint8(128+5))
			f.Add([]byte(s), sse, uint8(64+40))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, sse bool, size uint8) {
		chunk := int(size%64) + 1
		if size&64 != 0 {
			chunk *= 64 // reads that fill the buffer, so it grows
		}
		fr := newFramer(&chunkReader{b: in, size: chunk}, sse)
		peek := size >= 128 // ask ready before each event, as Pump does
		var raw []byte
		var err error
		for range len(in) + 2 { // every event consumes a byte, so this bounds the loop
			if peek {
				fr.ready()
			}
			var ev Event
			if ev, err = fr.next(); err != nil {
				break
			}
			if !sse && ev.Data != nil && !bytes.Contains(ev.Raw, ev.Data) {
				t.Fatalf("data %q outside its raw %q", ev.Data, ev.Raw)
			}
			raw = append(raw, ev.Raw...)
		}
		switch {
		case err == io.EOF && !sse:
			if !bytes.Equal(raw, in) {
				t.Fatalf("array: reassembled %q from %q", raw, in)
			}
		case err == io.EOF:
			if !bytes.Equal(stripSpace(raw), stripSpace(in)) {
				t.Fatalf("sse: reassembled %q from %q", raw, in)
			}
		case err == errTruncated:
			if !bytes.HasPrefix(stripSpace(in), stripSpace(raw)) {
				t.Fatalf("truncated: events %q are not a prefix of %q", raw, in)
			}
		case err == nil:
			t.Fatalf("framer produced more events than input bytes on %q", in)
		default:
			t.Fatalf("unexpected error %v on %q", err, in)
		}
	})
}

// FuzzUsageAgreesWithEncodingJSON: whatever follows "usageMetadata", the
// fast reading answers as encoding/json does and never panics.
//
//	go test ./edge/relay -run '^$' -fuzz FuzzUsageAgrees -fuzztime 30s
func FuzzUsageAgreesWithEncodingJSON(f *testing.F) {
	f.Add(`{"promptTokenCount":9,"candidatesTokenCount":7,"totalTokenCount":16}`)
	f.Add(`{"promptTokensDetails":[{"modality":"TEXT","tokenCount":9}],"totalTokenCount":9}`)
	f.Add(`{"totalTokenCount":1.0,"x":"\"}"}`)
	f.Add(`{"TOTALTOKENCOUNT":3}`)
	f.Fuzz(func(t *testing.T, after string) {
		got := usageOf([]byte(`{"usageMetadata":` + after))
		i := strings.IndexByte(after, '{')
		if i < 0 {
			return
		}
		obj := objectAt([]byte(after[i:]))
		if obj == nil {
			return
		}
		if ref := usageSlow(obj); got != ref {
			t.Fatalf("%q: got %+v, encoding/json %+v", after, got, ref)
		}
	})
}
