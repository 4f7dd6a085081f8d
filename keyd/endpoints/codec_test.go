package endpoints

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/gemini-balance-go/shared/bus"
)

// The acquire reply is the same bytes as encoding/json made, and acquire and
// report requests decode as encoding/json decoded them, odd input included:
// the wire format did not change with the faster codec.
func TestHotCodecMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 5, 16, 30, 1, 123456789, time.FixedZone("x", 3600))
	for _, rep := range []bus.AcquireReply{
		{},
		{ID: "k1", Secret: "AIzaSy-secret-0000000000000000000000", Hint: "AIzaSy…0000", Kind: bus.KindGemini},
		{NoKey: bus.NoKeyAllCooling, RetryAt: at},
		{NoKey: bus.NoKeyAllCooling, RetryAt: at.UTC()},
		{Error: `bad <model> & "quotes" \ ` + "\u2028 \x01 \xff tab\t"},
	} {
		want, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		got, err := gojson.Marshal(rep)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("reply %+v:\n goccy %s (%v)\n std   %s", rep, got, err, want)
		}
	}
	for _, in := range []string{
		`{"kind":"gemini","model":"gemini-2.5-flash","exclude":["a","b"],"key_id":"k"}`,
		`{"kind":"gemini","model":"gemini-2.5-flash"}`,
		`{"KIND":"vertex","Model":"m","exclude":null,"unknown":{"x":[1,2]}}`,
		`{"model":"a","model":"b"}`,
		`{"model":"caf\u00e9 \ud83d\ude00"}`,
		`{"model":1}`,
		`{"exclude":"a"}`,
		`{"model":"a"`,
		`[]`,
		``,
	} {
		var std, hot bus.AcquireRequest
		stdErr := json.Unmarshal([]byte(in), &std)
		hotErr := unmarshalHot([]byte(in), &hot)
		if (stdErr == nil) != (hotErr == nil) || !reflect.DeepEqual(std, hot) {
			t.Errorf("acquire %s: goccy %+v (%v), std %+v (%v)", in, hot, hotErr, std, stdErr)
		}
		if stdErr != nil && hotErr.Error() != stdErr.Error() {
			t.Errorf("acquire %s: error %q, std %q", in, hotErr, stdErr)
		}
	}
	for _, in := range []string{
		`{"id":"k","model":"m","class":"rate_limited","status":429,"retry_delay_ms":1500,"reason":"RATE_LIMIT_EXCEEDED"}`,
		`{"id":"k","model":"m","class":"success","status":200}`,
		`{"status":"200"}`,
		`{"status":1.5}`,
	} {
		var std, hot bus.Report
		stdErr := json.Unmarshal([]byte(in), &std)
		hotErr := unmarshalHot([]byte(in), &hot)
		if (stdErr == nil) != (hotErr == nil) || !reflect.DeepEqual(std, hot) {
			t.Errorf("report %s: goccy %+v (%v), std %+v (%v)", in, hot, hotErr, std, stdErr)
		}
	}
}

// BenchmarkAcquireCodec is keyd's JSON work for one acquire (decode the
// request, encode the reply), with encoding/json and with the hot codec:
//
//	go test ./keyd/endpoints -run '^$' -bench AcquireCodec -benchmem
func BenchmarkAcquireCodec(b *testing.B) {
	in := []byte(`{"kind":"gemini","model":"gemini-2.5-flash","exclude":["0f3a9c2b71d4e5a6"]}`)
	rep := bus.AcquireReply{ID: "0f3a9c2b71d4e5a7", Secret: "AIzaSy-secret-0000000000000000000000", Hint: "AIzaSy…0000", Kind: bus.KindGemini}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req bus.AcquireRequest
			if json.Unmarshal(in, &req) != nil {
				b.Fatal("decode")
			}
			if _, err := json.Marshal(rep); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req bus.AcquireRequest
			if unmarshalHot(in, &req) != nil {
				b.Fatal("decode")
			}
			if _, err := gojson.Marshal(rep); err != nil {
				b.Fatal(err)
			}
		}
	})
}
