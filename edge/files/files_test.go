package files

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
)

const base = "http://127.0.0.1:9999"

// refCases are the ways a request can name a file; each must be found.
var refCases = []struct {
	name, body string
	want       []string
}{
	{"native camel", `{"contents":[{"parts":[{"fileData":{"fileUri":"http://127.0.0.1:9999/v1beta/files/abc","mimeType":"application/pdf"}}]}]}`, []string{"files/abc"}},
	{"escaped slashes", `{"contents":[{"parts":[{"fileData":{"fileUri":"http:\/\/127.0.0.1:9999\/v1beta\/files\/abc"}}]}]}`, []string{"files/abc"}},
	{"unicode escaped key and value", `{"contents":[{"parts":[{"file\u0044ata":{"file\u0055ri":"https://generativelanguage.googleapis.com/v1beta/\u0066iles/abc"}}]}]}`, []string{"files/abc"}},
	{"snake case", `{"contents":[{"parts":[{"file_data":{"file_uri":"https://generativelanguage.googleapis.com/v1beta/files/abc"}}]}]}`, []string{"files/abc"}},
	{"mixed spelling", `{"contents":[{"parts":[{"fileData":{"file_uri":"https://generativelanguage.googleapis.com/v1beta/files/abc"}}]}]}`, []string{"files/abc"}},
	{"system instruction", `{"systemInstruction":{"parts":[{"fileData":{"fileUri":"files/sys"}}]},"contents":[{"parts":[{"text":"hi"}]}]}`, []string{"files/sys"}},
	{"snake system instruction", `{"system_instruction":{"parts":[{"file_data":{"file_uri":"/v1beta/files/sys"}}]}}`, []string{"files/sys"}},
	{"second reference", `{"contents":[{"parts":[{"fileData":{"fileUri":"files/mine"}},{"text":"and"},{"fileData":{"fileUri":"files/theirs"}}]}]}`, []string{"files/mine", "files/theirs"}},
	{"dot segments", `{"contents":[{"parts":[{"fileData":{"fileUri":"https://generativelanguage.googleapis.com/v1beta/x/../files/abc"}}]}]}`, []string{"files/abc"}},
	{"percent encoded", `{"contents":[{"parts":[{"fileData":{"fileUri":"https://generativelanguage.googleapis.com/v1beta/%66iles/abc"}}]}]}`, []string{"files/abc"}},
	{"download suffix", `{"contents":[{"parts":[{"fileData":{"fileUri":"files/abc:download"}}]}]}`, []string{"files/abc"}},
	{"function response parts", `{"contents":[{"parts":[{"functionResponse":{"name":"f","parts":[{"fileData":{"fileUri":"files/fr"}}]}}]}]}`, []string{"files/fr"}},
	{"openai file_id", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"abc"}}]}]}`, []string{"files/abc"}},
	{"openai file_id with prefix", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"files/abc"}}]}]}`, []string{"files/abc"}},
	{"openai file_data url", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"https://generativelanguage.googleapis.com/v1beta/files/abc"}}]}]}`, []string{"files/abc"}},
	{"openai image_url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://127.0.0.1:9999/v1beta/files/img"}}]}]}`, []string{"files/img"}},
	{"duplicates once", `{"a":[{"fileUri":"files/x"},{"fileUri":"files/x"}]}`, []string{"files/x"}},
	{"other host is a web URL", `{"contents":[{"parts":[{"fileData":{"fileUri":"https://example.com/files/report.pdf"}}]}]}`, nil},
	{"youtube", `{"contents":[{"parts":[{"fileData":{"fileUri":"https://www.youtube.com/watch?v=x"}}]}]}`, nil},
	{"data url", `{"messages":[{"content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}`, nil},
	{"text mentioning files", `{"contents":[{"parts":[{"text":"see files/abc"}]}]}`, nil},
	{"no body", ``, nil},
	{"lower-case escapes", `{"contents":[{"parts":[{"fileData":{"fileUri":"https://generativelanguage.googleapis.com/v1beta/\u0066\u0069les/abc"}}]}]}`, []string{"files/abc"}},
	{"escaped key only", `{"contents":[{"parts":[{"fileData":{"fileUri":"\u0066iles/abc"}}]}]}`, []string{"files/abc"}},
}

func TestRefsFindsEveryReference(t *testing.T) {
	for _, c := range refCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Refs([]byte(c.body), base)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestRefsRefusesTooManyTooDeepAndBrokenBodies(t *testing.T) {
	var parts []string
	for i := 0; i <= MaxRefs; i++ {
		parts = append(parts, fmt.Sprintf(`{"fileData":{"fileUri":"files/f%d"}}`, i))
	}
	if _, err := Refs([]byte(`{"contents":[{"parts":[`+strings.Join(parts, ",")+`]}]}`), base); err == nil {
		t.Error("more than MaxRefs files accepted")
	}
	if refs, err := Refs([]byte(`{"contents":[{"parts":[`+strings.Join(parts[:MaxRefs], ",")+`]}]}`), base); err != nil || len(refs) != MaxRefs {
		t.Errorf("MaxRefs files: %d, %v", len(refs), err)
	}
	deep := strings.Repeat(`{"a":`, MaxDepth+1) + `"files/x"` + strings.Repeat("}", MaxDepth+1)
	if _, err := Refs([]byte(deep), base); err == nil {
		t.Error("body deeper than MaxDepth accepted")
	}
	if _, err := Refs([]byte(`{"fileUri":"files/x"`), base); err == nil {
		t.Error("broken JSON naming a file accepted")
	}
	if _, err := Refs([]byte(`{"fileUri":"files/x"} {"fileUri":"files/y"}`), base); err == nil {
		t.Error("two JSON values accepted")
	}
}

// lookup is keyd's file index in memory.
type lookup map[string]bus.FileBinding

func (l lookup) LookupFile(_ context.Context, q keyapi.FileQuery) (bus.FileBinding, error) {
	b, ok := l[q.Name]
	if !ok {
		return b, bus.ErrNotFound
	}
	return b, nil
}

func TestCheckLetsOnlyTheOwnerUseAFile(t *testing.T) {
	idx := lookup{
		"files/a1": {Name: "files/a1", KeyID: "k1", TokenID: "A"},
		"files/a2": {Name: "files/a2", KeyID: "k2", TokenID: "A"},
		"files/b1": {Name: "files/b1", KeyID: "k1", TokenID: "B"},
	}
	ref := func(names ...string) []byte {
		var ps []string
		for _, n := range names {
			ps = append(ps, `{"fileData":{"fileUri":"`+n+`"}}`)
		}
		return []byte(`{"contents":[{"parts":[` + strings.Join(ps, ",") + `]}]}`)
	}
	iso := Options{TokenID: "A", Isolation: true, BaseURL: base}
	cases := []struct {
		name   string
		body   []byte
		o      Options
		pin    string
		status int
	}{
		{"own file pins its key", ref("files/a1"), iso, "k1", 0},
		{"another token's file", ref("files/b1"), iso, "", 403},
		{"another's file second", ref("files/a1", "files/b1"), iso, "", 403},
		{"unknown file under isolation", ref("files/zz"), iso, "", 403},
		{"files on two keys", ref("files/a1", "files/a2"), iso, "", 400},
		{"no files", []byte(`{"contents":[]}`), iso, "", 0},
		{"shared mode: another's file pins", ref("files/b1"), Options{TokenID: "A", BaseURL: base}, "k1", 0},
		{"shared mode: unknown file goes upstream", ref("files/zz"), Options{TokenID: "A", BaseURL: base}, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pin, deny := Check(context.Background(), idx, c.body, c.o)
			status := 0
			if deny != nil {
				status = deny.Status
			}
			if pin != c.pin || status != c.status {
				t.Fatalf("pin %q status %d (%v), want %q %d", pin, status, deny, c.pin, c.status)
			}
		})
	}
	if _, deny := Check(context.Background(), failing{}, ref("files/a1"), iso); deny == nil || deny.Status != http.StatusServiceUnavailable {
		t.Errorf("keyd down: %v", deny)
	}
}

type failing struct{}

func (failing) LookupFile(context.Context, keyapi.FileQuery) (bus.FileBinding, error) {
	return bus.FileBinding{}, fmt.Errorf("nats: timeout")
}

// FuzzRefs: never panics, and a fileData reference wrapped in any of the
// spellings and escapes is always found.
func FuzzRefs(f *testing.F) {
	for _, c := range refCases {
		f.Add([]byte(c.body), "abc")
	}
	f.Add([]byte(strings.Repeat("[", 500)), "x")
	f.Add([]byte(`{"fileUri":`), "x")
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		_, _ = Refs(body, base)
		if id == "" || strings.ContainsAny(id, "/:?#%\\\"\x00") || strings.TrimSpace(id) != id || id == "." || id == ".." || !isPrintable(id) {
			return
		}
		for _, form := range []string{
			`{"contents":[{"parts":[{"text":"x"},{"fileData":{"fileUri":"files/` + id + `"}}]}]}`,
			`{"systemInstruction":{"parts":[{"file_data":{"fileUri":"http:\/\/127.0.0.1:9999\/v1beta\/files\/` + id + `"}}]}}`,
		} {
			refs, err := Refs([]byte(form), base)
			if err != nil {
				return // the id made the JSON invalid
			}
			if len(refs) != 1 || refs[0] != "files/"+id {
				t.Fatalf("%s: got %v", form, refs)
			}
		}
	})
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x21 || r > 0x7e {
			return false
		}
	}
	return true
}
