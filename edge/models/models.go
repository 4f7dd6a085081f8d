// Package models resolves the model names clients send: derived models
// (gemini-balance's -search, -image, -non-thinking suffixes, in any
// combination), CREATE_IMAGE_MODEL's -chat alias, MODEL_ALIASES and
// FILTERED_MODELS. The native and the OpenAI routes both resolve through it,
// so a name means the same thing on every route.
package models

import (
	"slices"
	"strings"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
)

// Derived-model suffixes, as gemini-balance names them.
const (
	SuffixSearch      = "-search"
	SuffixImage       = "-image"
	SuffixNonThinking = "-non-thinking"
	// SuffixChat after CREATE_IMAGE_MODEL names the image chat model.
	SuffixChat = "-chat"
)

// Model is a requested model name resolved into the upstream model and the
// behaviour its suffixes ask for.
type Model struct {
	Requested   string `json:"requested"`              // as the client named it, without "models/"
	Upstream    string `json:"upstream"`               // what is sent upstream
	Search      bool   `json:"search,omitempty"`       // -search: googleSearch tool, citations
	Image       bool   `json:"image,omitempty"`        // -image or an -image-generation model: text and image output
	NonThinking bool   `json:"non_thinking,omitempty"` // -non-thinking: thinking off (or the model's floor)
}

// Resolve strips derived-model suffixes, in any order. A name with -search
// or -image resolves only when its base is listed in SEARCH_MODELS /
// IMAGE_MODELS; otherwise it goes upstream unchanged, so a real model name
// ending in -image (gemini-2.5-flash-image) still works. -non-thinking names
// no real model and needs no listing, as in gemini-balance.
func Resolve(name string, st *config.Settings) Model {
	name = strings.TrimPrefix(strings.TrimSpace(name), "models/")
	m := Model{Requested: name, Upstream: name}
	if name == "" {
		return m
	}
	if st.CreateImageModel != "" && name == st.CreateImageModel+SuffixChat {
		m.Upstream, m.Image = st.CreateImageModel, true
		return m
	}
	base := name
	var search, image, nonThinking bool
	for changed := true; changed; {
		changed = false
		switch {
		case strings.HasSuffix(base, SuffixNonThinking) && !nonThinking:
			base, nonThinking, changed = strings.TrimSuffix(base, SuffixNonThinking), true, true
		case strings.HasSuffix(base, SuffixSearch) && !search:
			base, search, changed = strings.TrimSuffix(base, SuffixSearch), true, true
		case strings.HasSuffix(base, SuffixImage) && !image:
			base, image, changed = strings.TrimSuffix(base, SuffixImage), true, true
		}
	}
	if (search && !slices.Contains(st.SearchModels, base)) || (image && !slices.Contains(st.ImageModels, base)) {
		return m // a real model name, or a variant this gateway does not offer
	}
	m.Search, m.Image, m.NonThinking = search, image, nonThinking
	if alias := st.ExtraModelAliases[base]; alias != "" {
		base = alias
	}
	if strings.HasSuffix(base, "-image-generation") {
		m.Image = true
	}
	m.Upstream = base
	return m
}

// Filtered reports whether FILTERED_MODELS hides the model.
func (m Model) Filtered(st *config.Settings) bool {
	return slices.Contains(st.FilteredModels, m.Upstream) || slices.Contains(st.FilteredModels, m.Requested)
}

// Derived reports whether the name carried a derived suffix or alias.
func (m Model) Derived() bool { return m.Requested != m.Upstream }

// UnofferedSearch reports a -search name whose base is not in SEARCH_MODELS:
// no such model exists upstream either.
func (m Model) UnofferedSearch() bool { return strings.HasSuffix(m.Upstream, SuffixSearch) }

// Derived names offered for a base model, with the display-name note
// gemini-balance gives each.
type DerivedName struct{ Name, Note string }

// DerivedFor lists the derived models listed next to a base model.
func DerivedFor(base string, st *config.Settings) []DerivedName {
	var out []DerivedName
	if slices.Contains(st.SearchModels, base) {
		out = append(out, DerivedName{base + SuffixSearch, " For Search"})
	}
	if slices.Contains(st.ImageModels, base) {
		out = append(out, DerivedName{base + SuffixImage, " For Image"})
	}
	if slices.Contains(st.ThinkingModels, base) {
		out = append(out, DerivedName{base + SuffixNonThinking, " Non Thinking"})
	}
	return out
}

// Base strips the derived-model suffixes (-search, -image, -non-thinking, in
// any combination) from a name, whatever the settings list: the base model
// a token's allow-list names.
func Base(name string) string {
	name = strings.TrimPrefix(strings.TrimSpace(name), "models/")
	for changed := true; changed; {
		changed = false
		for _, suf := range []string{SuffixNonThinking, SuffixSearch, SuffixImage} {
			if b, ok := strings.CutSuffix(name, suf); ok && b != "" {
				name, changed = b, true
			}
		}
	}
	return name
}

// Allowed reports whether a client token's model allow-list (empty: every
// model) admits m. A listed model admits its derived variants, so the
// request's name, its base (suffixes stripped) and the upstream model it
// resolves to (an alias, CREATE_IMAGE_MODEL's -chat name) are each checked;
// listing only a variant admits only that variant. Names compare without
// "models/" and case.
func Allowed(allow []string, m Model) bool {
	if len(allow) == 0 {
		return true
	}
	for _, name := range []string{m.Requested, Base(m.Requested), m.Upstream} {
		name = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(name), "models/"))
		if name != "" && slices.Contains(allow, name) {
			return true
		}
	}
	return false
}

// IsImagen tells Imagen models, which generate images through :predict.
func IsImagen(model string) bool {
	return strings.HasPrefix(strings.TrimPrefix(model, "models/"), "imagen-")
}

// KeyKind is the key pool a Gemini-API call for model draws from: Imagen
// is paid-only, so it goes through PAID_KEY (bus.KindPaid), as in
// gemini-balance; everything else uses the rotating API_KEYS pool.
func KeyKind(model string) string {
	if IsImagen(model) {
		return bus.KindPaid
	}
	return bus.KindGemini
}
