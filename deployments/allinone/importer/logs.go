package importer

// The request and error logs: t_request_log and t_error_logs, copied in id
// order into logd's store in batches.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/logd/logstore"
	"github.com/gemini-balance-go/shared/mongox"
	"github.com/gemini-balance-go/shared/redact"
)

// count is a table's row count, for progress; a missing table is empty.
func count(ctx context.Context, src *sql.DB, table string) (int, bool, error) {
	var n int
	err := src.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n)
	if missingTable(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("import: count %s: %w", table, err)
	}
	return n, true, nil
}

// progress prints "label: done/total" after each batch of a table larger
// than one batch.
func progress(o Options, label string, done, total int) {
	if total > o.BatchSize {
		fmt.Fprintf(o.Out, "  %s: %d/%d (%d%%)\n", label, done, total, done*100/total)
	}
}

// importState is an import_state document: how far an import of a table
// got (the last source id written).
type importState struct {
	ID   string `bson:"_id"`
	Last int64  `bson:"last"`
}

// CollImportState holds each imported table's cursor.
const CollImportState = "import_state"

// importRequests copies t_request_log in id order from where the last run
// stopped. logd stores request logs in buckets, one per batch written, and
// de-duplicates a batch written again (the same rows under the same name),
// not a row written again in another batch: so a run resumes after the last
// batch it wrote, and a batch cut short by a crash is written again whole.
func importRequests(ctx context.Context, src *sql.DB, db *mongo.Database, logs *logstore.Store, o Options, res *Result) error {
	total, ok, err := count(ctx, src, "t_request_log")
	if err != nil || !ok {
		fmt.Fprintln(o.Out, "request logs: none (no t_request_log table)")
		return err
	}
	state := db.Collection(CollImportState)
	st := importState{ID: "t_request_log", Last: -1}
	if err := state.FindOne(ctx, bson.M{"_id": st.ID}).Decode(&st); err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("import: read import state: %w", err)
	}
	last, done := st.Last, 0
	if last >= 0 {
		var before int
		if err := src.QueryRowContext(ctx, "SELECT COUNT(*) FROM t_request_log WHERE id <= ?", last).Scan(&before); err != nil {
			return fmt.Errorf("import: count t_request_log: %w", err)
		}
		res.RequestsPresent, done = before, before
	}
	for {
		rows, err := src.QueryContext(ctx, "SELECT id, request_time, model_name, api_key, is_success, status_code, latency_ms FROM t_request_log WHERE id > ? ORDER BY id LIMIT ?", last, o.BatchSize)
		if err != nil {
			return fmt.Errorf("import: read t_request_log: %w", err)
		}
		var batch []logstore.RequestLog
		var first int64
		for rows.Next() {
			var id int64
			var at any
			var model, key sql.NullString
			var ok sql.NullBool
			var status, latency sql.NullInt64
			if err := rows.Scan(&id, &at, &model, &key, &ok, &status, &latency); err != nil {
				rows.Close()
				return fmt.Errorf("import: read t_request_log: %w", err)
			}
			t, err := naiveTime(at, o.Zone)
			if err != nil {
				rows.Close()
				return fmt.Errorf("import: t_request_log id %d: request_time: %w", id, err)
			}
			if len(batch) == 0 {
				first = id
			}
			last = id
			r := logstore.RequestLog{
				ID: fmt.Sprintf("gbr-%d-%d", id, t.UnixMilli()), Time: t.UTC(), Hour: mongox.HourBucket(t), Minute: logstore.MinuteBucket(t),
				Route: "gemini-balance", Model: model.String, Attempts: 1, Status: int(status.Int64), Success: ok.Bool,
				LatencyMS: float64(latency.Int64), Replica: "gemini-balance",
			}
			if k := strings.TrimSpace(key.String); k != "" {
				r.KeyID, r.KeyHint, r.KeyKind = redact.ID(k), redact.Hint(k), kindOf(k)
			}
			batch = append(batch, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("import: read t_request_log: %w", err)
		}
		if len(batch) == 0 {
			break
		}
		w, err := logs.Write(ctx, fmt.Sprintf("import-req-%d-%d", first, last), batch, nil)
		if err != nil {
			return fmt.Errorf("import: write request logs %d…%d: %w", first, last, err)
		}
		res.Requests += w.Inserted
		res.RequestsPresent += w.Duplicates
		if _, err := state.UpdateOne(ctx, bson.M{"_id": st.ID}, bson.M{"$set": bson.M{"last": last}}, options.UpdateOne().SetUpsert(true)); err != nil {
			return fmt.Errorf("import: save import state: %w", err)
		}
		done += len(batch)
		progress(o, "request logs", done, total)
	}
	fmt.Fprintf(o.Out, "request logs: %d added, %d already there\n", res.Requests, res.RequestsPresent)
	return nil
}

func importErrors(ctx context.Context, src *sql.DB, logs *logstore.Store, o Options, res *Result) error {
	total, ok, err := count(ctx, src, "t_error_logs")
	if err != nil || !ok {
		fmt.Fprintln(o.Out, "error logs: none (no t_error_logs table)")
		return err
	}
	last, done := int64(-1), 0
	for {
		rows, err := src.QueryContext(ctx, "SELECT id, request_time, gemini_key, model_name, error_type, error_log, error_code, request_msg FROM t_error_logs WHERE id > ? ORDER BY id LIMIT ?", last, o.BatchSize)
		if err != nil {
			return fmt.Errorf("import: read t_error_logs: %w", err)
		}
		var batch []logstore.ErrorLog
		var first int64
		for rows.Next() {
			var id int64
			var at any
			var key, model, typ, msg, body sql.NullString
			var code sql.NullInt64
			if err := rows.Scan(&id, &at, &key, &model, &typ, &msg, &code, &body); err != nil {
				rows.Close()
				return fmt.Errorf("import: read t_error_logs: %w", err)
			}
			t, err := naiveTime(at, o.Zone)
			if err != nil {
				rows.Close()
				return fmt.Errorf("import: t_error_logs id %d: request_time: %w", id, err)
			}
			if len(batch) == 0 {
				first = id
			}
			last = id
			k := strings.TrimSpace(key.String)
			e := logstore.ErrorLog{
				ID: fmt.Sprintf("gbe-%d-%d", id, t.UnixMilli()), Time: t.UTC(), Minute: logstore.MinuteBucket(t),
				Route: "gemini-balance", Model: model.String, Attempt: 1, Code: int(code.Int64), Type: typ.String,
				// gemini-balance stored upstream bodies and URLs as they were,
				// keys included; here no full key is kept.
				Message: redact.Secrets(msg.String, k), RequestBody: redact.Secrets(body.String, k),
			}
			if k != "" {
				e.KeyID, e.KeyHint = redact.ID(k), redact.Hint(k)
			}
			batch = append(batch, e)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("import: read t_error_logs: %w", err)
		}
		if len(batch) == 0 {
			break
		}
		w, err := logs.Write(ctx, fmt.Sprintf("import-err-%d-%d", first, last), nil, batch)
		if err != nil {
			return fmt.Errorf("import: write error logs %d…%d: %w", first, last, err)
		}
		res.ErrorLogs += w.Errors
		res.ErrorLogsPresent += len(batch) - w.Errors
		done += len(batch)
		progress(o, "error logs", done, total)
	}
	fmt.Fprintf(o.Out, "error logs: %d added, %d already there\n", res.ErrorLogs, res.ErrorLogsPresent)
	return nil
}
