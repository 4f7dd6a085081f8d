// Package endpoints serves logd's queries as the NATS micro service "logd"
// (group gb.logd), so `nats micro ls/info/stats` shows it. Subjects are the
// bus.SubjectLog* constants, payloads are in package logapi:
//
//	gb.logd.requests.list    logapi.RequestLogQuery → logapi.RequestLogPage
//	gb.logd.errors.list      logapi.ErrorLogQuery   → logapi.ErrorLogPage
//	gb.logd.errors.get       logapi.ErrorLogGet     → logapi.ErrorLog
//	gb.logd.errors.delete    logapi.ErrorLogDelete  → logapi.DeleteReply
//	gb.logd.stats.overview   logapi.OverviewQuery   → logapi.Overview
//	gb.logd.stats.series     logapi.SeriesQuery     → logapi.Series
//	gb.logd.stats.attention  logapi.AttentionQuery  → logapi.Attention
//	gb.logd.stats.keyusage   logapi.KeyUsageQuery   → logapi.KeyUsage
//	gb.logd.retention.run    {}                     → logapi.RetentionReply
//	gb.logd.requests.delete  logapi.RequestLogDelete → logapi.DeleteReply
//	gb.logd.stats.tokens     logapi.TokenUsageQuery → logapi.TokenUsageReply
//
// A failure carries the micro error headers (code 400, 404 or 500) and the
// body {"error": "..."}.
package endpoints

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/logapi"
)

// Version is the micro service version.
const Version = "1.0.0"

// Queries is what the endpoints read and change (logstore.Store).
type Queries interface {
	RequestLogs(context.Context, logapi.RequestLogQuery) (logapi.RequestLogPage, error)
	ErrorLogs(context.Context, logapi.ErrorLogQuery) (logapi.ErrorLogPage, error)
	ErrorLog(context.Context, string) (logapi.ErrorLog, error)
	DeleteErrorLogs(context.Context, logapi.ErrorLogDelete) (int64, error)
	Overview(context.Context, logapi.OverviewQuery) (logapi.Overview, error)
	Series(context.Context, logapi.SeriesQuery) (logapi.Series, error)
	Attention(context.Context, logapi.AttentionQuery) (logapi.Attention, error)
	KeyUsage(context.Context, logapi.KeyUsageQuery) (logapi.KeyUsage, error)
	TokenUsage(context.Context, logapi.TokenUsageQuery) (logapi.TokenUsageReply, error)
	DeleteRequestLogs(context.Context, logapi.RequestLogDelete) (int64, error)
}

// Retainer runs a retention pass now.
type Retainer func(context.Context) (logapi.RetentionReply, error)

// Timeout bounds one query.
const Timeout = 30 * time.Second

// Register adds the logd micro service to nc. Stop it with Service.Stop.
func Register(nc *nats.Conn, q Queries, retain Retainer, log *slog.Logger) (micro.Service, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        bus.LogdService,
		Version:     Version,
		Description: "request and error logs, statistics and retention",
	})
	if err != nil {
		return nil, fmt.Errorf("add micro service %s: %w", bus.LogdService, err)
	}
	add := func(subject string, h micro.HandlerFunc) error {
		// Endpoint names may not contain dots: requests.list → requests_list.
		name := strings.ReplaceAll(subject[len(bus.LogdPrefix)+1:], ".", "_")
		return svc.AddEndpoint(name, h, micro.WithEndpointSubject(subject))
	}
	eps := []struct {
		subject string
		h       micro.HandlerFunc
	}{
		{bus.SubjectLogRequestsList, handle(log, q.RequestLogs)},
		{bus.SubjectLogErrorsList, handle(log, q.ErrorLogs)},
		{bus.SubjectLogErrorsGet, handle(log, func(ctx context.Context, in logapi.ErrorLogGet) (logapi.ErrorLog, error) {
			return q.ErrorLog(ctx, in.ID)
		})},
		{bus.SubjectLogErrorsDelete, handle(log, func(ctx context.Context, in logapi.ErrorLogDelete) (logapi.DeleteReply, error) {
			n, err := q.DeleteErrorLogs(ctx, in)
			return logapi.DeleteReply{Deleted: n}, err
		})},
		{bus.SubjectLogOverview, handle(log, q.Overview)},
		{bus.SubjectLogSeries, handle(log, q.Series)},
		{bus.SubjectLogAttention, handle(log, q.Attention)},
		{bus.SubjectLogKeyUsage, handle(log, q.KeyUsage)},
		{bus.SubjectLogTokenUsage, handle(log, q.TokenUsage)},
		{bus.SubjectLogRequestsDelete, handle(log, func(ctx context.Context, in logapi.RequestLogDelete) (logapi.DeleteReply, error) {
			n, err := q.DeleteRequestLogs(ctx, in)
			return logapi.DeleteReply{Deleted: n}, err
		})},
		{bus.SubjectLogRetentionRun, handle(log, func(ctx context.Context, _ struct{}) (logapi.RetentionReply, error) {
			return retain(ctx)
		})},
	}
	for _, e := range eps {
		if err := add(e.subject, e.h); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("add endpoint %s: %w", e.subject, err)
		}
	}
	return svc, nil
}

// handle decodes the request, runs f and encodes its answer or error.
func handle[In, Out any](log *slog.Logger, f func(context.Context, In) (Out, error)) micro.HandlerFunc {
	return func(r micro.Request) {
		var in In
		if data := r.Data(); len(data) > 0 {
			if err := json.Unmarshal(data, &in); err != nil {
				respondError(r, "400", "invalid request JSON: "+err.Error())
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		out, err := f(ctx, in)
		if err != nil {
			var bad *logstore.BadRequestError
			switch {
			case errors.As(err, &bad):
				respondError(r, "400", bad.Msg)
			case errors.Is(err, logstore.ErrNotFound):
				respondError(r, "404", "not found")
			default:
				log.Error("logd query failed", "subject", r.Subject(), "err", err)
				respondError(r, "500", err.Error())
			}
			return
		}
		if err := r.RespondJSON(out); err != nil {
			log.Warn("respond", "subject", r.Subject(), "err", err)
		}
	}
}

func respondError(r micro.Request, code, msg string) {
	body, _ := json.Marshal(logapi.ErrorReply{Error: msg})
	_ = r.Error(code, msg, body)
}
