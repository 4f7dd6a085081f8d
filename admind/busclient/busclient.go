// Package busclient calls keyd's and logd's NATS request-reply endpoints for
// admind: it encodes the request, bounds the wait, and turns the NATS and
// micro-service failure modes into two error types the HTTP layer maps onto
// status codes (unavailable → 503, answered with an error → its code).
package busclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Client calls one service (keyd or logd).
type Client struct {
	nc      *nats.Conn
	service string
	timeout time.Duration
}

// New returns a client for service whose calls wait at most timeout.
func New(nc *nats.Conn, service string, timeout time.Duration) *Client {
	return &Client{nc: nc, service: service, timeout: timeout}
}

// Service is the name the client calls, for messages.
func (c *Client) Service() string { return c.service }

// UnavailableError means nobody answered: no replica is running, or none
// answered in time.
type UnavailableError struct {
	Service string
	Subject string
	Timeout time.Duration
	Err     error
}

func (e *UnavailableError) Error() string {
	if errors.Is(e.Err, nats.ErrNoResponders) {
		return fmt.Sprintf("%s is not running (no replica answers %s)", e.Service, e.Subject)
	}
	return fmt.Sprintf("%s did not answer %s within %s: %v", e.Service, e.Subject, e.Timeout, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// ServiceError is a failure the service answered with (micro error headers):
// Code is an HTTP-like status (400 bad request, 404 not found, 500 otherwise).
type ServiceError struct {
	Service string
	Code    int
	Msg     string
}

func (e *ServiceError) Error() string { return e.Service + ": " + e.Msg }

// Call sends req as JSON on subject and decodes the answer into out (which
// may be nil). The wait ends at the client's timeout or when ctx ends.
func (c *Client) Call(ctx context.Context, subject string, req, out any) error {
	return c.CallTimeout(ctx, subject, req, out, c.timeout)
}

// CallTimeout is Call with its own bound, for slow calls such as a live
// verification of many keys.
func (c *Client) CallTimeout(ctx context.Context, subject string, req, out any, timeout time.Duration) error {
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", subject, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := c.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		return &UnavailableError{Service: c.service, Subject: subject, Timeout: timeout, Err: err}
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		n, convErr := strconv.Atoi(code)
		if convErr != nil {
			n = 500
		}
		text := msg.Header.Get(micro.ErrorHeader)
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(msg.Data, &body) == nil && body.Error != "" {
			text = body.Error
		}
		return &ServiceError{Service: c.service, Code: n, Msg: text}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		return fmt.Errorf("decode %s reply from %s: %w", subject, c.service, err)
	}
	return nil
}
