package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// batchMessages gathers messages into batches of whole messages, up to
// BatchSize events, FlushInterval after the first or IdleFlush after the
// last, and hands them to the writers. A graceful stop hands over what it holds before returning.
func (in *Ingester) batchMessages(ctx context.Context, reqCh, errCh <-chan *message.Message, toWrite chan<- *batch) {
	cur := in.newBatch()
	var held *unit // arrived when cur was too full to take it
	timer := time.NewTimer(in.opt.FlushInterval)
	timer.Stop()
	// Messages also stop arriving when a consumer's window (MaxAckPending)
	// is in hand: nothing more comes before an ack, so a batch is written
	// once no message arrived for IdleFlush.
	idle := time.NewTimer(in.opt.IdleFlush)
	idle.Stop()
	due := false // the oldest event of cur has waited FlushInterval, or arrivals paused
	take := func(u *unit) {
		if u == nil {
			return
		}
		idle.Reset(in.opt.IdleFlush)
		if cur.events > 0 && cur.events+u.events() > in.opt.BatchSize {
			held = u
			return
		}
		if len(cur.units) == 0 {
			timer.Reset(in.opt.FlushInterval)
		}
		cur.units = append(cur.units, u)
		cur.events += u.events()
	}
	for {
		full := held != nil || cur.events >= in.opt.BatchSize
		var send chan<- *batch
		if full || (due && len(cur.units) > 0) {
			send = toWrite
		}
		reqIn, errIn := reqCh, errCh
		if full {
			reqIn, errIn = nil, nil // wait for a writer
		}
		select {
		case <-ctx.Done():
			// A graceful stop writes what it holds before letting go of the
			// subscriptions, so nothing received waits for redelivery.
			for _, b := range []*batch{cur, in.batchOf(held)} {
				if b != nil && len(b.units) > 0 {
					toWrite <- b
				}
			}
			return
		case send <- cur:
			cur, due = in.newBatch(), false
			timer.Stop()
			u := held
			held = nil
			take(u)
		case m, ok := <-reqIn:
			if !ok {
				reqCh = nil
				continue
			}
			take(in.parse(ctx, m, true))
		case m, ok := <-errIn:
			if !ok {
				errCh = nil
				continue
			}
			take(in.parse(ctx, m, false))
		case <-timer.C:
			due = true
		case <-idle.C:
			due = true
		}
	}
}

func nackAll(chs ...<-chan *message.Message) {
	var wg sync.WaitGroup
	for _, ch := range chs {
		if ch == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range ch {
				m.Nack()
			}
		}()
	}
	wg.Wait()
}

func (in *Ingester) newBatch() *batch { return &batch{id: watermill.NewULID()} }

func (in *Ingester) batchOf(u *unit) *batch {
	if u == nil {
		return nil
	}
	b := in.newBatch()
	b.units, b.events = []*unit{u}, u.events()
	return b
}
