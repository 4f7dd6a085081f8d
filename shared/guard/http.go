package guard

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// The limits every service's HTTP server applies. No WriteTimeout and no
// whole-request ReadTimeout: either would cut a long streaming answer. A
// body is bounded instead by BodyStallTimeout (per read, so a large upload
// on a slow link goes through, but a body that stops flowing does not hold
// its goroutine forever) and by each route's size cap.
const (
	// ReadHeaderTimeout cuts a client that trickles its request headers
	// (slowloris).
	ReadHeaderTimeout = 10 * time.Second
	// IdleTimeout closes a keep-alive connection with no request.
	IdleTimeout = 120 * time.Second
	// BodyStallTimeout ends a request whose body sends no byte for this long.
	BodyStallTimeout = 20 * time.Second
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes = 64 << 10
)

// Server returns an HTTP server for h with the limits above.
func Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           StallTimeout(h, BodyStallTimeout),
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// StallTimeout puts a read deadline d ahead of every body read of the
// requests h serves and lifts it once the body is read to its end: a body
// that stops flowing ends its request (408, see ReadBody), while the answer
// (a stream of any length) is never under a deadline.
func StallTimeout(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if rc.SetReadDeadline(time.Now().Add(d)) != nil {
			h.ServeHTTP(w, r) // the connection cannot take deadlines (HTTP/2 in tests)
			return
		}
		r.Body = &stallBody{ReadCloser: r.Body, rc: rc, d: d, set: time.Now()}
		h.ServeHTTP(w, r)
	})
}

type stallBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	d    time.Duration
	set  time.Time // when the deadline was last moved
	done bool
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case b.done:
	case err == io.EOF:
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil:
		// Leave the deadline: the server drains an unread body after the
		// handler, and that must not wait on a stalled client either.
		b.done = true
	case n > 0:
		// Moving the deadline at most every second keeps a fast body from
		// resetting a timer per read; the stall bound stays within 1 s of d.
		if now := time.Now(); now.Sub(b.set) >= time.Second {
			b.set = now
			_ = b.rc.SetReadDeadline(now.Add(b.d))
		}
	}
	return n, err
}

// BodyError is a request body that could not be read whole; Status is the
// answer it deserves (413 too large, 408 stalled, 400 otherwise).
type BodyError struct {
	Status int
	Msg    string
}

func (e *BodyError) Error() string { return e.Msg }

// ReadBody reads r's body, at most limit bytes. A declared Content-Length
// over the limit is refused before a byte is read.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *BodyError) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	if r.Body == nil {
		return nil, nil
	}
	// Sized from Content-Length up to 1 MiB: a declared length alone must
	// not make the server allocate the whole cap.
	buf := make([]byte, 0, max(min(r.ContentLength, 1<<20)+1, 512))
	body, err := readAll(http.MaxBytesReader(w, r.Body, limit), buf)
	if err != nil {
		return nil, ReadError(err, limit)
	}
	return body, nil
}

// ReadError classifies an error from reading a request body.
func ReadError(err error, limit int64) *BodyError {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return tooLarge(limit)
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &BodyError{Status: http.StatusRequestTimeout, Msg: "request body stalled: no data for " + BodyStallTimeout.String()}
	}
	return &BodyError{Status: http.StatusBadRequest, Msg: "request body unreadable: " + err.Error()}
}

func tooLarge(limit int64) *BodyError {
	return &BodyError{Status: http.StatusRequestEntityTooLarge, Msg: "request body larger than " + strconv.FormatInt(limit, 10) + " bytes"}
}

// readAll is io.ReadAll into a buffer sized ahead.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				return b, nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}
