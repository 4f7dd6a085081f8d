package gateway_test

import (
	"strings"
	"testing"

	"google.golang.org/genai"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

const otherToken = "sk-other-client-token-fedcba9876543210"

func TestAClientTokenSeesOnlyItsOwnFiles(t *testing.T) {
	e := newEnv(t, envOptions{
		gemini:   []string{keyGood1, keyGood2},
		settings: func(s *config.Settings) { s.AllowedTokens = []string{token, otherToken} },
	})
	ctx := ctxTimeout(t)
	mine, theirs := e.client(token), e.client(otherToken)
	f, err := mine.Files.Upload(ctx, strings.NewReader("%PDF-1.4 private"), &genai.UploadFileConfig{MIMEType: "application/pdf"})
	if err != nil {
		t.Fatal(err)
	}
	for lf, err := range theirs.Files.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if lf.Name == f.Name {
			t.Fatal("another token lists my file")
		}
	}
	if _, err := theirs.Files.Get(ctx, f.Name, nil); err == nil {
		t.Fatal("another token reads my file")
	}
	if _, err := theirs.Files.Delete(ctx, f.Name, nil); err == nil {
		t.Fatal("another token deletes my file")
	}
	if _, err := theirs.Models.GenerateContent(ctx, "gemini-2.5-flash", []*genai.Content{{Role: "user", Parts: []*genai.Part{
		genai.NewPartFromURI(f.URI, "application/pdf"), genai.NewPartFromText("read it")}}}, nil); err == nil {
		t.Fatal("another token used my file in a prompt")
	}
	// The owner still can, with the key that uploaded it.
	owner, _ := e.fake.FileOwner(f.Name)
	if _, err := mine.Models.GenerateContent(ctx, "gemini-2.5-flash", []*genai.Content{{Role: "user", Parts: []*genai.Part{
		genai.NewPartFromURI(f.URI, "application/pdf"), genai.NewPartFromText("read it")}}}, nil); err != nil {
		t.Fatalf("owner generate with file: %v", err)
	}
	last, _ := e.fake.Last(fakegemini.Filter{Method: "generateContent"})
	if last.Key != owner {
		t.Errorf("generate used key %q, the file belongs to %q", last.Key, owner)
	}
	if _, err := mine.Files.Delete(ctx, f.Name, nil); err != nil {
		t.Fatalf("owner delete: %v", err)
	}
}
