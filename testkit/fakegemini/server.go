// Package fakegemini is an in-process fake of the Gemini API (generativelanguage) for
// tests and benchmarks: wire-faithful answers, per-key programmable failures, scripted
// replies, a Files API, context caches, batches and long-running operations, each owned
// by the key that created it as on Google (another key gets 403), a minimal OpenAI-compatible endpoint, and
// recording of every request for assertions. An admin API under /_fake/ lets another
// process program it (see Remote and cmd/fakegemini).
package fakegemini

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure a Server.
type Options struct {
	// Keys answer OK from the start.
	Keys []string
	// AcceptUnknownKeys makes keys never registered answer OK instead of the realistic
	// 400 API_KEY_INVALID.
	AcceptUnknownKeys bool
	// Models listed by GET /models (default: DefaultModels()).
	Models []Model
	// StrictModels answers 404 NOT_FOUND for generate calls on models not in Models.
	StrictModels bool
	// SSESeparator ends each SSE event (default "\r\n\r\n", what Google's frontends send;
	// proxies must cope with it as well as "\n\n").
	SSESeparator string
	// RecordLimit is how many recent requests are kept at least (default 2000; negative keeps counters only,
	// for benchmarks).
	RecordLimit int
}

// Request is one recorded call.
type Request struct {
	Seq      int64       `json:"seq"`
	Time     time.Time   `json:"time"`
	Key      string      `json:"key"`
	Model    string      `json:"model,omitempty"`
	Method   string      `json:"method"` // generateContent, streamGenerateContent, countTokens, embedContent, batchEmbedContents, models.list, models.get, files.*, openai.chat
	HTTP     string      `json:"http"`   // HTTP method
	Path     string      `json:"path"`
	RawQuery string      `json:"rawQuery,omitempty"`
	Header   http.Header `json:"header"`
	Body     []byte      `json:"body,omitempty"`
	// Status is the HTTP status sent (0 until the handler wrote it).
	Status int `json:"status"`
	// Cancelled is set when the caller went away before the reply was complete.
	Cancelled bool `json:"cancelled"`
	// Done is set once the handler returned.
	Done bool `json:"done"`
}

// Reply scripts one generateContent answer. The zero Reply is the default echo.
type Reply struct {
	// Parts of the model turn. For streams each part is one element unless Chunks is set.
	Parts []Part `json:"parts,omitempty"`
	// Chunks, when set, is the exact stream element layout (parts per element); for
	// non-stream calls the chunks are concatenated.
	Chunks [][]Part `json:"chunks,omitempty"`
	// FinishReason defaults to STOP.
	FinishReason      string          `json:"finishReason,omitempty"`
	FinishMessage     string          `json:"finishMessage,omitempty"`
	Usage             *UsageMetadata  `json:"usage,omitempty"`
	GroundingMetadata json.RawMessage `json:"groundingMetadata,omitempty"`
	// PromptFeedback makes a blocked-prompt answer (no candidates).
	PromptFeedback json.RawMessage `json:"promptFeedback,omitempty"`
	// Raw is sent verbatim as the whole non-stream body (and as the only stream element).
	Raw json.RawMessage `json:"raw,omitempty"`
	// Fail answers with this error instead (per-model failures).
	Fail Status `json:"fail,omitempty"`
	// Behaviour adds delays or a mid-stream failure to this reply.
	Behaviour *Behaviour `json:"behaviour,omitempty"`
}

// Handler may produce the reply for a generate call; returning nil falls through to
// scripts and the default echo.
type Handler func(req *Request) *Reply

// Server is the fake. Create it with New, serve Handler() or use Start/Serve.
type Server struct {
	URL string // set by Start / Serve

	opts Options
	mux  *http.ServeMux

	mu         sync.Mutex
	keys       map[string]*keyState
	scripts    map[string][]Reply // model → queue; last entry sticks when Sticky
	sticky     map[string]Reply
	handler    Handler
	requests   []*Request
	seq        int64
	total      int
	keyHits    map[string]int
	modelHits  map[string]int
	methodHits map[string]int
	cancelled  int
	onCancel   []func(Request)
	files      map[string]*fileRec
	uploads    map[string]*uploadSession
	res        map[string]*resource // caches, batches, operations by name
	changed    chan struct{}        // closed and replaced on every recorded change
}

type keyState struct {
	b    Behaviour
	used int // error answers given under Times
}

// New builds a Server.
func New(opts Options) *Server {
	if opts.SSESeparator == "" {
		opts.SSESeparator = "\r\n\r\n"
	}
	if opts.RecordLimit == 0 {
		opts.RecordLimit = 2000
	}
	if opts.Models == nil {
		opts.Models = DefaultModels()
	}
	s := &Server{
		opts:       opts,
		keys:       map[string]*keyState{},
		scripts:    map[string][]Reply{},
		sticky:     map[string]Reply{},
		keyHits:    map[string]int{},
		modelHits:  map[string]int{},
		methodHits: map[string]int{},
		files:      map[string]*fileRec{},
		uploads:    map[string]*uploadSession{},
		res:        map[string]*resource{},
		changed:    make(chan struct{}),
	}
	for _, k := range opts.Keys {
		s.keys[k] = &keyState{b: Behaviour{Status: OK}}
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/_fake/", s.serveAdmin)
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("/", s.serveAPI)
	return s
}

// Start serves a new fake on a loopback httptest server closed at test cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := New(opts)
	ts := httptest.NewServer(s.Handler())
	s.URL = ts.URL
	t.Cleanup(ts.Close)
	return s
}

// Serve serves on l until ctx is done.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.URL = "http://" + l.Addr().String()
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

// Handler is the HTTP surface (API + /_fake admin + /healthz /readyz).
func (s *Server) Handler() http.Handler { return s.mux }

// SetKey programs one key.
func (s *Server) SetKey(key string, b Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.Status == "" {
		b.Status = OK
	}
	s.keys[key] = &keyState{b: b}
}

// AddKeys registers keys that answer OK.
func (s *Server) AddKeys(keys ...string) {
	for _, k := range keys {
		s.SetKey(k, Behaviour{Status: OK})
	}
}

// SetModels replaces the model list served by GET /models.
func (s *Server) SetModels(models []Model) {
	s.mu.Lock()
	s.opts.Models = models
	s.mu.Unlock()
}

func (s *Server) models() []Model {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.Models
}

// SetAcceptUnknownKeys switches how never-registered keys are answered.
func (s *Server) SetAcceptUnknownKeys(v bool) {
	s.mu.Lock()
	s.opts.AcceptUnknownKeys = v
	s.mu.Unlock()
}

// Script queues replies for model; each generate call on the model takes the next one.
// When the queue is empty the default echo answers again.
func (s *Server) Script(model string, replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	model = strings.TrimPrefix(model, "models/")
	s.scripts[model] = append(s.scripts[model], replies...)
}

// Always makes every generate call on model answer r (until Reset or another Always).
func (s *Server) Always(model string, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sticky[strings.TrimPrefix(model, "models/")] = r
}

// Handle installs a hook that may answer any generate call first.
func (s *Server) Handle(h Handler) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// OnCancel registers f to be called when a caller goes away before its reply was complete.
func (s *Server) OnCancel(f func(Request)) {
	s.mu.Lock()
	s.onCancel = append(s.onCancel, f)
	s.mu.Unlock()
}

// Reset forgets recorded requests, counters, scripts and the handler; keys and files stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
	s.total = 0
	s.keyHits = map[string]int{}
	s.modelHits = map[string]int{}
	s.methodHits = map[string]int{}
	s.cancelled = 0
	s.scripts = map[string][]Reply{}
	s.sticky = map[string]Reply{}
	s.handler = nil
	s.notifyLocked()
}

// Stats is a snapshot of the counters.
type Stats struct {
	Total      int            `json:"total"`
	Cancelled  int            `json:"cancelled"`
	KeyHits    map[string]int `json:"keyHits"`
	ModelHits  map[string]int `json:"modelHits"`
	MethodHits map[string]int `json:"methodHits"`
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Total: s.total, Cancelled: s.cancelled, KeyHits: map[string]int{}, ModelHits: map[string]int{}, MethodHits: map[string]int{}}
	for k, v := range s.keyHits {
		st.KeyHits[k] = v
	}
	for k, v := range s.modelHits {
		st.ModelHits[k] = v
	}
	for k, v := range s.methodHits {
		st.MethodHits[k] = v
	}
	return st
}

// Hits is the number of requests that carried key.
func (s *Server) Hits(key string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.keyHits[key] }

// ModelHits is the number of model calls on model.
func (s *Server) ModelHits(model string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.modelHits[strings.TrimPrefix(model, "models/")]
}

// Cancelled is the number of requests whose caller went away before the reply was complete.
func (s *Server) Cancelled() int { s.mu.Lock(); defer s.mu.Unlock(); return s.cancelled }

// Filter selects recorded requests; empty fields match anything.
type Filter struct {
	Key    string `json:"key,omitempty"`
	Model  string `json:"model,omitempty"`
	Method string `json:"method,omitempty"`
}

func (f Filter) match(r *Request) bool {
	return (f.Key == "" || f.Key == r.Key) && (f.Model == "" || f.Model == r.Model) && (f.Method == "" || f.Method == r.Method)
}

// Requests returns copies of recorded requests matching f, oldest first.
func (s *Server) Requests(f Filter) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if f.match(r) {
			out = append(out, *r)
		}
	}
	return out
}

// Last returns the newest recorded request matching f.
func (s *Server) Last(f Filter) (Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.requests) - 1; i >= 0; i-- {
		if f.match(s.requests[i]) {
			return *s.requests[i], true
		}
	}
	return Request{}, false
}

// LastRequest is the newest request that carried key.
func (s *Server) LastRequest(key string) (Request, bool) { return s.Last(Filter{Key: key}) }

// WaitFor blocks until cond (evaluated on the server's state) holds or ctx ends.
func (s *Server) WaitFor(ctx context.Context, cond func(Stats) bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond(s.Stats()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// record stores an incoming request and counts it.
func (s *Server) record(r *Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	r.Seq = s.seq
	r.Time = time.Now()
	s.total++
	if s.opts.RecordLimit > 0 {
		s.requests = append(s.requests, r)
		if len(s.requests) >= 2*s.opts.RecordLimit { // trim in bulk: O(1) amortised
			s.requests = append([]*Request(nil), s.requests[len(s.requests)-s.opts.RecordLimit:]...)
		}
	}
	if r.Key != "" {
		s.keyHits[r.Key]++
	}
	if r.Model != "" {
		s.modelHits[r.Model]++
	}
	s.methodHits[r.Method]++
	s.notifyLocked()
}

// finish marks r complete with its status and reports a cancellation.
func (s *Server) finish(r *Request, status int, cancelled bool) {
	s.mu.Lock()
	r.Status = status
	r.Done = true
	var hooks []func(Request)
	if cancelled && !r.Cancelled {
		r.Cancelled = true
		s.cancelled++
		hooks = append(hooks, s.onCancel...)
	}
	cp := *r
	s.notifyLocked()
	s.mu.Unlock()
	for _, h := range hooks {
		h(cp)
	}
}

// behaviourFor resolves a key's behaviour and consumes one use of a limited error.
func (s *Server) behaviourFor(key string) Behaviour {
	s.mu.Lock()
	defer s.mu.Unlock()
	ks, ok := s.keys[key]
	if !ok {
		if s.opts.AcceptUnknownKeys {
			return Behaviour{Status: OK, key: key}
		}
		return Behaviour{Status: Invalid, key: key}
	}
	b := ks.b
	b.key = key
	if b.Status != OK && b.Times > 0 {
		if ks.used >= b.Times {
			b.Status = OK
		} else {
			ks.used++
		}
	}
	return b
}

// nextReply picks the reply for a generate call on model.
func (s *Server) nextReply(req *Request) Reply {
	s.mu.Lock()
	h := s.handler
	s.mu.Unlock()
	if h != nil {
		if r := h(req); r != nil {
			return *r
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.scripts[req.Model]; len(q) > 0 {
		s.scripts[req.Model] = q[1:]
		return q[0]
	}
	if r, ok := s.sticky[req.Model]; ok {
		return r
	}
	return Reply{}
}

// apiKey reads the key the way Google accepts it: header, then ?key=, then Bearer
// (the OpenAI-compatible surface).
func apiKey(r *http.Request) string {
	if k := r.Header.Get("x-goog-api-key"); k != "" {
		return k
	}
	if k := r.URL.Query().Get("key"); k != "" {
		return k
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
