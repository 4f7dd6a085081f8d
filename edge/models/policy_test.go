package models

import (
	"errors"
	"slices"
	"testing"

	"github.com/gemini-balance-go/shared/config"
)

func TestDecideLeavesOutBuiltinToolsGeminiWouldRefuse(t *testing.T) {
	st := config.Defaults()
	st.CodeExecutionEnabled, st.URLContextEnabled = true, true
	search := Resolve("gemini-2.5-flash-search", &st)
	for _, tc := range []struct {
		name string
		m    Model
		f    Facts
		want []string
	}{
		{"plain", Resolve("gemini-2.5-flash", &st), Facts{}, []string{ToolCodeExecution, ToolURLContext}},
		{"search", search, Facts{}, []string{ToolGoogleSearch, ToolURLContext}},
		{"media", Resolve("gemini-2.5-flash", &st), Facts{HasMedia: true}, []string{ToolURLContext}},
		{"functions", search, Facts{FunctionCalling: true}, nil},
		{"structured output", search, Facts{StructuredOutput: true}, nil},
		{"tts", Resolve("gemini-2.5-flash-preview-tts", &st), Facts{}, nil},
	} {
		in, err := Decide(tc.m, &st, tc.f)
		if err != nil || !slices.Equal(in.Tools, tc.want) {
			t.Errorf("%s: tools %v (%v), want %v", tc.name, in.Tools, err, tc.want)
		}
	}
	in, _ := Decide(search, &st, Facts{FunctionCalling: true})
	if len(in.Notes) != 1 {
		t.Errorf("a left-out googleSearch must be noted: %+v", in.Notes)
	}
}

func TestDecideThinking(t *testing.T) {
	st := config.Defaults()
	st.ThinkingBudgetMap = map[string]int{"gemini-2.5-flash": 512}
	no := false
	for _, tc := range []struct {
		model    string
		f        Facts
		budget   int // -1: none
		level    string
		thoughts bool
	}{
		{"gemini-2.5-flash", Facts{}, 512, "", true},
		{"gemini-2.5-flash", Facts{IncludeThoughts: &no}, 512, "", false},
		{"gemini-2.5-flash", Facts{ClientThinking: true}, -1, "", true},
		{"gemini-2.5-flash", Facts{ClientThinking: true, ThinkingOff: true}, -1, "", false},
		{"gemini-2.5-flash-non-thinking", Facts{}, 0, "", false},
		{"gemini-2.5-pro-non-thinking", Facts{}, 128, "", false},
		{"gemini-3-pro-preview-non-thinking", Facts{}, -1, "LOW", false},
		{"gemini-3-flash-preview-non-thinking", Facts{}, -1, "MINIMAL", false},
		{"gemini-2.0-flash-non-thinking", Facts{}, -1, "", false}, // does not think: nothing to turn off
		{"gemini-2.5-flash-preview-tts", Facts{}, -1, "", false},
	} {
		in, err := Decide(Resolve(tc.model, &st), &st, tc.f)
		budget := -1
		if in.ThinkingBudget != nil {
			budget = *in.ThinkingBudget
		}
		if err != nil || budget != tc.budget || in.ThinkingLevel != tc.level || in.IncludeThoughts != tc.thoughts {
			t.Errorf("%s %+v: budget %d level %q thoughts %v (%v)", tc.model, tc.f, budget, in.ThinkingLevel, in.IncludeThoughts, err)
		}
	}
}

func TestDecideImageOutputDropsTheSystemInstruction(t *testing.T) {
	st := config.Defaults()
	in, _ := Decide(Resolve("gemini-2.0-flash-exp-image", &st), &st, Facts{HasSystem: true})
	if !in.DropSystem || !slices.Equal(in.ResponseModalities, []string{"TEXT", "IMAGE"}) {
		t.Fatalf("%+v", in)
	}
	in, _ = Decide(Resolve("gemini-2.0-flash-exp-image", &st), &st, Facts{ClientModalities: true})
	if in.ResponseModalities != nil || in.DropSystem {
		t.Fatalf("client modalities must win, and no system means nothing to drop: %+v", in)
	}
	in, _ = Decide(Resolve("gemini-2.5-flash-image", &st), &st, Facts{HasSystem: true})
	if in.DropSystem {
		t.Fatal("Google's own image model name is not an -image variant")
	}
}

func TestDecideRefusesUnofferedSearch(t *testing.T) {
	st := config.Defaults()
	_, err := Decide(Resolve("gemini-2.0-flash-search", &st), &st, Facts{})
	var oe *OfferError
	if !errors.As(err, &oe) || oe.Field != "model" {
		t.Fatalf("got %v", err)
	}
}

func TestImagenUsesThePaidPool(t *testing.T) {
	if KeyKind("imagen-4.0-generate-001") != "paid" || KeyKind("models/imagen-3.0-generate-002") != "paid" || KeyKind("gemini-2.5-flash-image") != "gemini" {
		t.Fatal("Imagen must draw from PAID_KEY, everything else from the pool")
	}
}
