package relay

import "testing"

func TestQueryWithoutKeyNeverForwardsTheClientToken(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "",
		"alt=sse":                 "alt=sse",
		"alt=sse&key=client-tok":  "alt=sse",
		"key=client-tok":          "",
		"pageSize=5&key=a&key=b":  "pageSize=5",
		"monkey=1&key=client-tok": "monkey=1",
	} {
		if got := QueryWithoutKey(in); got != want {
			t.Errorf("QueryWithoutKey(%q) = %q, want %q", in, got, want)
		}
	}
}
