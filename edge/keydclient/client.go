// Package keydclient is edge's client of keyd: it acquires an upstream key for an
// attempt and reports how the attempt went, over NATS request-reply. keyd may
// run as several replicas in one queue group; a request that times out or
// finds no responder is retried, so a replica restart costs a retry, not a
// failed client request.
package keydclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	json "github.com/goccy/go-json"

	"github.com/nats-io/nats.go"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/outcome"
)

// Options tune the client. Zero values take the defaults.
type Options struct {
	// TryTimeout bounds one request to keyd (default 2s).
	TryTimeout time.Duration
	// Tries is how many times a request is sent before giving up (default 3).
	Tries  int
	Logger *slog.Logger
}

// Client talks to keyd. It is safe for concurrent use.
type Client struct {
	nc  *nats.Conn
	opt Options
	log *slog.Logger
}

// New returns a keyd client on nc.
func New(nc *nats.Conn, o Options) *Client {
	if o.TryTimeout <= 0 {
		o.TryTimeout = 2 * time.Second
	}
	if o.Tries <= 0 {
		o.Tries = 3
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Client{nc: nc, opt: o, log: o.Logger}
}

// ErrUnavailable means no keyd replica answered.
var ErrUnavailable = errors.New("keyd unavailable")

// ServiceError is an error keyd answered with (a micro service error header,
// or the error field of a reply).
type ServiceError struct {
	Code    string
	Message string
}

func (e *ServiceError) Error() string { return "keyd: " + e.Code + " " + e.Message }

// Is lets errors.Is(err, bus.ErrNotFound) see a keyd "not found" answer.
func (e *ServiceError) Is(target error) bool {
	return target == bus.ErrNotFound && (e.Code == "404" || e.Code == "not_found")
}

// Acquire asks keyd for a key. A reply without a key (NoKey set) is not an
// error: it says why no key is usable.
func (c *Client) Acquire(ctx context.Context, req bus.AcquireRequest) (bus.AcquireReply, error) {
	var rep bus.AcquireReply
	data, err := c.request(ctx, bus.SubjectKeyAcquire, req)
	if err == nil {
		err = json.Unmarshal(data, &rep)
	}
	if err != nil {
		return rep, fmt.Errorf("acquire %s key for %s: %w", req.Kind, req.Model, err)
	}
	if rep.Failed() {
		return rep, fmt.Errorf("acquire %s key for %s: %w", req.Kind, req.Model, &ServiceError{Code: "error", Message: rep.Error})
	}
	return rep, nil
}

// reportWait bounds how long a failure report waits for keyd's ack.
const reportWait = time.Second

// Report tells keyd how an attempt went. A report that leaves the key as it
// is (a success, a client error) is published and not waited for. One that
// disables, cools or strikes the key waits for keyd's ack, up to reportWait:
// keyd serves acquires and reports on separate subscriptions, so an
// unacknowledged report can be overtaken by the client's next request, which
// would then get the key the gateway has just seen fail. A slow or absent
// keyd costs a failing request at most reportWait; a lost report costs one
// key's bookkeeping, never a client request.
func (c *Client) Report(r bus.Report) {
	data, err := json.Marshal(r)
	if err == nil {
		switch outcome.Class(r.Class).Effect() {
		case outcome.EffectDisable, outcome.EffectCooldown, outcome.EffectSoftFail:
			_, err = c.nc.Request(bus.SubjectKeyReport, data, reportWait)
		default:
			err = c.nc.Publish(bus.SubjectKeyReport, data)
		}
	}
	if err != nil {
		c.log.Warn("report to keyd failed", "key_id", r.ID, "class", r.Class, "err", err)
	}
}

// BindFile records (or updates) which key holds a file or a pending upload.
func (c *Client) BindFile(ctx context.Context, b bus.FileBinding) error {
	return c.call(ctx, bus.SubjectFileBind, b, nil)
}

// LookupFile finds a binding by name or upload id; errors.Is(err, bus.ErrNotFound)
// when keyd has none.
func (c *Client) LookupFile(ctx context.Context, q keyapi.FileQuery) (bus.FileBinding, error) {
	var r keyapi.FileReply
	if err := c.call(ctx, bus.SubjectFileLookup, q, &r); err != nil {
		return bus.FileBinding{}, err
	}
	if r.File == nil {
		return bus.FileBinding{}, &ServiceError{Code: "404", Message: "no binding"}
	}
	return *r.File, nil
}

// ListFiles lists the finished files of a client token (every token's when
// TokenID is empty or isolation is off).
func (c *Client) ListFiles(ctx context.Context, q keyapi.FileQuery) ([]bus.FileBinding, error) {
	var r keyapi.FileListReply
	err := c.call(ctx, bus.SubjectFileList, keyapi.FileListRequest{TokenID: q.TokenID, Limit: 1000}, &r)
	return r.Files, err
}

// ListBindings lists bindings as req asks: one name prefix (a resource
// kind), one token's own (Owned), newest first.
func (c *Client) ListBindings(ctx context.Context, req keyapi.FileListRequest) ([]bus.FileBinding, error) {
	var r keyapi.FileListReply
	err := c.call(ctx, bus.SubjectFileList, req, &r)
	return r.Files, err
}

// DeleteFile forgets a binding.
func (c *Client) DeleteFile(ctx context.Context, q keyapi.FileQuery) error {
	return c.call(ctx, bus.SubjectFileDelete, q, nil)
}

// call sends v to subject and decodes the reply into out (when not nil); an
// {"error": ...} reply becomes a ServiceError.
func (c *Client) call(ctx context.Context, subject string, v, out any) error {
	data, err := c.request(ctx, subject, v)
	if err != nil {
		return err
	}
	if err := replyError(data); err != nil {
		return err
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s: decode reply: %w", subject, err)
		}
	}
	return nil
}

// request sends v to subject and returns the reply payload, retrying on
// timeouts and missing responders (another keyd replica may answer).
func (c *Client) request(ctx context.Context, subject string, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var last error
	for try := 0; try < c.opt.Tries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return nil, errors.Join(last, ctx.Err())
			case <-time.After(time.Duration(try) * 50 * time.Millisecond):
			}
		}
		tctx, cancel := context.WithTimeout(ctx, c.opt.TryTimeout)
		msg, err := c.nc.RequestWithContext(tctx, subject, data)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			last = err
			if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				continue
			}
			return nil, fmt.Errorf("%s: %w", subject, err)
		}
		if code := msg.Header.Get("Nats-Service-Error-Code"); code != "" {
			return nil, &ServiceError{Code: code, Message: msg.Header.Get("Nats-Service-Error")}
		}
		return msg.Data, nil
	}
	return nil, fmt.Errorf("%s: %w: %v", subject, ErrUnavailable, last)
}

// replyError reads an {"error": "..."} field some endpoints answer with.
func replyError(data []byte) error {
	if len(data) == 0 || !bytes.Contains(data, []byte(`"error"`)) {
		return nil
	}
	var e struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		return nil
	}
	if e.Code == "" {
		e.Code = "error"
		if e.Error == "not_found" || e.Error == "not found" {
			e.Code = "404"
		}
	}
	return &ServiceError{Code: e.Code, Message: e.Error}
}
