package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/redact"
)

// GET /api/live: a Server-Sent Events tail of request events. admind takes
// them from NATS (a core subscription on gb.events.requests, held only while
// someone watches), never from MongoDB, and fans each event of a batch out to
// the connected clients. Each client has a small buffer; a slow reader loses
// events (and is told how many) instead of holding memory.

// Bounds of the live tail; tests shorten liveKeepalive.
var (
	liveBuffer     = 256
	liveMaxClients = 16
	liveKeepalive  = 15 * time.Second
)

var (
	errLiveFull   = errors.New("too many live clients: try again later")
	errLiveClosed = errors.New("admind is shutting down")
)

// liveEvent is one request event, encoded once for every client.
type liveEvent struct {
	log  logapi.RequestLog
	data []byte
}

// liveFilter keeps the events a client asked for; zero fields match all.
type liveFilter struct {
	model, token, key string
	status            int
	success           *bool
}

func (f liveFilter) match(l *logapi.RequestLog) bool {
	return (f.model == "" || l.Model == f.model) && (f.token == "" || l.TokenID == f.token) &&
		(f.key == "" || l.KeyID == f.key) && (f.status == 0 || l.Status == f.status) &&
		(f.success == nil || l.Success == *f.success)
}

type liveClient struct {
	ch      chan liveEvent
	dropped atomic.Int64
	filter  liveFilter
}

// liveHub owns the NATS subscription and the set of clients.
type liveHub struct {
	nc  *nats.Conn
	log *slog.Logger

	mu      sync.Mutex
	clients map[*liveClient]struct{}
	sub     *nats.Subscription
	closed  bool
	done    chan struct{}
	seen    atomic.Int64 // events taken in, for tests
}

func newLiveHub(nc *nats.Conn, log *slog.Logger) *liveHub {
	return &liveHub{nc: nc, log: log, clients: map[*liveClient]struct{}{}, done: make(chan struct{})}
}

// join adds a client, subscribing on the first one.
func (h *liveHub) join(f liveFilter) (*liveClient, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return nil, errLiveClosed
	case len(h.clients) >= liveMaxClients:
		return nil, errLiveFull
	}
	if h.sub == nil {
		sub, err := h.nc.Subscribe(bus.SubjectEventRequests, h.onBatch)
		if err != nil {
			return nil, fmt.Errorf("nats: subscribe %s: %w", bus.SubjectEventRequests, err)
		}
		// The subscription must be live before the client hears "ready".
		if err := h.nc.Flush(); err != nil {
			_ = sub.Unsubscribe()
			return nil, fmt.Errorf("nats: %w", err)
		}
		h.sub = sub
	}
	c := &liveClient{ch: make(chan liveEvent, liveBuffer), filter: f}
	h.clients[c] = struct{}{}
	return c, nil
}

// leave removes a client, unsubscribing after the last one.
func (h *liveHub) leave(c *liveClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
	if len(h.clients) == 0 && h.sub != nil {
		_ = h.sub.Unsubscribe()
		h.sub = nil
	}
}

// close ends every stream (admind is stopping) and refuses new ones.
func (h *liveHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.done)
	if h.sub != nil {
		_ = h.sub.Unsubscribe()
		h.sub = nil
	}
}

// onBatch fans the events of one RequestBatch out. It never blocks: a full
// client buffer drops the event and counts it.
func (h *liveHub) onBatch(m *nats.Msg) {
	var batch bus.RequestBatch
	data, err := bus.DecodeBatch(m.Header.Get(bus.HeaderEncoding), m.Data)
	if err == nil {
		err = json.Unmarshal(data, &batch)
	}
	if err != nil {
		h.log.Debug("live: undecodable request batch", "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen.Add(int64(len(batch.Events)))
	for i := range batch.Events {
		ev := liveEvent{log: liveRow(&batch.Events[i])}
		for c := range h.clients {
			if !c.filter.match(&ev.log) {
				continue
			}
			if ev.data == nil {
				ev.data, _ = json.Marshal(ev.log)
			}
			select {
			case c.ch <- ev:
			default:
				c.dropped.Add(1)
			}
		}
	}
}

// liveRow is an event in the shape of a GET /api/logs/requests row. Events
// carry only ids and masked hints; the path loses its query and the error is
// masked again, in case either ever carries a key.
func liveRow(e *bus.RequestEvent) logapi.RequestLog {
	total := e.Usage.Total
	if total == 0 {
		total = e.Usage.Prompt + e.Usage.Candidates + e.Usage.Thoughts
	}
	path, _, _ := strings.Cut(e.Path, "?")
	return logapi.RequestLog{
		ID: e.ID, Time: e.Time, Route: e.Route, Method: e.Method, Path: redact.Text(path), Model: e.Model,
		Upstream: e.Upstream, Stream: e.Stream, TokenID: e.TokenID, TokenHint: e.TokenHint,
		KeyID: e.KeyID, KeyHint: e.KeyHint, KeyKind: e.KeyKind, Attempts: e.Attempts,
		Status: e.Status, Success: e.Success, Class: e.Class, LatencyMS: e.LatencyMS, TTFBMS: e.TTFBMS,
		Prompt: e.Usage.Prompt, Completion: e.Usage.Candidates, Thoughts: e.Usage.Thoughts, Cached: e.Usage.Cached,
		Tokens: total, Replica: e.Replica, Error: redact.Text(e.ClientError),
	}
}

func liveFilterFrom(c *gin.Context) (liveFilter, error) {
	f := liveFilter{model: c.Query("model"), token: secretID(c.Query("token")), key: secretID(c.Query("key"))}
	var err error
	if f.status, err = intParam(c, "status", 0, 100, 599); err != nil {
		return f, err
	}
	if v := c.Query("success"); v != "" {
		ok, perr := strconv.ParseBool(v)
		if perr != nil {
			return f, fmt.Errorf("success must be true or false")
		}
		f.success = &ok
	}
	return f, nil
}

// live serves GET /api/live.
func (s *Server) live(c *gin.Context) {
	f, err := liveFilterFrom(c)
	if err != nil {
		badRequest(c, "%v", err)
		return
	}
	cl, err := s.liveHub.join(f)
	if err != nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
		return
	}
	defer s.liveHub.leave(cl)

	w := c.Writer
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives any server write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // tell a front proxy not to buffer
	w.WriteHeader(http.StatusOK)
	send := func(format string, a ...any) bool {
		if _, err := fmt.Fprintf(w, format, a...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("retry: 3000\nevent: ready\ndata: {\"max_buffer\":%d}\n\n", liveBuffer) {
		return
	}
	keep := time.NewTicker(liveKeepalive)
	defer keep.Stop()
	ctx := c.Request.Context()
	for {
		var ok bool
		select {
		case <-ctx.Done():
			return
		case <-s.liveHub.done:
			return
		case ev := <-cl.ch:
			ok = sendDropped(cl, send) && send("event: request\ndata: %s\n\n", ev.data)
		case <-keep.C:
			ok = sendDropped(cl, send) && send(": keepalive\n\n")
		}
		if !ok {
			return
		}
	}
}

// sendDropped tells the client how many events it lost since the last frame.
func sendDropped(cl *liveClient, send func(string, ...any) bool) bool {
	if n := cl.dropped.Swap(0); n > 0 {
		return send("event: dropped\ndata: {\"dropped\":%d}\n\n", n)
	}
	return true
}
