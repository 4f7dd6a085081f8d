package events

import (
	"context"
	"time"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/redact"
)

// Record is the request event being built while a client request runs. The
// gateway creates it, handlers and the relay fill it in, and the gateway
// publishes it when the handler returns. It is used by one goroutine at a
// time (the request's), so it has no lock.
type Record struct {
	bus.RequestEvent
	Start time.Time
	// Failed marks a request that failed after its status was sent (a
	// stream that broke midway): the event then says success=false.
	Failed bool

	callerTokens func() []string
}

// SetCallerTokens tells how to find the credentials the client presented,
// so that an upstream answer echoing them can be scrubbed. It is called only
// when something is scrubbed, so the success path pays nothing.
func (r *Record) SetCallerTokens(f func() []string) { r.callerTokens = f }

// CallerTokens returns the credentials the client presented, if known.
func (r *Record) CallerTokens() []string {
	if r.callerTokens == nil {
		return nil
	}
	return r.callerTokens()
}

type recordKey struct{}

// NewRecord starts a request event.
func NewRecord(method, path, replica string) *Record {
	now := time.Now()
	return &Record{
		RequestEvent: bus.RequestEvent{
			V:       bus.Version,
			ID:      NewID(),
			Time:    now.UTC(),
			Method:  method,
			Path:    path,
			Replica: replica,
		},
		Start: now,
	}
}

// WithRecord returns ctx carrying rec.
func WithRecord(ctx context.Context, rec *Record) context.Context {
	return context.WithValue(ctx, recordKey{}, rec)
}

// From returns the record of the request ctx belongs to. A request without
// one (a test calling the relay directly) gets a fresh record that nobody
// publishes, so callers never need a nil check.
func From(ctx context.Context) *Record {
	if rec, ok := ctx.Value(recordKey{}).(*Record); ok {
		return rec
	}
	return NewRecord("", "", "")
}

// Finish stamps the client-visible status and the latency.
func (r *Record) Finish(status int) *bus.RequestEvent {
	r.Status = status
	r.Success = status > 0 && status < 400 && !r.Failed
	if r.ClientError != "" {
		r.ClientError = redact.Truncate(r.ClientError, 4096, r.CallerTokens()...)
	}
	// Client-chosen text (a path or model name pasted with a key in it);
	// without a trace of a secret this is a few substring checks.
	r.Path, r.Model = redact.Text(r.Path), redact.Text(r.Model)
	r.LatencyMS = float64(time.Since(r.Start).Microseconds()) / 1000
	return &r.RequestEvent
}

// MarkFirstByte records the time to first byte once.
func (r *Record) MarkFirstByte() {
	if r.TTFBMS == 0 {
		r.TTFBMS = float64(time.Since(r.Start).Microseconds()) / 1000
	}
}
