package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gemini-balance-go/edge/events"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/guard"
	"github.com/gemini-balance-go/shared/outcome"
)

// StreamError ends a stream after its first byte. The stream is never
// restarted on another key: the caller ends its answer with an error event
// (ErrorTail for Gemini framing) and text already sent is not repeated.
type StreamError struct {
	Status  int
	Class   outcome.Class
	Message string
	Body    []byte // Gemini error JSON: upstream's own error event, or one made here
}

func (e *StreamError) Error() string { return "stream failed: " + e.Message }

// Stream is an upstream stream committed to the client. It is used by one
// goroutine. Close must be called (Pump does); it reports the outcome to keyd.
type Stream struct {
	rl       *Relay
	req      *Request
	key      Key
	secret   string
	ctx      context.Context
	res      *http.Response
	timer    *time.Timer
	timeout  time.Duration
	timedOut *atomic.Bool
	cancel   context.CancelFunc
	sse      bool
	rec      *events.Record
	f        *framer

	first      Event
	firstSent  bool
	gotContent bool
	usage      []byte
	ended      bool
	failed     *StreamError
	closed     bool
}

// Header returns upstream's response headers.
func (s *Stream) Header() http.Header { return s.res.Header }

// SSE reports whether upstream framed the stream as SSE (else a JSON array).
func (s *Stream) SSE() bool { return s.sse }

// Key is the key serving this stream.
func (s *Stream) Key() Key { return s.key }

// Next returns the next event; io.EOF at the clean end; a *StreamError when
// the stream failed midway (upstream error event, broken connection, idle
// longer than TIME_OUT).
func (s *Stream) Next() (Event, error) {
	if !s.firstSent {
		s.firstSent = true
		return s.first, nil
	}
	if s.failed != nil {
		return Event{}, s.failed
	}
	if s.ended {
		return Event{}, io.EOF
	}
	ev, err := s.f.next()
	if err == io.EOF {
		s.ended = true
		return Event{}, io.EOF
	}
	if err != nil {
		class, status, msg := s.failure(err)
		s.failed = &StreamError{Status: status, Class: class, Message: msg, Body: ErrorBody(status, msg)}
		return Event{}, s.failed
	}
	if ev.Data != nil && isErrorEvent(ev.Data) {
		body := append([]byte(nil), ev.Data...)
		v := outcome.Classify(errorCode(body), body)
		body = Scrub(s.ctx, body, s.secret)
		s.failed = &StreamError{Status: v.Status, Class: v.Class, Message: ErrorMessage(body), Body: body}
		return Event{}, s.failed
	}
	s.observe(ev)
	return ev, nil
}

// Ready reports whether Next would return without waiting for upstream
// (the event last returned must be written by then, see framer.ready).
func (s *Stream) Ready() bool {
	return !s.firstSent || s.failed != nil || s.ended || s.f.ready()
}

// ErrorTail returns the bytes that end the stream with err in upstream's
// framing: an SSE data event, or a last array element and the closing "]".
func (s *Stream) ErrorTail(err error) []byte {
	var se *StreamError
	if !errors.As(err, &se) {
		se = &StreamError{Body: ErrorBody(http.StatusBadGateway, err.Error())}
	}
	var b bytes.Buffer
	if s.sse {
		b.WriteString("data: ")
		b.Write(se.Body)
		if s.f.crlf {
			b.WriteString("\r\n\r\n")
		} else {
			b.WriteString("\n\n")
		}
		return b.Bytes()
	}
	if s.f.closed {
		return nil
	}
	b.WriteString(",\r\n")
	b.Write(se.Body)
	b.WriteString("\r\n]")
	return b.Bytes()
}

// Close ends the stream, cancels upstream if it is still running and reports
// the outcome to keyd. It is safe to call more than once.
func (s *Stream) Close() {
	if s.closed {
		return
	}
	s.closed = true
	v := outcome.Verdict{Class: outcome.Success, Status: s.res.StatusCode}
	var body []byte
	switch {
	case s.failed != nil:
		v.Class, v.Status, body = s.failed.Class, s.failed.Status, s.failed.Body
		if s.failed.Class == outcome.RateLimited {
			v = outcome.Classify(s.failed.Status, s.failed.Body)
		}
	case s.ctx.Err() != nil || !s.ended:
		v.Class, v.Status = outcome.Canceled, 499
	case s.req.CheckEmpty && !s.gotContent:
		v.Class, v.Status = outcome.Empty, http.StatusBadGateway
		body = ErrorBody(v.Status, "upstream stream carried no content")
	}
	s.release()
	if len(s.usage) > 0 {
		s.rec.Usage = usageOf(s.usage)
	}
	s.rec.Class = string(v.Class)
	st := s.rl.settings.Get()
	s.rl.report(s.req, s.key, v, body, s.secret, s.rec.Attempts, s.rec, st.ErrorLogRecordRequestBody)
}

func (s *Stream) release() {
	s.timer.Stop()
	s.cancel()
	_ = s.res.Body.Close()
}

// touch pushes the idle deadline back after each upstream read.
func (s *Stream) touch() { s.timer.Reset(s.timeout) }

func (s *Stream) observe(ev Event) {
	if ev.Data == nil {
		return
	}
	if !s.gotContent && hasContent(ev.Data) {
		s.gotContent = true
	}
	// usageMetadata is cumulative: the last one seen holds the totals.
	if bytes.Contains(ev.Data, []byte(`"usageMetadata"`)) {
		s.usage = append(s.usage[:0], ev.Data...)
	}
}

func (s *Stream) failure(err error) (outcome.Class, int, string) {
	switch {
	case s.ctx.Err() != nil:
		return outcome.Canceled, 499, "client closed the request"
	case s.timedOut.Load():
		return outcome.Timeout, http.StatusGatewayTimeout, "upstream stream stalled longer than TIME_OUT"
	case errors.Is(err, errTruncated):
		return outcome.ConnError, http.StatusBadGateway, "upstream stream ended inside an event"
	default:
		return outcome.ConnError, http.StatusBadGateway, "upstream stream failed"
	}
}

// usageOf reads usageMetadata from a GenerateContentResponse without parsing
// the rest of it. Every successful request pays for it, so the usual shape
// (the five counts as plain integers) is read by usageFields without
// encoding/json's reflection and allocations; anything else goes to
// encoding/json, whose answer is the reference.
func usageOf(data []byte) bus.Usage {
	i := bytes.Index(data, []byte(`"usageMetadata"`))
	if i < 0 {
		return bus.Usage{}
	}
	rest := data[i+len(`"usageMetadata"`):]
	j := bytes.IndexByte(rest, '{')
	if j < 0 {
		return bus.Usage{}
	}
	obj := objectAt(rest[j:])
	if obj == nil {
		return bus.Usage{}
	}
	if !guard.Valid(obj) {
		return usageSlow(obj)
	}
	if u, ok := usageFields(obj); ok {
		return u
	}
	return usageSlow(obj)
}

// usageSlow decodes a usage object with encoding/json: an invalid object or
// a count that is not an int gives no usage at all.
func usageSlow(obj []byte) bus.Usage {
	var u struct {
		Prompt     int `json:"promptTokenCount"`
		Candidates int `json:"candidatesTokenCount"`
		Thoughts   int `json:"thoughtsTokenCount"`
		Cached     int `json:"cachedContentTokenCount"`
		Total      int `json:"totalTokenCount"`
	}
	if err := json.Unmarshal(obj, &u); err != nil {
		return bus.Usage{}
	}
	return bus.Usage{Prompt: u.Prompt, Candidates: u.Candidates, Thoughts: u.Thoughts, Cached: u.Cached, Total: u.Total}
}

// usageFields reads the counts of a valid JSON object (guard.Valid) when
// each of them is a plain integer or null and every key is spelled plainly;
// ok is false for anything else (an escaped or differently cased key, a
// fraction, an overflow), which usageSlow then judges as encoding/json does.
func usageFields(obj []byte) (u bus.Usage, ok bool) {
	i := 1 // past '{'
	for {
		i = skipWS(obj, i)
		if obj[i] == '}' {
			return u, true
		}
		if obj[i] == ',' {
			i = skipWS(obj, i+1)
		}
		// A key: valid JSON guarantees the closing quote.
		k := i + 1
		e := bytes.IndexByte(obj[k:], '"') + k
		key := obj[k:e]
		if bytes.IndexByte(key, '\\') >= 0 {
			return u, false
		}
		i = skipWS(obj, e+1) + 1 // past ':'
		i = skipWS(obj, i)
		var dst *int
		switch string(key) {
		case "promptTokenCount":
			dst = &u.Prompt
		case "candidatesTokenCount":
			dst = &u.Candidates
		case "thoughtsTokenCount":
			dst = &u.Thoughts
		case "cachedContentTokenCount":
			dst = &u.Cached
		case "totalTokenCount":
			dst = &u.Total
		default:
			for _, f := range usageKeys {
				if bytes.EqualFold(key, []byte(f)) {
					return u, false // encoding/json matches keys case-insensitively
				}
			}
		}
		end := valueEnd(obj, i)
		if dst != nil {
			v := obj[i:end]
			if string(v) != "null" {
				n, err := strconv.Atoi(string(v))
				if err != nil {
					return u, false
				}
				*dst = n
			}
		}
		i = end
	}
}

var usageKeys = [...]string{"promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "cachedContentTokenCount", "totalTokenCount"}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the valid JSON value at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(b)
	case '{', '[':
		return i + len(objectAt(b[i:]))
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}

// objectAt returns the JSON object starting at b[0] ('{'), or nil when it is
// not closed.
func objectAt(b []byte) []byte {
	depth, inStr, esc := 0, false, false
	for i, c := range b {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return b[:i+1]
			}
		}
	}
	return nil
}
