package models

import (
	"bytes"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/gemini-balance-go/shared/config"
)

// RewriteModelList filters and extends a Gemini models list body; the native
// and OpenAI model routes both serve it. Entries are kept
// byte for byte; a derived entry is a copy of its base with the name,
// displayName and description changed.
func RewriteModelList(body []byte, st *config.Settings) []byte {
	list := gjson.GetBytes(body, "models")
	if !list.IsArray() {
		return body
	}
	var out bytes.Buffer
	out.Grow(len(body) + len(body)/4)
	out.WriteString(`{"models":[`)
	n := 0
	write := func(raw string) {
		if n > 0 {
			out.WriteByte(',')
		}
		out.WriteString(raw)
		n++
	}
	var derived []string
	list.ForEach(func(_, mdl gjson.Result) bool {
		id := strings.TrimPrefix(mdl.Get("name").Str, "models/")
		m := Model{Requested: id, Upstream: id}
		if m.Filtered(st) {
			return true
		}
		write(mdl.Raw)
		for _, d := range DerivedFor(id, st) {
			derived = append(derived, DerivedEntry(mdl.Raw, d.Name, d.Note))
		}
		return true
	})
	for _, d := range derived {
		write(d)
	}
	out.WriteByte(']')
	if tok := gjson.GetBytes(body, "nextPageToken"); tok.Exists() {
		out.WriteString(`,"nextPageToken":`)
		out.WriteString(tok.Raw)
	}
	out.WriteByte('}')
	return out.Bytes()
}

// DerivedEntry is a copy of a base model entry renamed to a derived name.
func DerivedEntry(raw, name, note string) string {
	display := gjson.Get(raw, "displayName").Str
	if display == "" {
		display = strings.TrimSuffix(name, "")
	}
	raw, _ = sjson.Set(raw, "name", "models/"+name)
	raw, _ = sjson.Set(raw, "displayName", display+note)
	raw, _ = sjson.Set(raw, "description", display+note)
	return raw
}
