package gateway_test

import (
	"strconv"
	"strings"
	"testing"

	"google.golang.org/genai"

	"github.com/gemini-balance-go/edge/files"
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

// Every way of naming token A's file is refused for token B with 403 in the
// route's shape, and nothing reaches the upstream.
func TestAnotherTokensFileIsRefusedInEveryFormAndNothingGoesUpstream(t *testing.T) {
	e := newEnv(t, envOptions{
		gemini:   []string{keyGood1, keyGood2},
		settings: func(s *config.Settings) { s.AllowedTokens = []string{token, otherToken} },
	})
	ctx := ctxTimeout(t)
	f, err := e.client(token).Files.Upload(ctx, strings.NewReader("%PDF-1.4 private"), &genai.UploadFileConfig{MIMEType: "application/pdf"})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := e.client(otherToken).Files.Upload(ctx, strings.NewReader("%PDF-1.4 mine"), &genai.UploadFileConfig{MIMEType: "application/pdf"})
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(f.Name, "files/")
	esc := strings.ReplaceAll(f.URI, "/", `\/`)
	const gen = "/v1beta/models/gemini-2.5-flash:generateContent"
	cases := []struct{ name, path, body string }{
		{"escaped slashes", gen, `{"contents":[{"parts":[{"fileData":{"fileUri":"` + esc + `"}}]}]}`},
		{"mixed spelling", gen, `{"contents":[{"parts":[{"fileData":{"file_uri":"` + f.URI + `"}}]}]}`},
		{"systemInstruction", gen, `{"systemInstruction":{"parts":[{"file_data":{"fileUri":"` + f.URI + `"}}]},"contents":[{"parts":[{"text":"hi"}]}]}`},
		{"second reference", gen, `{"contents":[{"parts":[{"fileData":{"fileUri":"` + mine.URI + `"}},{"fileData":{"fileUri":"` + f.URI + `"}}]}]}`},
		{"stream", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", `{"contents":[{"parts":[{"fileData":{"fileUri":"` + f.URI + `"}}]}]}`},
		{"countTokens", "/v1beta/models/gemini-2.5-flash:countTokens", `{"contents":[{"parts":[{"fileData":{"fileUri":"` + f.URI + `"}}]}]}`},
		{"openai file part", "/v1/chat/completions", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"` + id + `","filename":"a.pdf"}}]}]}`},
		{"openai image_url", "/v1/chat/completions", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"` + f.URI + `"}}]}]}`},
		{"responses input_file", "/v1/responses", `{"model":"gemini-2.5-flash","input":[{"role":"user","content":[{"type":"input_file","file_id":"` + id + `","filename":"a.pdf"}]}]}`},
		{"responses input_image", "/v1/responses", `{"model":"gemini-2.5-flash","input":[{"role":"user","content":[{"type":"input_image","image_url":"` + f.URI + `"}]}]}`},
		{"responses file_url", "/hf/v1/responses", `{"model":"gemini-2.5-flash","stream":true,"input":[{"role":"user","content":[{"type":"input_file","file_url":"` + f.URI + `"}]}]}`},
		{"passthrough", "/openai/v1/chat/completions", `{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"` + f.URI + `"}}]}]}`},
	}
	e.fake.Reset()
	for _, c := range cases {
		status, b := call(t, "POST", e.url+c.path, otherToken, c.body)
		if status != 403 || !strings.Contains(string(b), "permission") {
			t.Errorf("%s: %d %s", c.name, status, b)
		}
		if strings.HasPrefix(c.path, "/v1beta") && !strings.Contains(string(b), `"PERMISSION_DENIED"`) {
			t.Errorf("%s: not Gemini-shaped: %s", c.name, b)
		}
		if !strings.HasPrefix(c.path, "/v1beta") && !strings.Contains(string(b), `"permission_error"`) {
			t.Errorf("%s: not OpenAI-shaped: %s", c.name, b)
		}
	}
	if n := e.fake.Stats().Total; n != 0 {
		t.Errorf("upstream saw %d calls: %v", n, e.fake.Stats().MethodHits)
	}
	// The owner's escaped reference still works, on the key that uploaded it.
	status, b := call(t, "POST", e.url+gen, token, cases[0].body)
	if status != 200 {
		t.Fatalf("owner: %d %s", status, b)
	}
	owner, _ := e.fake.FileOwner(f.Name)
	if last, _ := e.fake.Last(fakegemini.Filter{Method: "generateContent"}); last.Key != owner {
		t.Errorf("owner's call used %q, file is %q's", last.Key, owner)
	}
}

func TestTooManyFileReferencesAre400(t *testing.T) {
	e := newEnv(t, envOptions{})
	var parts []string
	for i := 0; i <= files.MaxRefs; i++ {
		parts = append(parts, `{"fileData":{"fileUri":"files/f`+strconv.Itoa(i)+`"}}`)
	}
	status, b := call(t, "POST", e.url+"/v1beta/models/gemini-2.5-flash:generateContent", token, `{"contents":[{"parts":[`+strings.Join(parts, ",")+`]}]}`)
	if status != 400 || !strings.Contains(string(b), "INVALID_ARGUMENT") {
		t.Fatalf("%d %s", status, b)
	}
	if n := e.fake.Stats().Total; n != 0 {
		t.Errorf("upstream saw %d calls", n)
	}
}
