package settings_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gemini-balance-go/admind/settings"
	"github.com/gemini-balance-go/shared/config"
)

func TestMergeReplacesListsAndMapsWithoutTouchingTheCurrentSettings(t *testing.T) {
	cur := config.Defaults()
	cur.APIKeys = []string{"AIzaSyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AIzaSyBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"}
	cur.ThinkingBudgetMap = map[string]int{"gemini-2.5-flash": 100}
	next, err := settings.Merge(cur, []byte(`{"API_KEYS":["AIzaSyCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"],"THINKING_BUDGET_MAP":{"gemini-2.5-pro":5}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(next.APIKeys) != 1 || len(next.ThinkingBudgetMap) != 1 || next.ThinkingBudgetMap["gemini-2.5-pro"] != 5 {
		t.Fatalf("next = %v %v", next.APIKeys, next.ThinkingBudgetMap)
	}
	if len(cur.APIKeys) != 2 || cur.APIKeys[0] != "AIzaSyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" || cur.ThinkingBudgetMap["gemini-2.5-flash"] != 100 {
		t.Fatal("merge changed the current settings")
	}
}

func TestMaskedHidesEverySecret(t *testing.T) {
	s := config.Defaults()
	s.APIKeys = []string{"AIzaSyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
	s.VertexAPIKeys = []string{"AQ.vertexvertexvertexvertexvertexvertex"}
	s.PaidKey = "AIzaSyPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP"
	s.AllowedTokens = []string{"sk-client-token-aaaaaaaaaaaaaaaaaaaa"}
	s.AuthToken = "admin-password-123"
	out, _ := json.Marshal(settings.Masked(s))
	for _, secret := range []string{s.APIKeys[0], s.VertexAPIKeys[0], s.PaidKey, s.AllowedTokens[0], s.AuthToken} {
		if strings.Contains(string(out), secret) {
			t.Errorf("%q shown in full", secret)
		}
	}
}
