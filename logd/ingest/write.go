package ingest

import (
	"context"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/gemini-balance-go/logd/logstore"
)

// rowBuffer is a writer's array for its batches' request logs, batch after
// batch: a fresh one per batch was a tenth of logd's allocation under load.
type rowBuffer []logstore.RequestLog

// maxKeptRows bounds the array a writer keeps (a batch is BatchSize events,
// or one larger message).
const maxKeptRows = 4096

func (r *rowBuffer) take(n int) []logstore.RequestLog {
	if cap(*r) < n {
		*r = make([]logstore.RequestLog, 0, n)
	}
	return (*r)[:0]
}

// give takes back the batch's rows once nothing uses them, and zeroes them
// so the array keeps no log's strings alive.
func (r *rowBuffer) give(rows []logstore.RequestLog) {
	clear(rows)
	if cap(*r) > maxKeptRows {
		*r = nil
	}
}

// insert stores a batch's logs, then its rollup parts, retrying each with
// backoff until MongoDB takes it, and acknowledges the batch's messages. Only
// a stop ends the retries; the messages then stay unacknowledged and are
// redelivered. The batch's request logs go in rows, the writer's own array.
func (in *Ingester) insert(ctx context.Context, b *batch, rows *rowBuffer) {
	var nreqs, nerrs int
	for _, u := range b.units {
		nreqs, nerrs = nreqs+len(u.reqs), nerrs+len(u.errs)
	}
	reqs := rows.take(nreqs)
	defer func() { rows.give(reqs) }() // the store and Settle are done with them
	errs := make([]logstore.ErrorLog, 0, nerrs)
	for _, u := range b.units {
		reqs = append(reqs, u.reqs...)
		errs = append(errs, u.errs...)
	}
	b.start = time.Now()
	var p *logstore.Pending
	err := in.retry(ctx, "insert logs", b.id, b.events, func(wctx context.Context) error {
		var err error
		p, err = in.deps.Store.InsertLogs(wctx, b.id, reqs, errs)
		return err
	})
	if err == nil {
		err = in.retry(ctx, "write rollup parts", b.id, b.events, func(wctx context.Context) error {
			return in.deps.Store.Settle(wctx, p)
		})
	}
	if err != nil {
		in.finish(b, false)
		return
	}
	took := time.Since(b.start)
	in.m.writeSeconds.Observe(took.Seconds())
	in.m.batchSize.Observe(float64(b.events))
	in.m.lastWrite.SetToCurrentTime()
	res := p.Result
	in.m.events.WithLabelValues("request", "inserted").Add(float64(res.Inserted))
	in.m.events.WithLabelValues("request", "duplicate").Add(float64(res.Duplicates))
	in.m.events.WithLabelValues("error", "inserted").Add(float64(res.Errors))
	in.log.Debug("batch stored", "batch", b.id, "events", b.events, "inserted", res.Inserted,
		"duplicates", res.Duplicates, "rolled", res.Rolled, "took", took)
	in.finish(b, true)
}

// foldLoop folds the rollup parts into the rollups every FoldEvery, on
// every replica at once: the store lets one round run at a time and finishes
// a dead replica's round. A pass runs rounds while they come back full (a
// backlog), so under steady traffic the rollups take about one round of
// updates per FoldEvery whatever the rate. A failed pass is retried on the
// next one; the parts stay counted by queries meanwhile.
func (in *Ingester) foldLoop(ctx context.Context) {
	// The pause runs from the end of a pass, so a slow pass is not followed
	// by another at once.
	t := time.NewTimer(in.opt.FoldEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		in.foldPass(ctx)
		t.Reset(in.opt.FoldEvery)
	}
}

// foldPass runs fold rounds while they come back full.
func (in *Ingester) foldPass(ctx context.Context) {
	for ctx.Err() == nil {
		start := time.Now()
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := in.deps.Store.Fold(fctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				in.m.writeFailures.Inc()
				in.log.Warn("fold rollup parts failed; retrying on the next pass", "err", err)
			}
			return
		}
		if n > 0 {
			in.m.foldSeconds.Observe(time.Since(start).Seconds())
			in.m.foldParts.Observe(float64(n))
			in.log.Debug("rollup parts folded", "parts", n, "took", time.Since(start))
		}
		// A round that was not full found every part there was; the parts
		// written since wait for the next pass. Folding them at once would
		// run rounds back to back under steady traffic, each a fixed cost of
		// rollup updates for a few new parts.
		if n < logstore.MaxPartsPerRound {
			return
		}
	}
}

// retry runs op until it succeeds or ctx ends (then it returns ctx's error).
// A stop still lets an attempt in progress finish briefly, so its acks go out.
func (in *Ingester) retry(ctx context.Context, what, id string, events int, op func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := op(wctx)
		cancel()
		if err == nil {
			if attempt > 1 {
				in.log.Info(what+" succeeded after retries", "batch", id, "attempts", attempt, "events", events)
			}
			return nil
		}
		in.m.writeFailures.Inc()
		in.log.Warn(what+" failed; retrying, events stay unacknowledged",
			"batch", id, "events", events, "attempt", attempt, "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, in.opt.MaxBackoff)
	}
}

// rememberMessages bounds the stored message keys kept (about 4 MiB).
const rememberMessages = 1 << 16

// remember notes a stored message (under mu).
func (in *Ingester) remember(key string) {
	if in.done[key] {
		return
	}
	in.done[key] = true
	in.doneOrder = append(in.doneOrder, key)
	if len(in.doneOrder) > rememberMessages {
		delete(in.done, in.doneOrder[0])
		in.doneOrder = in.doneOrder[1:]
	}
}

// finish acknowledges (stored) or nacks (given up) a batch's messages and
// the redelivered copies that waited for them, and forgets the batch.
func (in *Ingester) finish(b *batch, stored bool) {
	in.mu.Lock()
	var copies []*message.Message
	for _, u := range b.units {
		copies = append(copies, u.copies...)
		delete(in.msgs, u.key)
		if stored && !strings.HasPrefix(u.key, noSeq) {
			in.remember(u.key)
		}
	}
	in.mu.Unlock()
	for _, u := range b.units {
		if stored {
			u.m.Ack()
		} else {
			u.m.Nack()
		}
	}
	for _, m := range copies {
		if stored {
			m.Ack()
		} else {
			m.Nack()
		}
	}
}
