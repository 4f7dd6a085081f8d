package main

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// default.pgo steers the compiler (inlining, devirtualisation) wherever the
// all-in-one spends its CPU, so it must be a CPU profile of the all-in-one
// serving: long enough to mean something, and covering the request path from
// edge to the store. A profile of another program, an idle one or an empty
// file would build without complaint and quietly lose the gain.
func TestDefaultProfileIsTheAllInOneServing(t *testing.T) {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodefraction=0", "-nodecount=100000", "default.pgo").Output()
	if err != nil {
		t.Fatalf("go tool pprof default.pgo: %v", err)
	}
	top := string(out)
	if !strings.Contains(top, "Type: cpu") {
		t.Fatalf("default.pgo is not a CPU profile:\n%.400s", top)
	}
	m := regexp.MustCompile(`Total samples = ([0-9.]+)s`).FindStringSubmatch(top)
	if m == nil {
		t.Fatalf("default.pgo: no sample total in\n%.400s", top)
	}
	if s, _ := strconv.ParseFloat(m[1], 64); s < 10 {
		t.Errorf("default.pgo holds %.1f s of samples; take it over a longer load (make pgo)", s)
	}
	// Each part of a request's way, with the least share of the profile's
	// CPU it had when the profile was taken well below it.
	for _, part := range []struct {
		fn  string
		min float64 // % of the profile, cumulative
	}{
		{"github.com/gemini-balance-go/edge/relay.(*Relay).Do", 5},
		{"github.com/gemini-balance-go/edge/events.(*Publisher).Run", 0.5},
		{"github.com/gemini-balance-go/logd/ingest.(*Ingester).insert", 1},
		{"github.com/FerretDB/FerretDB/internal/clientconn.(*conn).run", 2},
		{"github.com/nats-io/nats-server/v2/server.(*client).processInboundClientMsg", 0.1},
	} {
		m := regexp.MustCompile(`(?m)\s([0-9.]+)%\s+` + regexp.QuoteMeta(part.fn) + `\S*$`).FindStringSubmatch(top)
		if m == nil {
			t.Errorf("default.pgo has no samples in %s", part.fn)
			continue
		}
		if share, _ := strconv.ParseFloat(m[1], 64); share < part.min {
			t.Errorf("default.pgo: %s has %.2f%% of the samples, want at least %.1f%%", part.fn, share, part.min)
		}
	}
}
