package fakegemini

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The admin API lets a test program a fake running in another process:
//
//	POST /_fake/keys     {"k1": {"status":"rate_limited","retryDelay":"2s"}, "k2": {}}
//	POST /_fake/options  {"acceptUnknownKeys": true}
//	POST /_fake/script   {"model":"gemini-2.5-flash","replies":[{...Reply...}],"always":false}
//	POST /_fake/models   [{...Model...}] replaces the model list
//	POST /_fake/reset    counters, recorded requests and scripts
//	GET  /_fake/stats    Stats
//	GET  /_fake/requests?key=&model=&method=   []Request (oldest first)
//	GET  /_fake/wait?cancelled=N&total=N&timeout=5s   blocks until the counters reach N
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	fail := func(err error) { http.Error(w, err.Error(), http.StatusBadRequest) }
	switch r.URL.Path {
	case "/_fake/keys":
		var m map[string]Behaviour
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			fail(err)
			return
		}
		for k, b := range m {
			s.SetKey(k, b)
		}
	case "/_fake/options":
		var o struct {
			AcceptUnknownKeys *bool `json:"acceptUnknownKeys"`
		}
		if err := json.NewDecoder(r.Body).Decode(&o); err != nil {
			fail(err)
			return
		}
		if o.AcceptUnknownKeys != nil {
			s.SetAcceptUnknownKeys(*o.AcceptUnknownKeys)
		}
	case "/_fake/script":
		var sc scriptReq
		if err := json.NewDecoder(r.Body).Decode(&sc); err != nil {
			fail(err)
			return
		}
		if sc.Always && len(sc.Replies) == 1 {
			s.Always(sc.Model, sc.Replies[0])
		} else {
			s.Script(sc.Model, sc.Replies...)
		}
	case "/_fake/models":
		var ms []Model
		if err := json.NewDecoder(r.Body).Decode(&ms); err != nil {
			fail(err)
			return
		}
		s.SetModels(ms)
	case "/_fake/reset":
		s.Reset()
	case "/_fake/stats":
		writeJSON(w, s.Stats())
		return
	case "/_fake/requests":
		q := r.URL.Query()
		writeJSON(w, s.Requests(Filter{Key: q.Get("key"), Model: q.Get("model"), Method: q.Get("method")}))
		return
	case "/_fake/wait":
		q := r.URL.Query()
		timeout, _ := time.ParseDuration(q.Get("timeout"))
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		cancelled, _ := strconv.Atoi(q.Get("cancelled"))
		total, _ := strconv.Atoi(q.Get("total"))
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		if err := s.WaitFor(ctx, func(st Stats) bool { return st.Cancelled >= cancelled && st.Total >= total }); err != nil {
			http.Error(w, "timeout: "+err.Error(), http.StatusRequestTimeout)
			return
		}
		writeJSON(w, s.Stats())
		return
	default:
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type scriptReq struct {
	Model   string  `json:"model"`
	Replies []Reply `json:"replies"`
	Always  bool    `json:"always,omitempty"`
}

// Remote programs and inspects a fake served by another process through /_fake/.
type Remote struct {
	URL  string
	HTTP *http.Client
}

func (c Remote) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, body)
	if err != nil {
		return err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("fake %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("fake %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// SetKeys programs keys (an empty Behaviour means OK).
func (c Remote) SetKeys(ctx context.Context, keys map[string]Behaviour) error {
	return c.do(ctx, http.MethodPost, "/_fake/keys", keys, nil)
}

// SetAcceptUnknownKeys switches how unregistered keys are answered.
func (c Remote) SetAcceptUnknownKeys(ctx context.Context, v bool) error {
	return c.do(ctx, http.MethodPost, "/_fake/options", map[string]bool{"acceptUnknownKeys": v}, nil)
}

// Script queues replies for model.
func (c Remote) Script(ctx context.Context, model string, replies ...Reply) error {
	return c.do(ctx, http.MethodPost, "/_fake/script", scriptReq{Model: model, Replies: replies}, nil)
}

// Always makes every call on model answer r.
func (c Remote) Always(ctx context.Context, model string, r Reply) error {
	return c.do(ctx, http.MethodPost, "/_fake/script", scriptReq{Model: model, Replies: []Reply{r}, Always: true}, nil)
}

// SetModels replaces the model list.
func (c Remote) SetModels(ctx context.Context, models []Model) error {
	return c.do(ctx, http.MethodPost, "/_fake/models", models, nil)
}

// Last is the newest recorded request matching f.
func (c Remote) Last(ctx context.Context, f Filter) (Request, bool, error) {
	reqs, err := c.Requests(ctx, f)
	if err != nil || len(reqs) == 0 {
		return Request{}, false, err
	}
	return reqs[len(reqs)-1], true, nil
}

// Reset clears counters, recorded requests and scripts.
func (c Remote) Reset(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/_fake/reset", nil, nil)
}

// Stats reads the counters.
func (c Remote) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := c.do(ctx, http.MethodGet, "/_fake/stats", nil, &st)
	return st, err
}

// Requests lists recorded requests matching f.
func (c Remote) Requests(ctx context.Context, f Filter) ([]Request, error) {
	q := url.Values{}
	for k, v := range map[string]string{"key": f.Key, "model": f.Model, "method": f.Method} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out []Request
	err := c.do(ctx, http.MethodGet, "/_fake/requests?"+q.Encode(), nil, &out)
	return out, err
}

// WaitCancelled blocks until at least n requests were cancelled by their caller.
func (c Remote) WaitCancelled(ctx context.Context, n int, timeout time.Duration) (Stats, error) {
	var st Stats
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/_fake/wait?cancelled=%d&timeout=%s", n, timeout), nil, &st)
	return st, err
}
