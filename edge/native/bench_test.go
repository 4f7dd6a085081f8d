package native

import (
	"strings"
	"testing"

	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/shared/config"
)

// BenchmarkInject measures the policy plus the JSON edit on a typical
// multi-turn request with default settings (safety settings injected).
func BenchmarkInject(b *testing.B) {
	st := config.Defaults()
	m := models.Resolve("gemini-2.5-flash", &st)
	turn := `{"role":"user","parts":[{"text":"` + strings.Repeat("lorem ipsum ", 40) + `"}]},{"role":"model","parts":[{"text":"ok"}]},`
	body := []byte(`{"contents":[` + strings.Repeat(turn, 20) + `{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"temperature":0.5}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, applied, _ := Inject(body, m, &st); len(applied) == 0 {
			b.Fatal("nothing applied")
		}
	}
}
