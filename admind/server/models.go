package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/keyapi"
)

// listModels answers the live upstream model list for the UI's model
// pickers. admind holds no key, so keyd fetches it with a pool key (and
// caches it); when that fails the list falls back to the models the
// settings name, marked as such.
func (b *backends) listModels(c *gin.Context) {
	var rep keyapi.ModelsReply
	err := b.keyd.Call(c.Request.Context(), bus.SubjectKeyModels, struct{}{}, &rep)
	switch {
	case err == nil && rep.Error == "":
		c.JSON(http.StatusOK, gin.H{"source": "upstream", "fetched_at": rep.FetchedAt, "models": rep.Models})
		return
	case err == nil:
		err = keydError(rep.Error)
	}
	c.JSON(http.StatusOK, gin.H{"source": "settings", "error": err.Error(), "models": settingsModels(b.s.d.Settings.Get())})
}

// settingsModels are the models the settings name, sorted.
func settingsModels(s *config.Settings) []keyapi.ModelInfo {
	var names []string
	add := func(ns ...string) {
		for _, n := range ns {
			if n = strings.TrimPrefix(strings.TrimSpace(n), "models/"); n != "" && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	add(s.TestModel, s.CreateImageModel, s.TTSModel)
	add(s.SearchModels...)
	add(s.ImageModels...)
	add(s.ThinkingModels...)
	add(s.URLContextModels...)
	for m := range s.ThinkingBudgetMap {
		add(m)
	}
	slices.Sort(names)
	out := make([]keyapi.ModelInfo, len(names))
	for i, n := range names {
		out[i] = keyapi.ModelInfo{Name: n}
	}
	return out
}
