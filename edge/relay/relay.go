// One concern, kept whole: the attempt loop and the relay of one upstream
// call, which share the attempt state and its event record.

// Package relay calls the Gemini API on behalf of a client request: it runs
// the attempt loop (acquire a key from keyd, call upstream with it, classify
// the answer with the shared policy table, report to keyd, fail over to
// another key only before the first byte and only when the policy allows)
// and relays streams event by event without re-chunking.
//
// Both the Gemini-native routes (edge/native) and the OpenAI routes
// (edge/openai) use it:
//
//	resp := rl.Do(ctx, &relay.Request{Route: "openai.chat", Model: m, Path: "/v1beta/models/" + m + ":generateContent", Body: b, CheckEmpty: true})
//	if !resp.OK() { /* resp.Status, resp.Body (Gemini error JSON), resp.Message() */ }
//
//	resp := rl.Stream(ctx, &relay.Request{..., Path: ".../" + m + ":streamGenerateContent", Query: "alt=sse"})
//	if resp.Stream == nil { /* failed before the first byte: as above */ }
//	err := relay.Pump(w, resp.Stream, relay.Passthrough{S: resp.Stream}) // or relay.Convert(conv, fail)
//
// Pump is the one stream loop of the edge: status first, flush per event,
// an error event after a mid-stream failure, upstream cancelled when the
// client goes, the outcome reported when the stream closes.
//
// The request event of the client request (edge/events.Record in ctx) is
// filled in along the way: attempts, key, upstream model, TTFB and usage.
package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gemini-balance-go/edge/events"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/outcome"
	"github.com/gemini-balance-go/shared/redact"
)

// Keys is what the relay needs from keyd; edge/keydclient.Client implements it.
type Keys interface {
	Acquire(ctx context.Context, req bus.AcquireRequest) (bus.AcquireReply, error)
	Report(r bus.Report)
}

// ErrorSink receives one event per failed attempt; edge/events.Publisher
// implements it.
type ErrorSink interface {
	Error(ev *bus.ErrorEvent) bool
}

// Options build a Relay.
type Options struct {
	Settings *natsx.Settings
	Keys     Keys
	Errors   ErrorSink // may be nil
	Logger   *slog.Logger
	// Transport replaces the pooled upstream transport (tests).
	Transport http.RoundTripper
}

// Relay is safe for concurrent use; one per process.
type Relay struct {
	settings *natsx.Settings
	keys     Keys
	errs     ErrorSink
	log      *slog.Logger
	// transport takes every upstream call itself: http.Client.Do copied each
	// request's headers for redirects, which the relay never follows (a 3xx
	// is relayed as it is), a twentieth of edge's allocation per request.
	transport http.RoundTripper
}

// NewTransport is the one pooled upstream transport: keep-alive, HTTP/2 over
// TLS, proxy per key, no transparent gzip (bytes are relayed as received).
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 proxyFromContext,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          2048,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// New returns a Relay.
func New(o Options) *Relay {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	t := o.Transport
	if t == nil {
		t = NewTransport()
	}
	return &Relay{
		settings: o.Settings,
		keys:     o.Keys,
		errs:     o.Errors,
		log:      o.Logger,
		// No timeout on the whole call: TIME_OUT is applied per attempt (to
		// the first byte) and between stream reads, not to a whole long stream.
		transport: t,
	}
}

// Request is one client call to relay upstream.
type Request struct {
	Route     string // request event route, e.g. "gemini.generateContent"
	ErrorType string // error event type, e.g. "gemini-chat-stream"; defaults to Route
	Kind      string // key pool: bus.KindGemini (default) or bus.KindVertex
	Model     string // upstream model, for keyd's per-model cooldowns
	Method    string // default POST
	// Base is the upstream root; empty means BASE_URL, or
	// VERTEX_EXPRESS_BASE_URL for the vertex pool.
	Base   string
	Path   string      // appended to Base, e.g. "/v1beta/models/gemini-2.5-flash:generateContent"
	Query  string      // raw query to send, without any key, e.g. "alt=sse"
	Header http.Header // extra request headers (Content-Type is set for a body)
	Body   []byte
	// CheckEmpty treats a 2xx without parts, finishReason or promptFeedback
	// as outcome.Empty (generateContent and its streams).
	CheckEmpty bool
	// PinKeyID asks for one key (file affinity); there is no failover then.
	PinKeyID string
	// MaxAttempts overrides MAX_RETRIES when > 0.
	MaxAttempts int
	// BearerKey sends the key as "Authorization: Bearer" (the upstream's
	// OpenAI-compatible endpoint) instead of x-goog-api-key.
	BearerKey bool
}

// Key names the upstream key of an attempt (never the secret).
type Key struct{ ID, Hint, Kind string }

// Response is the outcome of Do or Stream.
type Response struct {
	// Status and Body are what the client should see when !OK(): upstream's
	// own status and error body, or a Gemini-shaped error made here when no
	// upstream answer exists (no key, keyd down, transport failure).
	Status int
	Header http.Header // upstream response headers, when there was an answer
	Body   []byte      // whole upstream body for Do; error body otherwise
	Class  outcome.Class
	// Local is true when the answer was made by the edge, not upstream.
	Local bool
	// NoKey is the keyd reason when no key was usable (bus.NoKey*).
	NoKey string
	// RetryAfter is set on a 429 because every key cools down.
	RetryAfter time.Duration
	Attempts   int
	Key        Key
	// Stream is set by Stream on success; the caller must Close it.
	Stream *Stream

	verdict outcome.Verdict // retry delay and reason, for the report
}

// OK reports a successful answer.
func (r *Response) OK() bool { return r.Class == outcome.Success }

// Message is the error message for a failed response.
func (r *Response) Message() string { return ErrorMessage(r.Body) }

// Do runs the attempt loop for a call whose whole answer is read at once.
func (rl *Relay) Do(ctx context.Context, req *Request) *Response {
	return rl.run(ctx, req, false)
}

// Stream runs the attempt loop until an upstream stream has produced its
// first whole event; from then on there is no failover. On success
// resp.Stream is set and must be closed; otherwise resp is like Do's.
func (rl *Relay) Stream(ctx context.Context, req *Request) *Response {
	return rl.run(ctx, req, true)
}

func (rl *Relay) run(ctx context.Context, req *Request, stream bool) *Response {
	st := rl.settings.Get()
	maxAttempts := req.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = st.MaxRetries
	}
	maxAttempts = max(maxAttempts, 1)
	kind := req.Kind
	if kind == "" {
		kind = bus.KindGemini
	}
	rec := events.From(ctx)
	rec.Upstream = req.Model
	rec.Stream = stream
	var last *Response
	var exclude []string
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		rep, err := rl.keys.Acquire(ctx, bus.AcquireRequest{Kind: kind, Model: req.Model, Exclude: exclude, KeyID: req.PinKeyID})
		if err != nil {
			if last != nil {
				break // keep upstream's real answer from the previous attempt
			}
			if ctx.Err() != nil {
				return rl.local(499, "client closed the request", outcome.Canceled)
			}
			rl.log.Error("acquire key", "err", err)
			return rl.local(http.StatusServiceUnavailable, "the key service is unavailable, try again shortly", outcome.ConnError)
		}
		if rep.ID == "" {
			if last != nil {
				break
			}
			return noKey(rep, kind)
		}
		exclude = append(exclude, rep.ID)
		key := Key{ID: rep.ID, Hint: rep.Hint, Kind: kind}
		rec.Attempts, rec.KeyID, rec.KeyHint, rec.KeyKind = attempt, key.ID, key.Hint, kind
		resp := rl.attempt(ctx, req, st.TimeOut, rep.Secret, key, stream)
		resp.Attempts, resp.Key = attempt, key
		rec.Class = string(resp.Class)
		if resp.Stream == nil { // a committed stream reports when it ends
			v := resp.verdict
			v.Class, v.Status = resp.Class, resp.Status
			rl.report(req, key, v, resp.Body, rep.Secret, attempt, rec, st.ErrorLogRecordRequestBody)
		}
		if resp.OK() || !resp.Class.Retryable() || req.PinKeyID != "" || ctx.Err() != nil {
			return resp
		}
		last = resp
	}
	return last
}

// local is an answer the edge makes itself.
func (rl *Relay) local(status int, msg string, class outcome.Class) *Response {
	return &Response{Status: status, Body: ErrorBody(status, msg), Class: class, Local: true}
}

// noKey answers honestly when keyd has no usable key: 429 with Retry-After
// when every key cools down, 503 otherwise.
func noKey(rep bus.AcquireReply, kind string) *Response {
	r := &Response{Local: true, NoKey: rep.NoKey, Class: outcome.RateLimited}
	switch rep.NoKey {
	case bus.NoKeyAllCooling:
		r.Status = http.StatusTooManyRequests
		r.RetryAfter = max(time.Until(rep.RetryAt), time.Second)
		r.Body = ErrorBody(r.Status, fmt.Sprintf("every %s key is cooling down after rate limits; retry in %ds", kind, int(r.RetryAfter.Round(time.Second)/time.Second)))
	case bus.NoKeyAllDisabled:
		r.Status, r.Class = http.StatusServiceUnavailable, outcome.ServerError
		r.Body = ErrorBody(r.Status, "every "+kind+" key is disabled; an admin must add or re-enable keys")
	case bus.NoKeyNone:
		r.Status, r.Class = http.StatusServiceUnavailable, outcome.ServerError
		r.Body = ErrorBody(r.Status, "no "+kind+" keys are configured")
	default:
		r.Status, r.Class = http.StatusServiceUnavailable, outcome.ServerError
		msg := "no usable " + kind + " key"
		if rep.Error != "" {
			msg += ": " + rep.Error
		}
		r.Body = ErrorBody(r.Status, msg)
	}
	return r
}

// RetryAfterHeader is the Retry-After value for a response, or "".
func (r *Response) RetryAfterHeader() string {
	if r.RetryAfter <= 0 {
		return ""
	}
	return strconv.Itoa(int((r.RetryAfter + time.Second - 1) / time.Second))
}

// attempt makes one upstream call with one key.
func (rl *Relay) attempt(ctx context.Context, req *Request, timeoutSec int, secret string, key Key, stream bool) *Response {
	actx, cancel := context.WithCancel(ctx)
	var timedOut atomic.Bool
	timeout := time.Duration(max(timeoutSec, 1)) * time.Second
	timer := time.AfterFunc(timeout, func() { timedOut.Store(true); cancel() })
	done := func() { timer.Stop(); cancel() }

	hreq, err := rl.newRequest(actx, req, secret, key.ID)
	if err != nil {
		done()
		return rl.local(http.StatusInternalServerError, "build upstream request: "+err.Error(), outcome.ConnError)
	}
	hres, err := rl.roundTrip(hreq)
	if err != nil {
		done()
		return transportFailure(ctx, &timedOut, err)
	}
	if hres.StatusCode < 200 || hres.StatusCode >= 300 || !stream {
		body, rerr := readAll(hres)
		done()
		if rerr != nil {
			return transportFailure(ctx, &timedOut, rerr)
		}
		v := outcome.Classify(hres.StatusCode, body)
		if v.Class != outcome.Success {
			body = Scrub(ctx, body, secret)
		}
		resp := &Response{Status: hres.StatusCode, Header: hres.Header, Body: body, Class: v.Class}
		if v.Class == outcome.Success && req.CheckEmpty && !hasContent(body) {
			resp.Class = outcome.Empty
			resp.Status = http.StatusBadGateway
			resp.Body = ErrorBody(resp.Status, "upstream returned an empty answer (no parts, no finish reason)")
			resp.Local = true
		}
		if resp.Class == outcome.Success {
			rec := events.From(ctx)
			rec.Usage = usageOf(body)
			rec.MarkFirstByte() // the answer is complete and about to be written
		}
		resp.verdict = v
		if v.Class == outcome.RateLimited && v.RetryDelay > 0 {
			resp.RetryAfter = v.RetryDelay // upstream's RetryInfo, as a header clients honour
		}
		return resp
	}
	// A 2xx stream: hold it until its first whole event, so that an empty or
	// failed stream can still go to another key.
	s := &Stream{
		rl: rl, req: req, key: key, secret: secret, ctx: ctx, res: hres,
		timer: timer, timeout: timeout, timedOut: &timedOut, cancel: cancel,
		sse: isSSE(hres), rec: events.From(ctx),
	}
	s.f = newFramer(hres.Body, s.sse)
	s.f.onRead = s.touch
	ev, err := s.f.next()
	if err != nil {
		class, status, msg := s.failure(err)
		s.release()
		if err == io.EOF {
			class, status, msg = outcome.Empty, http.StatusBadGateway, "upstream stream ended without any event"
		}
		return &Response{Status: status, Header: hres.Header, Body: ErrorBody(status, msg), Class: class, Local: true}
	}
	if ev.Data != nil && isErrorEvent(ev.Data) {
		body := append([]byte(nil), ev.Data...)
		s.release()
		v := outcome.Classify(errorCode(body), body)
		body = Scrub(ctx, body, secret)
		return &Response{Status: v.Status, Header: hres.Header, Body: body, Class: v.Class, verdict: v}
	}
	s.first = ev
	s.observe(ev)
	s.rec.MarkFirstByte() // the first event is about to be written
	return &Response{Status: hres.StatusCode, Header: hres.Header, Class: outcome.Success, Stream: s}
}

// keyHeader is x-goog-api-key in the canonical form http.Header.Set would
// compute (and allocate) on every attempt; the wire bytes are the same.
const keyHeader = "X-Goog-Api-Key"

func (rl *Relay) newRequest(ctx context.Context, req *Request, secret, keyID string) (*http.Request, error) {
	st := rl.settings.Get()
	base := req.Base
	if base == "" {
		base = st.BaseURL
		if req.Kind == bus.KindVertex {
			base = st.VertexExpressBaseURL
		}
	}
	u := base + req.Path
	if req.Query != "" {
		u += "?" + req.Query
	}
	method := req.Method
	if method == "" {
		method = http.MethodPost
	}
	ctx = withProxy(ctx, keyID, st.Proxies, st.ProxiesConsistentHash, rand.IntN)
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range req.Header {
		hreq.Header[k] = vs
	}
	if req.Body != nil && hreq.Header.Get("Content-Type") == "" {
		hreq.Header.Set("Content-Type", "application/json")
	}
	for k, v := range st.CustomHeaders {
		hreq.Header.Set(k, v)
	}
	if req.BearerKey {
		hreq.Header.Set("Authorization", "Bearer "+secret)
	} else {
		hreq.Header[keyHeader] = []string{secret}
	}
	return hreq, nil
}

// Send makes one upstream call with a given key and no failover (uploads,
// whose body is a one-shot stream). It applies CUSTOM_HEADERS, the key's
// proxy and the key header; the caller reports the outcome.
func (rl *Relay) Send(ctx context.Context, secret, keyID string, hreq *http.Request) (*http.Response, error) {
	st := rl.settings.Get()
	ctx = withProxy(ctx, keyID, st.Proxies, st.ProxiesConsistentHash, rand.IntN)
	hreq = hreq.WithContext(ctx)
	for k, v := range st.CustomHeaders {
		hreq.Header.Set(k, v)
	}
	hreq.Header[keyHeader] = []string{secret}
	hreq.Header.Del("Authorization")
	return rl.roundTrip(hreq)
}

// roundTrip sends hreq and, on failure, says which call failed as
// http.Client does ("Post \"https://…\": dial tcp: …").
func (rl *Relay) roundTrip(hreq *http.Request) (*http.Response, error) {
	res, err := rl.transport.RoundTrip(hreq)
	if err != nil {
		op := "Get" // an empty method is GET
		if m := hreq.Method; m != "" {
			op = m[:1] + strings.ToLower(m[1:])
		}
		return nil, &url.Error{Op: op, URL: hreq.URL.Redacted(), Err: err}
	}
	return res, nil
}

// transportFailure classifies an attempt that got no HTTP answer.
func transportFailure(ctx context.Context, timedOut *atomic.Bool, err error) *Response {
	switch {
	case ctx.Err() != nil:
		return &Response{Status: 499, Body: ErrorBody(499, "client closed the request"), Class: outcome.Canceled, Local: true}
	case timedOut.Load() || errors.Is(err, context.DeadlineExceeded):
		return &Response{Status: http.StatusGatewayTimeout, Body: ErrorBody(http.StatusGatewayTimeout, "upstream did not answer within TIME_OUT"), Class: outcome.Timeout, Local: true}
	default:
		return &Response{Status: http.StatusBadGateway, Body: ErrorBody(http.StatusBadGateway, "upstream connection failed: "+redact.Text(err.Error())), Class: outcome.ConnError, Local: true}
	}
}

func readAll(res *http.Response) ([]byte, error) {
	defer res.Body.Close()
	n := res.ContentLength
	if n < 0 || n > 64<<20 {
		n = 4 << 10
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+1))
	_, err := buf.ReadFrom(res.Body)
	return buf.Bytes(), err
}

func isSSE(res *http.Response) bool {
	ct := res.Header.Get("Content-Type")
	return len(ct) >= 17 && ct[:17] == "text/event-stream"
}

// errorCode reads error.code from an error event, defaulting to 500.
func errorCode(body []byte) int {
	var e struct {
		Error struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code >= 400 {
		return e.Error.Code
	}
	return http.StatusInternalServerError
}

// report tells keyd how an attempt went and publishes an error event for a
// failed one.
func (rl *Relay) report(req *Request, key Key, v outcome.Verdict, body []byte, secret string, attempt int, rec *events.Record, withBody bool) {
	class, status := v.Class, v.Status
	rl.keys.Report(bus.Report{ID: key.ID, Model: req.Model, Class: string(class), Status: status, RetryDelay: v.RetryDelay.Milliseconds(), Reason: v.Reason})
	if class == outcome.Success || class == outcome.Canceled || rl.errs == nil {
		return
	}
	et := req.ErrorType
	if et == "" {
		et = req.Route
	}
	ev := &bus.ErrorEvent{
		V: bus.Version, ID: events.NewID(), RequestID: rec.ID, Time: time.Now().UTC(),
		Route: req.Route, Model: req.Model, KeyID: key.ID, KeyHint: key.Hint,
		Attempt: attempt, Class: string(class), UpstreamStatus: status, ErrorType: et,
	}
	// Mask first, cut after: a cut must never leave half a secret behind.
	secrets := append(rec.CallerTokens(), secret)
	ev.Message = redact.Truncate(ErrorMessage(redact.Body(body, secrets...)), 4096, secrets...)
	if withBody && len(req.Body) > 0 {
		ev.RequestBody = redact.Truncate(string(req.Body), 64<<10, secrets...)
	}
	rl.errs.Error(ev)
}

// Scrub masks an upstream error body before it is relayed or stored: every
// key shape, the key of the attempt, the client tokens the gateway knows and
// the ones the caller presented (redact.Body). Only failed answers pay for it.
func Scrub(ctx context.Context, body []byte, secret string) []byte {
	return redact.Body(body, append(events.From(ctx).CallerTokens(), secret)...)
}

// QueryWithoutKey is a client's raw query minus its credential (?key=), for
// Request.Query: the client token never goes upstream.
func QueryWithoutKey(raw string) string {
	if raw == "" || !strings.Contains(raw, "key=") {
		return raw
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return ""
	}
	q.Del("key")
	return q.Encode()
}
