// Package endpoints serves keyd over NATS as the micro service "keyd", so
// `nats micro info keyd` lists its endpoints and stats. Every endpoint is in
// the default queue group: replicas share the requests.
package endpoints

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
)

// Pool is what the endpoints need from the key pool service.
type Pool interface {
	Acquire(bus.AcquireRequest) bus.AcquireReply
	Report(bus.Report)

	List(keyapi.ListRequest) keyapi.ListReply
	Get(keyapi.GetRequest) keyapi.GetReply
	Add(context.Context, keyapi.AddRequest) keyapi.AddReply
	Delete(context.Context, keyapi.Selection) keyapi.ChangeReply
	Reset(context.Context, keyapi.Selection) keyapi.ChangeReply
	Enable(context.Context, keyapi.Selection) keyapi.ChangeReply
	Disable(context.Context, keyapi.Selection) keyapi.ChangeReply
	Verify(context.Context, keyapi.Selection) keyapi.VerifyReply
	Update(context.Context, keyapi.UpdateRequest) keyapi.GetReply
	Reveal(keyapi.GetRequest) keyapi.RevealReply
	Export(keyapi.ExportRequest) keyapi.ExportReply
	Models(context.Context, struct{}) keyapi.ModelsReply
	Stats() keyapi.StatsReply

	BindFile(context.Context, bus.FileBinding) keyapi.OKReply
	LookupFile(context.Context, keyapi.FileQuery) keyapi.FileReply
	ListFiles(context.Context, keyapi.FileListRequest) keyapi.FileListReply
	DeleteFile(context.Context, keyapi.FileQuery) keyapi.OKReply
}

// Options describe the service instance.
type Options struct {
	Version string
	Replica string
	// Timeout bounds the database work of one admin or file request.
	Timeout time.Duration
	// MaxInFlight bounds the admin and file requests handled at once (each
	// on its own goroutine); 0 means MaxInFlight.
	MaxInFlight int
}

// MaxInFlight is how many admin and file requests one replica handles at
// once. Beyond it a request is answered at once with service error 503 (a
// clear "busy", never a queue of goroutines): a verification fan-out uses at
// most recovery's 8 goroutines per request, so keyd's own goroutines stay
// bounded by about MaxInFlight×9.
const MaxInFlight = 256

// Register adds the keyd micro service to nc. Stop the returned service on
// shutdown; in-flight requests finish first.
func Register(ctx context.Context, nc *nats.Conn, p Pool, o Options) (micro.Service, error) {
	if o.Version == "" {
		o.Version = "0.1.0"
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        bus.KeydService,
		Version:     o.Version,
		Description: "Gemini Balance key pool: acquire, report, admin and file bindings",
		Metadata:    map[string]string{"replica": o.Replica},
	})
	if err != nil {
		return nil, err
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = MaxInFlight
	}
	// Acquire and report are O(1) and answered inline; the rest may touch
	// MongoDB or upstream, so each runs on its own goroutine and does not
	// hold up the next request on the same subscription, up to MaxInFlight.
	inflight := make(chan struct{}, o.MaxInFlight)
	busy := fmt.Sprintf("keyd is busy: %d admin and file requests in flight on this replica; retry shortly", o.MaxInFlight)
	slow := func(f func(context.Context, []byte) any) micro.Handler {
		return micro.HandlerFunc(func(r micro.Request) {
			select {
			case inflight <- struct{}{}:
			default:
				_ = r.Error("503", busy, nil)
				return
			}
			go func() {
				defer func() { <-inflight }()
				c, cancel := context.WithTimeout(ctx, o.Timeout)
				defer cancel()
				respond(r, f(c, r.Data()))
			}()
		})
	}
	eps := []struct {
		name, subject string
		h             micro.Handler
	}{
		{"acquire", bus.SubjectKeyAcquire, micro.HandlerFunc(func(r micro.Request) {
			var req bus.AcquireRequest
			if err := unmarshalHot(r.Data(), &req); err != nil {
				respond(r, bus.AcquireReply{Error: "bad acquire request: " + err.Error()})
				return
			}
			respondHot(r, p.Acquire(req))
		})},
		{"report", bus.SubjectKeyReport, micro.HandlerFunc(func(r micro.Request) {
			var rep bus.Report
			if err := unmarshalHot(r.Data(), &rep); err == nil {
				p.Report(rep)
			}
			if r.Reply() != "" { // fire-and-forget callers send no reply subject
				_ = r.Respond(nil)
			}
		})},
		{"admin-list", bus.SubjectKeyList, fast(func(req keyapi.ListRequest) any { return p.List(req) })},
		{"admin-get", bus.SubjectKeyGet, fast(func(req keyapi.GetRequest) any { return p.Get(req) })},
		{"admin-reveal", bus.SubjectKeyReveal, fast(func(req keyapi.GetRequest) any { return p.Reveal(req) })},
		{"admin-export", bus.SubjectKeyExport, fast(func(req keyapi.ExportRequest) any { return p.Export(req) })},
		{"admin-models", bus.SubjectKeyModels, slow(decode(p.Models))},
		{"admin-stats", bus.SubjectKeyStats, micro.HandlerFunc(func(r micro.Request) { respond(r, p.Stats()) })},
		{"admin-add", bus.SubjectKeyAdd, slow(decode(p.Add))},
		{"admin-delete", bus.SubjectKeyDelete, slow(decode(p.Delete))},
		{"admin-reset", bus.SubjectKeyReset, slow(decode(p.Reset))},
		{"admin-enable", bus.SubjectKeyEnable, slow(decode(p.Enable))},
		{"admin-disable", bus.SubjectKeyDisable, slow(decode(p.Disable))},
		{"admin-verify", bus.SubjectKeyVerify, slow(decode(p.Verify))},
		{"admin-update", bus.SubjectKeyUpdate, slow(decode(p.Update))},
		{"files-bind", bus.SubjectFileBind, slow(decode(p.BindFile))},
		{"files-lookup", bus.SubjectFileLookup, slow(decode(p.LookupFile))},
		{"files-list", bus.SubjectFileList, slow(decode(p.ListFiles))},
		{"files-delete", bus.SubjectFileDelete, slow(decode(p.DeleteFile))},
	}
	for _, e := range eps {
		if err := svc.AddEndpoint(e.name, e.h, micro.WithEndpointSubject(e.subject)); err != nil {
			_ = svc.Stop()
			return nil, err
		}
	}
	return svc, nil
}

func fast[Req any](f func(Req) any) micro.Handler {
	return micro.HandlerFunc(func(r micro.Request) {
		var req Req
		if len(r.Data()) > 0 {
			if err := json.Unmarshal(r.Data(), &req); err != nil {
				_ = r.Error("400", "bad request: "+err.Error(), nil)
				return
			}
		}
		respond(r, f(req))
	})
}

// decode adapts a typed handler to raw request bytes.
func decode[Req, Rep any](f func(context.Context, Req) Rep) func(context.Context, []byte) any {
	return func(ctx context.Context, data []byte) any {
		var req Req
		if len(data) > 0 {
			if err := json.Unmarshal(data, &req); err != nil {
				return map[string]string{"error": "bad request: " + err.Error()}
			}
		}
		return f(ctx, req)
	}
}

func respond(r micro.Request, v any) {
	if r.Reply() == "" {
		return
	}
	if err := r.RespondJSON(v); err != nil {
		_ = r.Error("500", "encode reply: "+err.Error(), nil)
	}
}

// Acquire and report run once or twice for every client request, and
// encoding/json's reflection was most of keyd's CPU for them (go run
// ./deployments/bench -profile). goccy/go-json reads and writes the same
// JSON for these types (TestHotCodecMatchesEncodingJSON); a body it refuses
// goes to encoding/json, so a bad request gets the same answer and text.

func unmarshalHot[T any](data []byte, v *T) error {
	if gojson.Unmarshal(data, v) == nil {
		return nil
	}
	var zero T
	*v = zero // nothing goccy half-read survives
	return json.Unmarshal(data, v)
}

func respondHot(r micro.Request, rep bus.AcquireReply) {
	if r.Reply() == "" {
		return
	}
	data, err := gojson.Marshal(rep)
	if err != nil {
		respond(r, rep)
		return
	}
	if err := r.Respond(data); err != nil {
		_ = r.Error("500", "encode reply: "+err.Error(), nil)
	}
}
