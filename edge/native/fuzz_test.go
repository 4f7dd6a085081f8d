package native

import (
	"bytes"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/shared/config"
)

// Fields Inject may change; everything else must come back byte for byte.
var injectable = map[string]bool{"tools": true, "generationConfig": true, "generation_config": true, "safetySettings": true}

// droppable are fields the policy may remove (the system instruction of an
// image-output model).
var droppable = map[string]bool{"systemInstruction": true, "system_instruction": true}

func topLevel(body []byte) (map[string]string, bool) {
	m := map[string]string{}
	dup := false
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		if _, ok := m[k.Str]; ok {
			dup = true
		}
		m[k.Str] = v.Raw
		return true
	})
	return m, dup
}

// FuzzInjectChangesOnlyDocumentedFields checks the inspector/injector on
// arbitrary bodies: non-JSON comes back untouched, JSON stays valid, every
// field outside the documented injections keeps its exact bytes, inside
// generationConfig only responseModalities and thinkingConfig may change,
// the client's tools stay in front, and a no-op returns the input itself.
func FuzzInjectChangesOnlyDocumentedFields(f *testing.F) {
	for _, seed := range []string{
		`{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`,
		`{"contents":[],"tools":[{"functionDeclarations":[{"name":"f"}]}],"toolConfig":{"functionCallingConfig":{"mode":"ANY"}}}`,
		`{"generation_config":{"thinking_config":{"thinking_budget":5},"temperature":1},"safety_settings":[]}`,
		`{"generationConfig":{"responseMimeType":"application/json","responseModalities":["TEXT"]},"unknown":{"x":[1,2]}}`,
		`{"tools":{"google_search":{}},"systemInstruction":{"parts":[{"text":"be brief"}]}}`,
		`{"generationConfig":null,"tools":null}`,
		`{"contents":[{"parts":[{"functionCall":{"name":"f","args":{}},"thoughtSignature":"c2ln"}]}]}`,
		`[1,2,3]`, `"str"`, `{"a":`, ``, `{}`, `{"generationConfig":{"thinkingConfig":7}}`,
	} {
		f.Add([]byte(seed), uint8(0))
		f.Add([]byte(seed), uint8(0xff))
	}
	f.Fuzz(func(t *testing.T, body []byte, flags uint8) {
		st := config.Defaults()
		st.CodeExecutionEnabled = flags&1 != 0
		st.URLContextEnabled = flags&2 != 0
		if flags&4 != 0 {
			st.SafetySettings = nil
		}
		if flags&8 != 0 {
			st.ThinkingBudgetMap = map[string]int{"gemini-2.5-flash": 1024}
		}
		m := models.Model{Requested: "gemini-2.5-flash-x", Upstream: "gemini-2.5-flash",
			Search: flags&16 != 0, Image: flags&32 != 0, NonThinking: flags&64 != 0}
		in := bytes.Clone(body)
		out, applied, _ := Inject(body, m, &st)
		if !bytes.Equal(body, in) {
			t.Fatal("Inject modified its input slice")
		}
		root := gjson.ParseBytes(in)
		if !gjson.ValidBytes(in) || !root.IsObject() {
			if !bytes.Equal(out, in) {
				t.Fatalf("non-object input changed: %q → %q", in, out)
			}
			return
		}
		if len(applied) == 0 && !bytes.Equal(out, in) {
			t.Fatalf("nothing applied but body changed:\n%s\n%s", in, out)
		}
		if !gjson.ValidBytes(out) {
			t.Fatalf("output is not valid JSON:\n%s\n%s", in, out)
		}
		before, dup := topLevel(in)
		if dup {
			return // duplicate keys: which one a JSON reader keeps is undefined
		}
		after, _ := topLevel(out)
		for k, raw := range before {
			if injectable[k] {
				continue
			}
			if droppable[k] && m.Image {
				if _, kept := after[k]; kept && after[k] != raw {
					t.Fatalf("field %q changed: %s → %s", k, raw, after[k])
				}
				continue
			}
			if after[k] != raw {
				t.Fatalf("field %q changed: %s → %s", k, raw, after[k])
			}
		}
		for _, gck := range []string{"generationConfig", "generation_config"} {
			if raw, ok := before[gck]; ok && gjson.Parse(raw).IsObject() {
				inner, _ := topLevel([]byte(raw))
				outer, _ := topLevel([]byte(after[gck]))
				for k, v := range inner {
					if k == "thinkingConfig" || k == "thinking_config" || k == "responseModalities" {
						continue
					}
					if outer[k] != v {
						t.Fatalf("%s.%s changed: %s → %s", gck, k, v, outer[k])
					}
				}
			}
		}
		if raw, ok := before["tools"]; ok && gjson.Parse(raw).IsArray() {
			orig := gjson.Parse(raw).Array()
			now := gjson.Parse(after["tools"]).Array()
			if len(now) < len(orig) {
				t.Fatalf("tools lost: %s → %s", raw, after["tools"])
			}
			for i := range orig {
				if now[i].Raw != orig[i].Raw {
					t.Fatalf("tool %d changed: %s → %s", i, orig[i].Raw, now[i].Raw)
				}
			}
		}
	})
}
