package importer

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/testkit/storetest"
)

// BenchmarkImportRequestLogs imports a gemini-balance SQLite file of 2,000
// request logs into the embedded store and reports rows per second.
func BenchmarkImportRequestLogs(b *testing.B) {
	const rows = 2000
	path := filepath.Join(b.TempDir(), "default_db")
	src, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range schema["sqlite"] {
		if _, err := src.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	tx, _ := src.Begin()
	start := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		key := fmt.Sprintf("AIzaSyBenchKey-%020d", i%50)
		if _, err := tx.Exec("INSERT INTO t_request_log (request_time, model_name, api_key, is_success, status_code, latency_ms) VALUES (?, ?, ?, ?, ?, ?)",
			start.Add(time.Duration(i)*time.Second).Format("2006-01-02 15:04:05"), "gemini-2.5-flash", key, i%7 != 0, 200, 300); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	src.Close()
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		cl, err := mongo.Connect(options.Client().ApplyURI(storetest.Start(b)))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		began := time.Now()
		res, err := Run(ctx, cl.Database("gemini_balance"), Options{From: path, Zone: time.UTC, Out: io.Discard})
		if err != nil || res.Requests != rows {
			b.Fatalf("%+v %v", res, err)
		}
		b.ReportMetric(float64(rows)/time.Since(began).Seconds(), "rows/s")
		b.StopTimer()
		_ = cl.Disconnect(ctx)
		b.StartTimer()
	}
}
