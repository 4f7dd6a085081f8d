package guard

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// hostileSeeds are the bodies of issue 9's hostile-input corpus and the
// edge cases of the grammar; the fuzzer starts from them.
var hostileSeeds = []string{
	`{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`,
	`[]`, `{}`, `[[]]`, `{"a":{}}`, ` 1 `, `-0.5e+10`, `"\u00e9\n"`, `true`, `null`,
	`[1,]`, `{"a":1,}`, `{"a" 1}`, `{1:2}`, `01`, `1.`, `.5`, `1e`, `-`, `"\x"`, `"\u12"`, "\"\x01\"",
	`[1 2]`, `{"a":1}{}`, ``, ` `, `nul`, `[`, `{`, `{"a":`, `"abc`,
	strings.Repeat("[", 200), strings.Repeat(`{"a":`, 200),
	strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth),
	strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
	`{"text":"` + "\xff\xfe bad utf-8 \xc3" + `"}`,
	`{"contents":"not an array","generationConfig":[1,2]}`,
}

func TestCheckJSONAcceptsValidAndRejectsInvalidLikeEncodingJSON(t *testing.T) {
	for _, s := range hostileSeeds {
		err := CheckJSON([]byte(s))
		if TooDeep(err) {
			continue
		}
		if got, want := err == nil, json.Valid([]byte(s)); got != want {
			t.Errorf("%.60q: CheckJSON err %v, json.Valid %v", s, err, want)
		}
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("%.60q: error %T is neither too deep nor a syntax error", s, err)
			}
		}
	}
}

func TestCheckJSONBoundsNestingAtMaxDepth(t *testing.T) {
	for _, open := range []string{"[", `{"k":`} {
		closeAll := func(n int) string {
			if open == "[" {
				return strings.Repeat("]", n)
			}
			return strings.Repeat("}", n)
		}
		at := strings.Repeat(open, MaxDepth) + "0" + closeAll(MaxDepth)
		if err := CheckJSON([]byte(at)); err != nil {
			t.Errorf("%s nested %d deep: %v", open, MaxDepth, err)
		}
		over := strings.Repeat(open, MaxDepth+1) + "0" + closeAll(MaxDepth+1)
		if err := CheckJSON([]byte(over)); !TooDeep(err) {
			t.Errorf("%s nested %d deep: want ErrTooDeep, got %v", open, MaxDepth+1, err)
		}
	}
}

func TestCheckJSONSurvivesTwentyMegabytesOfBrackets(t *testing.T) {
	b := []byte(strings.Repeat("[", 20<<20))
	if err := CheckJSON(b); !TooDeep(err) {
		t.Fatalf("want ErrTooDeep, got %v", err)
	}
}

func TestCheckJSONDoesNotAllocate(t *testing.T) {
	b := []byte(`{"contents":[{"role":"user","parts":[{"text":"hello \"world\" \u00e9"},{"n":[1,2.5e3,-0,true,false,null]}]}]}`)
	if n := testing.AllocsPerRun(100, func() { _ = CheckJSON(b) }); n != 0 {
		t.Fatalf("%v allocations per check", n)
	}
}

// FuzzCheckJSON: CheckJSON never panics, and whenever it does not refuse an
// input for depth it agrees with encoding/json on validity. An input it
// calls too deep really nests deeper than MaxDepth.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range hostileSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckJSON(b)
		if TooDeep(err) {
			if nesting(b) <= MaxDepth {
				t.Fatalf("%q: too deep at nesting %d", b, nesting(b))
			}
			return
		}
		if got, want := err == nil, json.Valid(b); got != want {
			t.Fatalf("%q: CheckJSON err %v, json.Valid %v", b, err, want)
		}
	})
}

// nesting is the deepest bracket nesting outside strings.
func nesting(b []byte) int {
	d, top, inStr, esc := 0, 0, false, false
	for _, c := range b {
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case inStr && c == '"':
			inStr = false
		case inStr:
		case c == '"':
			inStr = true
		case c == '[' || c == '{':
			d++
			top = max(top, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return top
}

func BenchmarkCheckJSON(b *testing.B) {
	body := []byte(`{"contents":[{"role":"user","parts":[{"text":"` + strings.Repeat("lorem ipsum ", 1000) + `"}]}],"generationConfig":{"temperature":0.5}}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_ = CheckJSON(body)
	}
}
