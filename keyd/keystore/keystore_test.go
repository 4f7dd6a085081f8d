package keystore

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/keyd/pool"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/mongox"
	"github.com/gemini-balance-go/testkit/storetest"
)

const secretA = "AIzaSyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
const secretB = "AIzaSyBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

func testDB(t *testing.T) *mongo.Database {
	t.Helper()
	uri := storetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := mongox.Connect(ctx, uri, "keyd-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	return cl.Database("keyd_test")
}

func TestEncryptionOnOffAndWrongKey(t *testing.T) {
	ctx := context.Background()
	db := testDB(t)
	now := time.Now().UTC().Truncate(time.Millisecond)

	// Without ENCRYPTION_KEY the secret is stored as it is.
	s, err := Open(ctx, db, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Insert(ctx, []pool.Key{pool.NewKey(secretA, bus.KindGemini, now)}); err != nil {
		t.Fatal(err)
	}
	if raw := rawSecret(t, db, pool.NewKey(secretA, "", now).ID); raw != secretA {
		t.Fatalf("plaintext mode stored %q", raw)
	}

	// Setting ENCRYPTION_KEY encrypts what is stored, and new keys too.
	s, err = Open(ctx, db, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Insert(ctx, []pool.Key{pool.NewKey(secretB, bus.KindGemini, now)}); err != nil {
		t.Fatal(err)
	}
	for _, sec := range []string{secretA, secretB} {
		if raw := rawSecret(t, db, pool.NewKey(sec, "", now).ID); raw == sec || raw == "" {
			t.Fatalf("key stored in the clear after ENCRYPTION_KEY was set: %q", raw)
		}
	}
	keys, err := s.LoadAll(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("load with the right key: %v %+v", err, keys)
	}
	for _, k := range keys {
		if k.Secret != secretA && k.Secret != secretB {
			t.Fatalf("decrypted secret %q is not one of the stored keys", k.Hint)
		}
	}

	// A wrong or missing ENCRYPTION_KEY refuses to start, saying why.
	if _, err := Open(ctx, db, "wrong horse"); !errors.Is(err, ErrEncryptionKeyWrong) {
		t.Fatalf("wrong key: err = %v", err)
	}
	if _, err := Open(ctx, db, ""); !errors.Is(err, ErrEncryptionKeyMissing) {
		t.Fatalf("missing key: err = %v", err)
	}
}

func rawSecret(t *testing.T, db *mongo.Database, id string) string {
	t.Helper()
	var d bson.M
	if err := db.Collection(KeysCollection).FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		t.Fatal(err)
	}
	s, _ := d["secret"].(string)
	return s
}

func TestStateSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	db := testDB(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	s, err := Open(ctx, db, "")
	if err != nil {
		t.Fatal(err)
	}
	k := pool.NewKey(secretA, bus.KindVertex, now)
	if ins, err := s.Insert(ctx, []pool.Key{k, k}); err != nil || len(ins) != 1 {
		t.Fatalf("insert twice: %v, inserted %d, want 1", err, len(ins))
	}
	k.Failures, k.Successes, k.LastError = 2, 7, "503 server_error"
	k.Cooldowns = []pool.Cooldown{{Model: "gemini-2.5-pro", Until: now.Add(time.Minute), Strikes: 2, Last: now}}
	if err := s.SaveState(ctx, []pool.Key{k}); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, db, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.LoadAll(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("load: %v %d", err, len(got))
	}
	g := got[0]
	if g.Secret != secretA || g.Kind != bus.KindVertex || g.Failures != 2 || g.Successes != 7 ||
		len(g.Cooldowns) != 1 || !g.Cooldowns[0].Until.Equal(now.Add(time.Minute)) || g.Cooldowns[0].Strikes != 2 {
		t.Fatalf("after reopen: %+v", g)
	}
}

func TestFileBindingsAndPendingUploads(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, testDB(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.BindFile(ctx, bus.FileBinding{UploadID: "up1", UploadURL: "http://u/1", KeyID: "k1", TokenID: "t1"}); err != nil {
		t.Fatal(err)
	}
	b, ok, err := s.LookupFile(ctx, "", "up1")
	if err != nil || !ok || b.KeyID != "k1" || b.UploadURL != "http://u/1" {
		t.Fatalf("pending upload lookup: %v %v %+v", err, ok, b)
	}
	if err := s.BindFile(ctx, bus.FileBinding{Name: "files/abc", UploadID: "up1", KeyID: "k1", TokenID: "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.BindFile(ctx, bus.FileBinding{Name: "files/other", KeyID: "k2", TokenID: "t2"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.LookupFile(ctx, "", "up1"); ok {
		t.Fatal("pending upload kept after the file was bound")
	}
	if err := s.BindFile(ctx, bus.FileBinding{Name: "cachedContents/c1", KeyID: "k1", TokenID: "t1"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListFiles(ctx, "t1", "", "files/", 0)
	if err != nil || len(list) != 1 || list[0].Name != "files/abc" {
		t.Fatalf("token t1 sees %+v (%v), want only its own file", list, err)
	}
	// The same bindings pin caches, batches and operations; a prefix keeps
	// each kind's list to its own.
	list, err = s.ListFiles(ctx, "t1", "", "cachedContents/", 0)
	if err != nil || len(list) != 1 || list[0].Name != "cachedContents/c1" {
		t.Fatalf("token t1 caches %+v (%v), want only cachedContents/c1", list, err)
	}
	if ok, err := s.DeleteFile(ctx, "files/abc", ""); err != nil || !ok {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if _, ok, _ := s.LookupFile(ctx, "files/abc", ""); ok {
		t.Fatal("file still bound after delete")
	}
}
