package models

import (
	"testing"

	"github.com/gemini-balance-go/shared/config"
)

func TestResolveStripsDerivedSuffixesOnlyForListedBases(t *testing.T) {
	st := config.Defaults()
	st.ThinkingModels = []string{"gemini-2.5-flash", "gemini-2.5-pro"}
	st.ExtraModelAliases = map[string]string{"fast": "gemini-2.5-flash-lite"}
	for _, tc := range []struct {
		in, upstream             string
		search, image, nonThinks bool
	}{
		{"gemini-2.5-flash", "gemini-2.5-flash", false, false, false},
		{"models/gemini-2.5-flash-search", "gemini-2.5-flash", true, false, false},
		{"gemini-2.5-pro-non-thinking", "gemini-2.5-pro", false, false, true},
		// -non-thinking names no real model: stripped even when THINKING_MODELS omits the base.
		{"gemini-2.0-flash-non-thinking", "gemini-2.0-flash", false, false, true},
		{"gemini-2.5-flash-search-non-thinking", "gemini-2.5-flash", true, false, true},
		{"gemini-2.5-flash-non-thinking-search", "gemini-2.5-flash", true, false, true},
		{"gemini-2.0-flash-exp-image", "gemini-2.0-flash-exp", false, true, false},
		// Google's own model name ending in -image is not a derived model.
		{"gemini-2.5-flash-image", "gemini-2.5-flash-image", false, false, false},
		// A -search variant of an unlisted base is not resolved (UnofferedSearch).
		{"gemini-2.0-flash-search", "gemini-2.0-flash-search", false, false, false},
		{"imagen-4.0-image-generation", "imagen-4.0-image-generation", false, true, false},
		{st.CreateImageModel + SuffixChat, st.CreateImageModel, false, true, false},
		{"fast", "gemini-2.5-flash-lite", false, false, false},
	} {
		m := Resolve(tc.in, &st)
		if m.Upstream != tc.upstream || m.Search != tc.search || m.Image != tc.image || m.NonThinking != tc.nonThinks {
			t.Errorf("%s → %+v", tc.in, m)
		}
	}
	if !Resolve("gemini-2.0-flash-search", &st).UnofferedSearch() || Resolve("gemini-2.5-flash-search", &st).UnofferedSearch() {
		t.Error("UnofferedSearch should flag only an unresolved -search name")
	}
}

func TestFilteredModelsAreHiddenByEitherName(t *testing.T) {
	st := config.Defaults()
	if !Resolve("models/chat-bison-001", &st).Filtered(&st) || Resolve("gemini-2.5-flash", &st).Filtered(&st) {
		t.Fatal("FILTERED_MODELS not applied")
	}
}

func TestDerivedForListsEachConfiguredVariant(t *testing.T) {
	st := config.Defaults()
	st.ThinkingModels = []string{"gemini-2.5-flash"}
	got := DerivedFor("gemini-2.5-flash", &st)
	if len(got) != 2 || got[0].Name != "gemini-2.5-flash-search" || got[1].Note != " Non Thinking" {
		t.Fatalf("%+v", got)
	}
	if len(DerivedFor("gemma-3", &st)) != 0 {
		t.Fatal("unlisted base got derived models")
	}
}

func TestAllowListAdmitsListedModelsAndTheirDerivedVariantsOnly(t *testing.T) {
	st := config.Defaults()
	st.SearchModels = []string{"gemini-2.5-flash"}
	allow := []string{"gemini-2.5-flash", "gemini-2.5-pro-search"}
	for name, want := range map[string]bool{
		"gemini-2.5-flash":                     true,
		"models/gemini-2.5-flash":              true,
		"gemini-2.5-flash-search":              true, // a base admits its variants
		"gemini-2.5-flash-search-non-thinking": true,
		"gemini-2.5-flash-image":               true,
		"gemini-2.5-pro-search":                true,  // a listed variant
		"gemini-2.5-pro":                       false, // ... does not admit its base
		"gemini-2.5-pro-non-thinking":          false,
		"gemini-2.0-flash":                     false,
		"GEMINI-2.5-FLASH":                     true,
	} {
		if got := Allowed(allow, Resolve(name, &st)); got != want {
			t.Errorf("Allowed(%q) = %v, want %v", name, got, want)
		}
	}
	if !Allowed(nil, Resolve("anything", &st)) {
		t.Error("an empty allow-list must admit every model")
	}
}
