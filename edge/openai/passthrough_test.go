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
