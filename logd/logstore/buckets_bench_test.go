package logstore

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkBucketsOf encodes a write batch as logd makes them under load:
// four whole messages of 256 rows, one part each, in one minute.
func BenchmarkBucketsOf(b *testing.B) {
	at := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	rows := make([]RequestLog, 4*256)
	for i := range rows {
		rows[i] = RequestLog{ID: fmt.Sprintf("req-%06d", i), Time: at.Add(time.Duration(i) * time.Millisecond),
			Batch: fmt.Sprintf("r-abc%d", i/256), Route: "gemini.generateContent", Model: "gemini-2.5-flash", KeyID: fmt.Sprintf("k%d", i%8),
			TokenID: "t1", Status: 200, Success: true, LatencyMS: 12}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := bucketsOf(rows); err != nil {
			b.Fatal(err)
		}
	}
}
