package main

import (
	"testing"
	"time"
)

// Real wrk 4.1.0 reports (-t2 --latency): the table's req/s, p50 and p99
// come from these, and the all-in-one's expected log count from the
// answered and failed requests.
func TestParseWrkReadsCountsAndPercentiles(t *testing.T) {
	for _, tc := range []struct {
		name             string
		out              string
		answered, failed int
		elapsed          time.Duration
		p50, p99         time.Duration
	}{
		{"all answered", `Running 1s test @ http://127.0.0.1:46181/v1beta/models/gemini-2.5-flash:generateContent
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    16.78ms   23.50ms 115.94ms   87.13%
    Req/Sec   486.74    369.85     1.27k    73.68%
  Latency Distribution
     50%    6.82ms
     75%   21.90ms
     90%   48.50ms
     99%   99.56ms
  972 requests in 1.03s, 651.16KB read
Requests/sec:    940.01
Transfer/sec:    629.73KB
`, 972, 0, 1030 * time.Millisecond, 6820 * time.Microsecond, 99560 * time.Microsecond},
		{"failures and microseconds", `Running 1s test @ http://127.0.0.1:46181/nope
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.17ms    5.88ms  61.43ms   93.51%
    Req/Sec     3.75k     1.02k    4.60k    80.00%
  Latency Distribution
     50%  287.00us
     75%    1.81ms
     90%    8.04ms
     99%   40.16ms
  3876 requests in 1.04s, 1.00MB read
  Non-2xx or 3xx responses: 10
Requests/sec:   3734.96
Transfer/sec:      0.96MB
`, 3866, 10, 1040 * time.Millisecond, 287 * time.Microsecond, 40160 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseWrk(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if r.answered != tc.answered || r.failed != tc.failed || r.elapsed != tc.elapsed || r.p50 != tc.p50 || r.p99 != tc.p99 {
				t.Fatalf("got answered %d failed %d elapsed %s p50 %s p99 %s, want %d %d %s %s %s",
					r.answered, r.failed, r.elapsed, r.p50, r.p99, tc.answered, tc.failed, tc.elapsed, tc.p50, tc.p99)
			}
		})
	}
}

func TestParseWrkRefusesAReportWithoutCounts(t *testing.T) {
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Fatal("a wrk report without a request count parsed")
	}
}

func TestThousandsSeparatesGroups(t *testing.T) {
	for v, want := range map[float64]string{7: "7", 999: "999", 1000: "1,000", 9333.4: "9,333", 1234567: "1,234,567"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}
