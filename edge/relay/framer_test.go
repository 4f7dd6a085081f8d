package relay

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func frameAll(t *testing.T, r io.Reader, sse bool) (raw []byte, data []string, err error) {
	t.Helper()
	f := newFramer(r, sse)
	for {
		ev, e := f.next()
		if e != nil {
			if e == io.EOF {
				e = nil
			}
			return raw, data, e
		}
		raw = append(raw, ev.Raw...)
		if ev.Data != nil {
			data = append(data, string(ev.Data))
		}
	}
}

func TestFramerCutsSSEEventsWithoutChangingABye(t *testing.T) {
	for name, in := range map[string]string{
		"lf":       "data: {\"a\":1}\n\ndata: {\"b\":\"x\\n\\ny\"}\n\n",
		"crlf":     "data: {\"a\":1}\r\n\r\ndata: {\"b\":2}\r\n\r\n",
		"no space": "data:{\"a\":1}\n\n",
		"big":      "data: {\"t\":\"" + strings.Repeat("z", 20000) + "\"}\n\n",
	} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			raw, data, err := frameAll(t, r, true)
			if err != nil || string(raw) != in {
				t.Fatalf("%s: err %v, bytes changed:\n%q\n%q", name, err, in, raw)
			}
			for _, d := range data {
				if !strings.HasPrefix(d, "{") || !strings.HasSuffix(d, "}") {
					t.Errorf("%s: data %q", name, d)
				}
			}
		}
	}
}

func TestFramerJoinsMultiLineSSEData(t *testing.T) {
	_, data, err := frameAll(t, strings.NewReader("data: {\"a\":\ndata: 1}\n\n"), true)
	if err != nil || len(data) != 1 || data[0] != "{\"a\":\n1}" {
		t.Fatalf("%q %v", data, err)
	}
}

func TestFramerCutsJSONArrayElementsAcrossAnyReadBoundary(t *testing.T) {
	in := "[{\n  \"text\": \"brace } bracket ] quote \\\" end\",\n  \"n\": [1, {\"x\": 2}]\n}\n,\r\n{\"b\": \"\\\\\"}\n]"
	raw, data, err := frameAll(t, iotest.OneByteReader(strings.NewReader(in)), false)
	if err != nil || string(raw) != in {
		t.Fatalf("err %v, bytes changed:\n%q\n%q", err, in, raw)
	}
	if len(data) != 2 || !strings.HasPrefix(data[0], "{") || data[1] != `{"b": "\\"}` {
		t.Fatalf("elements %q", data)
	}
}

func TestFramerReportsAStreamCutInsideAnEvent(t *testing.T) {
	for _, tc := range []struct {
		in  string
		sse bool
	}{
		{"data: {\"a\":1}\n\ndata: {\"b\"", true},
		{"[{\"a\":1}\n,{\"b\":", false},
		{"[{\"a\":1}\n", false}, // array never closed
	} {
		_, _, err := frameAll(t, strings.NewReader(tc.in), tc.sse)
		if !errors.Is(err, errTruncated) {
			t.Errorf("%q: err %v, want errTruncated", tc.in, err)
		}
	}
}

func TestErrorEventDetection(t *testing.T) {
	if !isErrorEvent([]byte(" {\n \"error\": {\"code\": 503}}")) {
		t.Error("top-level error not seen")
	}
	if isErrorEvent([]byte(`{"candidates":[{"content":{"parts":[{"functionCall":{"args":{"error":1}}}]}}]}`)) {
		t.Error("nested error key taken for an upstream error")
	}
	if hasContent([]byte(`{"usageMetadata":{"promptTokenCount":3}}`)) || !hasContent([]byte(`{"candidates":[{"finishReason":"STOP"}]}`)) {
		t.Error("content detection")
	}
}

func TestUsageIsReadWithoutParsingTheWholeResponse(t *testing.T) {
	u := usageOf([]byte(`{"candidates":[{"content":{"parts":[{"text":"usageMetadata"}]}}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":7,"thoughtsTokenCount":24,"cachedContentTokenCount":2,"totalTokenCount":40}}`))
	if u.Prompt != 9 || u.Candidates != 7 || u.Thoughts != 24 || u.Cached != 2 || u.Total != 40 {
		t.Fatalf("%+v", u)
	}
}

func TestRendezvousHashMovesOnlyTheRemovedProxysKeys(t *testing.T) {
	proxies := []string{"http://p1:1", "http://p2:2", "http://p3:3", "http://p4:4"}
	before := map[string]string{}
	counts := map[string]int{}
	for i := range 2000 {
		id := fmt.Sprintf("%016x", i*7919)
		p := PickProxy(id, proxies)
		before[id] = p
		counts[p]++
	}
	for p, n := range counts {
		if n < 300 {
			t.Errorf("proxy %s got only %d of 2000 keys", p, n)
		}
	}
	removed := "http://p3:3"
	rest := []string{"http://p1:1", "http://p2:2", "http://p4:4"}
	for id, p := range before {
		now := PickProxy(id, rest)
		if p != removed && now != p {
			t.Fatalf("key %q moved from %s to %s though its proxy stayed", id, p, now)
		}
	}
}

// The fast reading of usageMetadata must answer exactly as encoding/json
// does, for the usual shape and for every odd one.
func TestUsageFastPathAgreesWithEncodingJSON(t *testing.T) {
	for _, obj := range []string{
		`{"promptTokenCount":9,"candidatesTokenCount":7,"thoughtsTokenCount":24,"cachedContentTokenCount":2,"totalTokenCount":40}`,
		`{ "promptTokenCount" : 9 ,"totalTokenCount":	12 }`,
		`{}`,
		`{"promptTokenCount":null,"totalTokenCount":3}`,
		`{"promptTokenCount":1,"promptTokenCount":5}`,
		`{"promptTokenCount":1.5,"totalTokenCount":3}`,
		`{"promptTokenCount":1e3,"totalTokenCount":3}`,
		`{"promptTokenCount":"9","totalTokenCount":3}`,
		`{"promptTokenCount":99999999999999999999,"totalTokenCount":3}`,
		`{"PromptTokenCount":9,"totalTokenCount":3}`,
		`{"prompt\u0054okenCount":9,"totalTokenCount":3}`,
		`{"promptTokensDetails":[{"modality":"TEXT","tokenCount":9}],"totalTokenCount":9,"note":"a \"quoted\" }"}`,
		`{"promptTokenCount":-4,"x":true,"y":false,"z":{"a":[1,{"b":"}"}]}}`,
		`{"promptTokenCount":9,}`,
		`{"promptTokenCount":tru}`,
	} {
		data := []byte(`{"candidates":[],"usageMetadata":` + obj + `}`)
		if got, want := usageOf(data), usageSlow(objectAt([]byte(obj))); got != want {
			t.Errorf("%s: got %+v, encoding/json %+v", obj, got, want)
		}
	}
}

// countingReader counts the reads it answers.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

// A stream whose events are waiting upstream is taken in a few reads: the
// buffer grows while reads fill it, up to maxRead, instead of one read per
// kilobyte (a syscall each, under a burst of streams).
func TestFramerReadsAWaitingStreamInFewReads(t *testing.T) {
	var in strings.Builder
	for i := range 300 {
		fmt.Fprintf(&in, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"chunk %03d of a long answer, padded to about two hundred bytes of JSON as Gemini sends\"}]}}]}\n\n", i)
	}
	cr := &countingReader{r: strings.NewReader(in.String())}
	f := newFramer(cr, true)
	n := 0
	for {
		_, err := f.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 300 || cr.reads > 12 || len(f.buf) > maxRead {
		t.Fatalf("%d events of %d bytes took %d reads with a %d-byte buffer; want 300 in at most 12 reads, buffer at most %d",
			n, in.Len(), cr.reads, len(f.buf), maxRead)
	}
}
