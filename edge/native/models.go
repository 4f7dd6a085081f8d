package native

import (
	"slices"
	"strings"

	"github.com/gemini-balance-go/shared/config"
)

// Derived-model suffixes, as gemini-balance names them.
const (
	SuffixSearch      = "-search"
	SuffixImage       = "-image"
	SuffixNonThinking = "-non-thinking"
)

// Model is a requested model resolved against the settings.
type Model struct {
	Requested   string // as the client named it, without "models/"
	Upstream    string // what is sent upstream
	Search      bool   // -search: add googleSearch
	Image       bool   // -image: ask for text and image output
	NonThinking bool   // -non-thinking: thinking budget 0 (or the model's minimum)
}

// ResolveModel strips derived-model suffixes whose base model is listed in
// the matching setting (SEARCH_MODELS, IMAGE_MODELS, THINKING_MODELS). A
// name whose base is not listed is a real model name (Google has models
// ending in -image) and goes upstream unchanged. Suffixes combine in any
// order, e.g. gemini-2.5-flash-search-non-thinking.
func ResolveModel(name string, st *config.Settings) Model {
	name = strings.TrimPrefix(name, "models/")
	m := Model{Requested: name, Upstream: name}
	base := name
	var search, image, nonThinking bool
	for {
		switch {
		case strings.HasSuffix(base, SuffixSearch) && !search:
			base, search = strings.TrimSuffix(base, SuffixSearch), true
		case strings.HasSuffix(base, SuffixImage) && !image:
			base, image = strings.TrimSuffix(base, SuffixImage), true
		case strings.HasSuffix(base, SuffixNonThinking) && !nonThinking:
			base, nonThinking = strings.TrimSuffix(base, SuffixNonThinking), true
		default:
			if (search && !slices.Contains(st.SearchModels, base)) ||
				(image && !slices.Contains(st.ImageModels, base)) ||
				(nonThinking && !slices.Contains(st.ThinkingModels, base)) ||
				base == "" || base == name {
				return m
			}
			m.Upstream, m.Search, m.Image, m.NonThinking = base, search, image, nonThinking
			return m
		}
	}
}

// Filtered reports whether FILTERED_MODELS hides the model.
func (m Model) Filtered(st *config.Settings) bool {
	return slices.Contains(st.FilteredModels, m.Upstream) || slices.Contains(st.FilteredModels, m.Requested)
}

// Derived reports whether the name carried a derived suffix.
func (m Model) Derived() bool { return m.Requested != m.Upstream }

// derivedFor lists the derived names offered for a base model, with the
// display-name note gemini-balance gives each.
func derivedFor(base string, st *config.Settings) [][2]string {
	var out [][2]string
	if slices.Contains(st.SearchModels, base) {
		out = append(out, [2]string{base + SuffixSearch, " For Search"})
	}
	if slices.Contains(st.ImageModels, base) {
		out = append(out, [2]string{base + SuffixImage, " For Image"})
	}
	if slices.Contains(st.ThinkingModels, base) {
		out = append(out, [2]string{base + SuffixNonThinking, " Non Thinking"})
	}
	return out
}
