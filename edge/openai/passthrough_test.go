package openai

import "testing"

func TestPassthroughUsageIsAccounted(t *testing.T) {
	body := []byte(`{"id":"x","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":30,"total_tokens":40,"completion_tokens_details":{"reasoning_tokens":12}}}`)
	if u := openAIUsage(body); u.Prompt != 10 || u.Candidates != 18 || u.Thoughts != 12 || u.Total != 40 {
		t.Errorf("json usage %+v", u)
	}
	sse := []byte("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\ndata: [DONE]\n\n")
	if u := openAIUsage(sse); u.Prompt != 3 || u.Total != 5 {
		t.Errorf("sse usage %+v", u)
	}
	if u := openAIUsage([]byte("not json")); u.Total != 0 {
		t.Errorf("junk usage %+v", u)
	}
}

func TestPassthroughIsAnAllowListOfNormalizedPaths(t *testing.T) {
	cases := []struct {
		method, path string
		status       int
	}{
		{"POST", "/openai/v1/chat/completions", 0},
		{"POST", "/openai/v1/embeddings", 0},
		{"POST", "/openai/v1/images/generations", 0},
		{"GET", "/openai/v1/models", 0},
		{"GET", "/openai/v1/models/gemini-2.5-flash", 0},
		{"GET", "/openai/v1/chat/completions", 405},
		{"POST", "/openai/v1/files", 404},
		{"POST", "/openai/v1/batches", 404},
		{"GET", "/openai/v1/models/a/b", 404},
		{"POST", "/openai/v1/../../v1beta/files", 400},
		{"POST", "/openai/v1/chat/../files", 400},
		{"POST", "/openai/v1/%2e%2e/%2e%2e/v1beta/files", 400},
		{"POST", "/openai/v1/chat%2fcompletions", 400},
		{"POST", "/openai/v1//chat/completions", 400},
		{"POST", "/openai/v1/chat/completions/", 400},
		{"POST", "/openai/v1/./chat/completions", 400},
		{"POST", `/openai/v1/chat\completions`, 400},
		{"GET", "/openai/v1/models/..", 400},
		{"GET", "/openai/v1", 404},
	}
	for _, c := range cases {
		p, status, msg := passthroughPath(c.method, c.path)
		if status != c.status {
			t.Errorf("%s %s: status %d (%s), want %d", c.method, c.path, status, msg, c.status)
		}
		if status == 0 && "/openai/v1"+p != c.path {
			t.Errorf("%s: forwarded %q", c.path, p)
		}
	}
}
