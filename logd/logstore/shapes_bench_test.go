package logstore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/klauspost/compress/s2"

	"github.com/gemini-balance-go/logd/internal/testenv"
	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/testkit/storetest"
)

// The document-shape benchmark measures what storing one request log costs
// in three shapes, side by side on one backend, to choose issue #13's data
// model before building it:
//   - rows: one document per request log, as request_logs is today (no
//     secondary index: FerretDB reads none, see readsNoSecondaryIndex);
//   - bucket-array: one document per ingest batch, its rows an array of
//     subdocuments, with the ids a filtered page would look for (keys,
//     models, tokens) as arrays beside them;
//   - bucket-binary: the same bucket with the rows as one opaque BSON value;
//   - bucket-s2: that value compressed with S2 (klauspost/compress, already
//     in the build through nats-server).
//
// LOGD_SHAPES_EVENTS rows per shape (default 30,000), LOGD_SHAPES_BATCH rows
// per batch (default 32), 4 writers at once; the shapes take turns in three
// rounds so a noisy machine hits each alike. CPU is this process (the
// embedded FerretDB included) plus PostgreSQL's processes.
//
//	go test ./logd/logstore -run '^$' -bench 'DocumentShapes' -benchtime 1x -v
func BenchmarkDocumentShapesSQLite(b *testing.B) { benchShapes(b, storetest.Start(b)) }

func BenchmarkDocumentShapesPostgres(b *testing.B) {
	benchShapes(b, testenv.StartFerretPostgres(b))
}

type shapeBucket struct {
	ID     string    `bson:"_id"`
	Time   time.Time `bson:"t"`
	Keys   []string  `bson:"k"`
	Models []string  `bson:"mo"`
	Tokens []string  `bson:"tk"`
	N      int       `bson:"n"`
	Rows   any       `bson:"rows"`
}

type shapeRows struct {
	Rows []logstore.RequestLog `bson:"r"`
}

func benchShapes(b *testing.B, uri string) {
	events, batch := envInt("LOGD_SHAPES_EVENTS", 30000), envInt("LOGD_SHAPES_BATCH", 32)
	db := storetest.Database(b, uri, "shapes")
	ctx := context.Background()
	if err := logstore.New(db).EnsureIndexes(ctx); err != nil {
		b.Fatal(err)
	}
	buckets := map[string]*mongo.Collection{"bucket-array": db.Collection("shape_array"), "bucket-binary": db.Collection("shape_binary"),
		"bucket-s2": db.Collection("shape_s2")}
	rows := db.Collection(logstore.CollRequests)
	from := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	mk := func(shape string, round, i int) []logstore.RequestLog {
		out := make([]logstore.RequestLog, batch)
		for j := range out {
			n := i*batch + j
			out[j] = req(fmt.Sprintf("%s-%d-%08d", shape, round, n), from.Add(time.Duration(n)*time.Millisecond),
				fmt.Sprint("k", n%200), fmt.Sprint("gemini-2.5-", n%3), fmt.Sprint("t", n%20), 200, 100+n%50)
		}
		return out
	}
	write := map[string]func(string, []logstore.RequestLog) error{
		"rows": func(_ string, rs []logstore.RequestLog) error {
			docs := make([]any, len(rs))
			for i := range rs {
				docs[i] = rs[i]
			}
			_, err := rows.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
			return err
		},
		"bucket-array": func(id string, rs []logstore.RequestLog) error {
			_, err := buckets["bucket-array"].InsertOne(ctx, bucketOf(id, rs, rs))
			return err
		},
		"bucket-binary": func(id string, rs []logstore.RequestLog) error {
			raw, err := bson.Marshal(shapeRows{Rows: rs})
			if err != nil {
				return err
			}
			_, err = buckets["bucket-binary"].InsertOne(ctx, bucketOf(id, rs, bson.Binary{Data: raw}))
			return err
		},
	}
	write["bucket-s2"] = func(id string, rs []logstore.RequestLog) error {
		raw, err := bson.Marshal(shapeRows{Rows: rs})
		if err != nil {
			return err
		}
		_, err = buckets["bucket-s2"].InsertOne(ctx, bucketOf(id, rs, bson.Binary{Data: s2.Encode(nil, raw)}))
		return err
	}
	order := []string{"rows", "bucket-array", "bucket-binary", "bucket-s2"}
	const rounds, writers = 3, 4
	perRound := events / rounds / batch
	type total struct{ wall, self, pg time.Duration }
	totals := map[string]*total{}
	for _, s := range order {
		totals[s] = &total{}
	}
	for round := 0; round < rounds; round++ {
		for _, shape := range order {
			next := make(chan int, perRound)
			for i := 0; i < perRound; i++ {
				next <- i
			}
			close(next)
			self0, pg0, t0 := selfCPU(), testenv.PostgresCPU(), time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						if err := write[shape](fmt.Sprintf("%d-%08d", round, i), mk(shape, round, i)); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			if err := <-errs; err != nil {
				b.Fatalf("%s: %v", shape, err)
			}
			t := totals[shape]
			t.wall += time.Since(t0)
			t.self += selfCPU() - self0
			t.pg += testenv.PostgresCPU() - pg0
		}
	}
	n := float64(perRound * batch * rounds)
	for _, shape := range order {
		t := totals[shape]
		evs := n / t.wall.Seconds()
		cpu := float64((t.self + t.pg).Microseconds()) / n
		b.Logf("%-14s %8.0f events/s  CPU %6.1f µs/event (process %6.1f + PostgreSQL %6.1f)  %d rows in batches of %d",
			shape, evs, cpu, float64(t.self.Microseconds())/n, float64(t.pg.Microseconds())/n, int(n), batch)
		b.ReportMetric(evs, shape+"-events/s")
		b.ReportMetric(cpu, shape+"-cpu-µs/event")
	}
	for _, shape := range order[1:] {
		b.Logf("%s vs rows: %.1f× the events/s, %.2f× the CPU per event", shape,
			totals["rows"].wall.Seconds()/totals[shape].wall.Seconds(),
			float64((totals[shape].self+totals[shape].pg).Microseconds())/float64((totals["rows"].self+totals["rows"].pg).Microseconds()))
	}
}

// bucketOf is a batch's bucket: its rows (in whatever form) and the ids a
// filtered page looks for.
func bucketOf(id string, rs []logstore.RequestLog, body any) shapeBucket {
	seen := map[string]bool{}
	bk := shapeBucket{ID: id, Time: rs[0].Time, N: len(rs), Rows: body}
	for _, r := range rs {
		for _, v := range []struct {
			prefix string
			val    string
			dst    *[]string
		}{{"k|", r.KeyID, &bk.Keys}, {"m|", r.Model, &bk.Models}, {"t|", r.TokenID, &bk.Tokens}} {
			if !seen[v.prefix+v.val] {
				seen[v.prefix+v.val] = true
				*v.dst = append(*v.dst, v.val)
			}
		}
	}
	return bk
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
