package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/genai"

	keydsvc "github.com/gemini-balance-go/keyd/service"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/mongox"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/testkit/fakegemini"
	"github.com/gemini-balance-go/testkit/natstest"
	"github.com/gemini-balance-go/testkit/storetest"
)

// startRealKeyd runs the real keyd service (embedded FerretDB) on the env's
// NATS server in place of the minimal peer.
func startRealKeyd(t *testing.T, e *env, keys []string) {
	t.Helper()
	e.keyd.Stop()
	uri := storetest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cl, err := mongox.Connect(ctx, uri, "edge-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	nc, js := natstest.Connect(t, e.nc.ConnectedUrl(), nats.Name("keyd-test"))
	st := *e.settings.Get()
	st.APIKeys = keys
	svc, err := keydsvc.New(ctx, keydsvc.Deps{NC: nc, JS: js, DB: cl.Database("gb_edge_test"), Settings: natsx.NewSettings(st),
		Infra: config.Infra{Replica: "test"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	// Ready, not a ping: micro answers pings before its endpoints are
	// subscribed, and a report sent in that gap would be lost.
	eventually(t, func() bool { return svc.Ready(ctx) == nil })
}

func TestWithTheRealKeydFailoverAndFilesWork(t *testing.T) {
	keys := []string{keyInvalid, keyLimited, keyGood1, keyGood2}
	e := newEnv(t, envOptions{gemini: keys, settings: func(s *config.Settings) { s.MaxRetries = 3 }})
	startRealKeyd(t, e, keys)
	e.fake.SetKey(keyInvalid, fakegemini.Behaviour{Status: fakegemini.Invalid})
	e.fake.SetKey(keyLimited, fakegemini.Behaviour{Status: fakegemini.RateLimited, RetryDelay: fakegemini.Duration(time.Hour)})
	c := e.client(token)
	ctx := ctxTimeout(t)
	for i := range 8 {
		if _, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hello"), nil); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if e.fake.Hits(keyInvalid) > 1 || e.fake.Hits(keyLimited) > 1 {
		t.Errorf("bad keys hit more than the policy allows: %v", e.fake.Stats().KeyHits)
	}
	f, err := c.Files.Upload(ctx, strings.NewReader("%PDF-1.4 with keyd"), &genai.UploadFileConfig{MIMEType: "application/pdf"})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if g, err := c.Files.Get(ctx, f.Name, nil); err != nil || g.Name != f.Name {
		t.Fatalf("get: %v", err)
	}
	owner, _ := e.fake.FileOwner(f.Name)
	if _, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", []*genai.Content{{Role: "user", Parts: []*genai.Part{
		genai.NewPartFromURI(f.URI, "application/pdf"), genai.NewPartFromText("read")}}}, nil); err != nil {
		t.Fatalf("generate with file: %v", err)
	}
	if last, _ := e.fake.Last(fakegemini.Filter{Method: "generateContent"}); last.Key != owner {
		t.Errorf("file prompt used another key than the uploader")
	}
	if _, err := c.Files.Delete(ctx, f.Name, nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
}
