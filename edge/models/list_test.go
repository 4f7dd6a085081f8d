package models

import (
	"slices"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/gemini-balance-go/shared/config"
)

func TestRewriteModelListHidesFilteredAndAddsDerived(t *testing.T) {
	st := config.Defaults()
	st.ThinkingModels = []string{"gemini-2.5-flash"}
	st.FilteredModels = []string{"gemini-pro-vision"}
	body := []byte(`{"models":[{"name":"models/gemini-2.5-flash","displayName":"Gemini 2.5 Flash","inputTokenLimit":1048576},{"name":"models/gemini-pro-vision","displayName":"old"}],"nextPageToken":"abc"}`)
	out := RewriteModelList(body, &st)
	var names []string
	gjson.GetBytes(out, "models.#.name").ForEach(func(_, v gjson.Result) bool { names = append(names, v.Str); return true })
	want := []string{"models/gemini-2.5-flash", "models/gemini-2.5-flash-search", "models/gemini-2.5-flash-non-thinking"}
	if !slices.Equal(names, want) {
		t.Fatalf("names %v", names)
	}
	if gjson.GetBytes(out, "models.1.displayName").Str != "Gemini 2.5 Flash For Search" || gjson.GetBytes(out, "models.1.inputTokenLimit").Int() != 1048576 {
		t.Errorf("derived entry: %s", gjson.GetBytes(out, "models.1").Raw)
	}
	if gjson.GetBytes(out, "models.0").Raw != `{"name":"models/gemini-2.5-flash","displayName":"Gemini 2.5 Flash","inputTokenLimit":1048576}` {
		t.Errorf("base entry changed: %s", gjson.GetBytes(out, "models.0").Raw)
	}
	if gjson.GetBytes(out, "nextPageToken").Str != "abc" {
		t.Error("page token lost")
	}
}
