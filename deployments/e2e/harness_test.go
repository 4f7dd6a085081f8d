package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

var services = []string{"keyd", "logd", "admind", "schedulerd", "edge"}

// The harness itself: infrastructure processes only, so it is tested even before the
// services exist. A killed store comes back on the same port with its data.
func TestHarnessRestartsAKilledStoreWithItsData(t *testing.T) {
	s := stack.Start(t, stack.Options{Without: services})
	ctx := context.Background()

	db := connect(t, s).Database("e2e_harness")
	if _, err := db.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "kept"}}); err != nil {
		t.Fatal(err)
	}
	s.Kill("store")
	if s.Running("store") {
		t.Fatal("store still running after Kill")
	}
	s.Start("store")
	db = connect(t, s).Database("e2e_harness")
	n, err := db.Collection("c").CountDocuments(ctx, bson.D{{Key: "_id", Value: "kept"}})
	if err != nil || n != 1 {
		t.Fatalf("after restart: n=%d err=%v", n, err)
	}

	// The fake process is programmable from the test.
	fake := s.Fake()
	if err := fake.SetKeys(ctx, map[string]fakegemini.Behaviour{s.Keys()[0]: {Status: fakegemini.Unavailable}}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.FakeURL()+"/v1beta/models/gemini-2.5-flash:generateContent", strings.NewReader(`{"contents":[{"parts":[{"text":"x"}]}]}`))
	req.Header.Set("x-goog-api-key", s.Keys()[0])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("programmed fake answered %d", resp.StatusCode)
	}
	st, err := fake.Stats(ctx)
	if err != nil || st.KeyHits[s.Keys()[0]] != 1 {
		t.Fatalf("stats %v %+v", err, st)
	}
	if !strings.Contains(s.Log("store"), "harness: start store") || strings.Count(s.Log("store"), "harness: start store") != 2 {
		t.Errorf("store log should hold both runs:\n%s", s.Log("store"))
	}
}

func connect(t *testing.T, s *stack.Stack) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(s.MongoURI()).SetTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}
