package recovery

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gemini-balance-go/keyd/pool"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/outcome"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

func TestVerifyClassifiesEachKeyAgainstTheFakeUpstream(t *testing.T) {
	good := "AIzaSyVerifyGood000000000000000000000001"
	invalid := "AIzaSyVerifyInvalid000000000000000000002"
	limited := "AIzaSyVerifyLimited000000000000000000003"
	down := "AIzaSyVerifyDown00000000000000000000004"
	fake := fakegemini.Start(t, fakegemini.Options{Keys: []string{good}})
	fake.SetKey(limited, fakegemini.Behaviour{Status: fakegemini.RateLimited, RetryDelay: fakegemini.Duration(21 * time.Second)})
	fake.SetKey(down, fakegemini.Behaviour{Status: fakegemini.Unavailable})

	s := config.Defaults()
	s.BaseURL = fake.URL
	s.TestModel = "models/gemini-2.5-flash-lite"
	v := &Verifier{Settings: func() *config.Settings { return &s }, Concurrency: 2}
	now := time.Now()
	keys := []pool.Key{
		pool.NewKey(good, bus.KindGemini, now), pool.NewKey(invalid, bus.KindGemini, now),
		pool.NewKey(limited, bus.KindGemini, now), pool.NewKey(down, bus.KindGemini, now),
	}
	res := v.Verify(context.Background(), keys)
	want := []outcome.Class{outcome.Success, outcome.KeyInvalid, outcome.RateLimited, outcome.ServerError}
	for i, r := range res {
		if r.ID != keys[i].ID || r.Verdict.Class != want[i] {
			t.Fatalf("key %d: %+v, want class %s", i, r, want[i])
		}
		if strings.Contains(r.Err, keys[i].Secret) {
			t.Fatalf("verify error carries the full key: %q", r.Err)
		}
	}
	if d := res[2].Verdict.RetryDelay; d != 21*time.Second {
		t.Fatalf("429 retry delay = %v, want the upstream's 21s", d)
	}
	if rep := res[2].Report("gemini-2.5-flash-lite"); rep.RetryDelay != 21000 || rep.Class != string(outcome.RateLimited) {
		t.Fatalf("report from a 429 verdict = %+v", rep)
	}
	for _, r := range fake.Requests(fakegemini.Filter{}) {
		if r.Model != "gemini-2.5-flash-lite" || r.Header.Get("x-goog-api-key") == "" || strings.Contains(r.RawQuery, "key=") {
			t.Fatalf("verify call: model %q, key header %v, query %q", r.Model, r.Header.Get("x-goog-api-key") != "", r.RawQuery)
		}
	}
}
