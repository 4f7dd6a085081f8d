package tokens_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/admind/tokens"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/testkit/natstest"
	"github.com/gemini-balance-go/testkit/storetest"
)

func TestGeneratedTokensAreLongRandomAndPrefixed(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok := tokens.Generate()
		rest, ok := strings.CutPrefix(tok, tokens.Prefix)
		if !ok || len(rest) < 32 {
			t.Fatalf("%q: want %s and 32+ characters", tok[:8], tokens.Prefix)
		}
		for _, c := range rest {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				t.Fatalf("character %q outside base62", c)
			}
		}
		if seen[tok] {
			t.Fatal("a token repeated")
		}
		seen[tok] = true
	}
}

// Two admind replicas changing the same token at once must leave the bucket
// as MongoDB ends: edge must never keep a token enabled that MongoDB says is
// disabled. Replica b's change lands exactly between replica a's MongoDB
// read and its bucket write.
func TestAChangeRacingAnotherReplicaLeavesTheBucketAsMongoDB(t *testing.T) {
	js := natstest.StartBus(t).JS
	cl, err := mongo.Connect(options.Client().ApplyURI(storetest.Start(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	db := cl.Database("gb_test")
	ctx := context.Background()
	a, b := tokens.NewStore(db, js), tokens.NewStore(db, js)
	tok, _, err := a.Create(ctx, tokens.CreateRequest{Name: "contended"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	tokens.SetBeforeWrite(a, func(id string) {
		once.Do(func() {
			if _, err := b.SetDisabled(ctx, id, true); err != nil {
				t.Error(err)
			}
		})
	})
	if _, err := a.SetDisabled(ctx, tok.ID, false); err != nil {
		t.Fatal(err)
	}
	// Replica b's start-up Sync meets the same race on a fresh change.
	tokens.SetBeforeWrite(a, nil)
	var once2 sync.Once
	tokens.SetBeforeWrite(b, func(id string) {
		once2.Do(func() {
			if _, err := a.SetDisabled(ctx, id, false); err != nil {
				t.Error(err)
			}
		})
	})
	if _, err := db.Collection(tokens.Collection).UpdateOne(ctx, bson.M{"_id": tok.ID}, bson.M{"$set": bson.M{"name": "renamed"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	var stored struct {
		Name     string `bson:"name"`
		Disabled bool   `bson:"disabled"`
	}
	if err := db.Collection(tokens.Collection).FindOne(ctx, bson.M{"_id": tok.ID}).Decode(&stored); err != nil {
		t.Fatal(err)
	}
	kv, _ := js.KeyValue(ctx, bus.BucketClientTokens)
	e, err := kv.Get(ctx, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	var entry bus.ClientToken
	_ = json.Unmarshal(e.Value(), &entry)
	if entry.Disabled != stored.Disabled || entry.Name != stored.Name {
		t.Fatalf("bucket says disabled=%v name=%q, MongoDB says %v %q", entry.Disabled, entry.Name, stored.Disabled, stored.Name)
	}
}
