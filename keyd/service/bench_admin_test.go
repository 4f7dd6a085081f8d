package service

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gemini-balance-go/keyd/pool"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
)

// BenchmarkKeyTableThirtyThousandKeys measures the key page's first data as
// admind asks keyd for it over NATS, with 30,000 keys (a third disabled, some
// failing): page 1 of 50 unfiltered, valid, with failures ≥ 2, a search, the
// key stats and a full export. Keys are held in memory, so the store does not
// matter for these reads.
//
//	go test ./keyd/service -run '^$' -bench KeyTable -benchtime 1x
func BenchmarkKeyTableThirtyThousandKeys(b *testing.B) {
	st := newStack(b)
	r := st.start(replicaOpts{name: "bench", settings: settingsWith()})
	now := time.Now()
	keys := make([]pool.Key, 30_000)
	for i := range keys {
		keys[i] = pool.NewKey(fmt.Sprintf("AIzaSyBenchKey%025d", i), bus.KindGemini, now)
		if i%3 == 0 {
			keys[i].Disabled, keys[i].DisabledReason = true, "bench"
		}
		keys[i].Failures = i % 5
	}
	r.svc.Pool().Load(keys...)
	call := func(subject string, req any) {
		data, _ := json.Marshal(req)
		msg, err := st.nc.Request(subject, data, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		var rep struct{ Error string }
		if json.Unmarshal(msg.Data, &rep) != nil || rep.Error != "" {
			b.Fatalf("%s: %s", subject, msg.Data)
		}
	}
	for _, c := range []struct {
		name, subject string
		req           any
	}{
		{"list-page1-of-50", bus.SubjectKeyList, keyapi.ListRequest{Page: 1, PageSize: 50}},
		{"list-last-page", bus.SubjectKeyList, keyapi.ListRequest{Page: 600, PageSize: 50}},
		{"list-valid-failures>=2", bus.SubjectKeyList, keyapi.ListRequest{Status: keyapi.StatusValid, MinFailures: 2, PageSize: 50}},
		{"list-search", bus.SubjectKeyList, keyapi.ListRequest{Search: "0001234", PageSize: 50}},
		{"stats", bus.SubjectKeyStats, struct{}{}},
		{"export-valid-20000", bus.SubjectKeyExport, keyapi.ExportRequest{Status: keyapi.StatusValid}},
	} {
		call(c.subject, c.req) // warm-up
		const runs = 20
		t0 := time.Now()
		for range runs {
			call(c.subject, c.req)
		}
		avg := time.Since(t0) / runs
		b.ReportMetric(float64(avg.Microseconds())/1000, c.name+"-ms")
		b.Logf("%-26s %7.2f ms", c.name, float64(avg.Microseconds())/1000)
	}
}
