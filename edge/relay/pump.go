package relay

import (
	"io"
	"net/http"
)

// Encoder is one route's framing of an upstream stream: what the client
// gets for each upstream event, at a clean end and after a failure. The
// Gemini-native routes forward upstream's bytes (Passthrough); the OpenAI
// and Anthropic routes convert each event.
type Encoder interface {
	// Event returns the client's bytes for one upstream event, or none. They
	// are written before the next call, so they may live in a reused buffer
	// or be ev.Raw itself. After an error, bytes returned with it are
	// written before Fail's.
	Event(ev Event) ([]byte, error)
	// End returns the bytes that end a stream upstream ended cleanly.
	End() []byte
	// Fail returns the bytes that end a stream broken by err after its first
	// byte (a *StreamError, or the error Event returned).
	Fail(err error) []byte
}

// Writer is the client side of a pump: an http.ResponseWriter that can
// flush (gin's and net/http's writers are).
type Writer interface {
	http.ResponseWriter
	http.Flusher
}

// Pump relays a committed upstream stream to the client through enc, in the
// manner of Caddy's reverse proxy: the status line goes out first (headers
// must be set before; from here on there is no failover and no other
// status), what is written is flushed before the pump waits for upstream,
// and a client that goes away ends the pump at once. Pump closes s, which
// cancels upstream and reports the outcome to keyd.
//
// Events that arrived together leave together: a flush per event was a
// write syscall per event where a byte-copying proxy makes one per read of
// upstream, and under a burst of streams those syscalls were most of the
// difference in time to first byte.
//
// It returns the error that broke the stream after its first byte (the
// client got enc.Fail's bytes for it), or nil when upstream ended cleanly
// or the client went away.
func Pump(w Writer, s *Stream, enc Encoder) error {
	defer s.Close()
	w.WriteHeader(http.StatusOK)
	unflushed := false
	for {
		if unflushed && !s.Ready() {
			w.Flush()
			unflushed = false
		}
		ev, err := s.Next()
		if err == io.EOF {
			if b := enc.End(); len(b) > 0 {
				_, _ = w.Write(b)
				unflushed = true
			}
			if unflushed {
				w.Flush()
			}
			return nil
		}
		var out []byte
		if err == nil {
			out, err = enc.Event(ev)
		}
		if err != nil {
			if len(out) > 0 {
				_, _ = w.Write(out)
			}
			_, _ = w.Write(enc.Fail(err))
			w.Flush()
			return err
		}
		if len(out) == 0 {
			continue
		}
		if _, err := w.Write(out); err != nil {
			return nil // client gone; Close cancels upstream
		}
		unflushed = true
	}
}

// SetSSEHeaders sets the headers of an SSE answer made here (converted
// routes): no caching, and no buffering by nginx-style front proxies.
func SetSSEHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
}

// Passthrough forwards upstream's events as upstream framed them and ends
// a broken stream with an error event in the same framing (ErrorTail).
type Passthrough struct{ S *Stream }

// Event implements Encoder: ev.Raw, as is.
func (p Passthrough) Event(ev Event) ([]byte, error) { return ev.Raw, nil }

// End implements Encoder: upstream's own end (the closing "]" of a JSON
// array is already in the last Raw).
func (p Passthrough) End() []byte { return nil }

// Fail implements Encoder with ErrorTail.
func (p Passthrough) Fail(err error) []byte { return p.S.ErrorTail(err) }

// Converter is a stream converter of edge/convert: Gemini chunks in, one
// route's events out, appended to dst.
type Converter interface {
	Feed(dst, data []byte) ([]byte, error)
	Finish(dst []byte) []byte
}

// Convert is the Encoder of a converted route: each event's payload goes
// through conv (into one reused buffer) and fail makes the route's error
// event for a broken stream.
func Convert(conv Converter, fail func(dst []byte, err error) []byte) Encoder {
	return &converted{conv: conv, fail: fail, buf: make([]byte, 0, 4096)}
}

type converted struct {
	conv Converter
	fail func(dst []byte, err error) []byte
	buf  []byte
}

func (e *converted) Event(ev Event) ([]byte, error) {
	if ev.Data == nil {
		return nil, nil
	}
	var err error
	e.buf, err = e.conv.Feed(e.buf[:0], ev.Data)
	return e.buf, err
}

func (e *converted) End() []byte { return e.conv.Finish(e.buf[:0]) }

func (e *converted) Fail(err error) []byte { return e.fail(e.buf[:0], err) }
