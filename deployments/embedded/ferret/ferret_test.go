package ferret_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/deployments/embedded/ferret"
)

func connect(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	cl, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl
}

func TestMongoDriverInsertsAndFinds(t *testing.T) {
	uri := ferret.StartForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	coll := connect(t, uri).Database("gb").Collection("things")
	if _, err := coll.InsertOne(ctx, bson.M{"_id": "a", "n": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.UpdateOne(ctx, bson.M{"_id": "a"}, bson.M{"$inc": bson.M{"n": 2}}, options.UpdateOne().SetUpsert(true)); err != nil {
		t.Fatal(err)
	}
	var got struct {
		N int `bson:"n"`
	}
	if err := coll.FindOne(ctx, bson.M{"_id": "a"}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.N != 3 {
		t.Fatalf("n = %d, want 3", got.N)
	}
}

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	st, err := ferret.Start(ctx, ferret.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	cl := connect(t, st.URI)
	if _, err := cl.Database("gb").Collection("c").InsertOne(ctx, bson.M{"_id": "kept"}); err != nil {
		t.Fatal(err)
	}
	_ = cl.Disconnect(ctx)
	st.Stop()

	st2, err := ferret.Start(ctx, ferret.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Stop()
	n, err := connect(t, st2.URI).Database("gb").Collection("c").CountDocuments(ctx, bson.M{"_id": "kept"})
	if err != nil || n != 1 {
		t.Fatalf("after restart: n=%d err=%v", n, err)
	}
}

// FerretDB 1.24 drops the connection when one createIndexes command names
// several indexes that already exist (a second CreateMany at the next start).
// One index per command is safe to repeat; services create theirs that way.
func TestCreatingIndexesOneAtATimeIsIdempotent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	coll := connect(t, ferret.StartForTest(t)).Database("gb").Collection("logs")
	models := []mongo.IndexModel{
		{Keys: bson.D{{Key: "t", Value: -1}}},
		{Keys: bson.D{{Key: "key_id", Value: 1}, {Key: "t", Value: -1}}},
	}
	for range 2 {
		for _, m := range models {
			if _, err := coll.Indexes().CreateOne(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// On a Unix socket the store opens no TCP port, and the MongoDB driver
// reaches it through the URI Start returns.
func TestServesOnAUnixSocketOnly(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "store.sock")
	st, err := ferret.Start(context.Background(), ferret.Options{DataDir: filepath.Join(dir, "store"), Unix: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	if strings.Contains(st.URI, "127.0.0.1") || !strings.Contains(st.URI, ".sock") {
		t.Fatalf("URI %q, want the socket", st.URI)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	coll := connect(t, st.URI).Database("gb").Collection("things")
	if _, err := coll.InsertOne(ctx, bson.M{"_id": "a"}); err != nil {
		t.Fatalf("insert over the socket: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "store")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v, want mode 0700", fi, err)
	}
}

// BenchmarkTransport compares an _id read (the transport's share is largest
// there; writes are dominated by SQLite) over the loopback TCP listener and
// over the Unix socket the all-in-one uses.
func BenchmarkTransport(b *testing.B) {
	for _, unix := range []bool{false, true} {
		name := "tcp"
		if unix {
			name = "unix"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			o := ferret.Options{DataDir: filepath.Join(dir, "store")}
			if unix {
				o.Unix = filepath.Join(dir, "s.sock")
			}
			st, err := ferret.Start(context.Background(), o)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Stop()
			cl, err := mongo.Connect(options.Client().ApplyURI(st.URI))
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = cl.Disconnect(context.Background()) }()
			coll := cl.Database("gb").Collection("bench")
			ctx := context.Background()
			if _, err := coll.InsertOne(ctx, bson.M{"_id": 1, "n": 1}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := coll.FindOne(ctx, bson.M{"_id": 1}).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
