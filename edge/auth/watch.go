package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/shared/bus"
)

// Watch follows the gb_client_tokens bucket until ctx ends and applies every
// change live: a token admind creates works on its next request, a revoked or
// disabled one is refused on its next request. It runs in the background and
// re-opens the watch whenever it ends early (bucket not yet provisioned, NATS
// gone), starting from the bucket's full current contents each time, so a
// deletion missed while disconnected cannot leave a revoked token behind.
func (a *Auth) Watch(ctx context.Context, js jetstream.JetStream, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	a.watching.Store(true)
	go func() {
		backoff := 200 * time.Millisecond
		for {
			err := a.watchOnce(ctx, js, log)
			if ctx.Err() != nil {
				return
			}
			log.Warn("client token watch ended; reopening", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}()
}

func (a *Auth) watchOnce(ctx context.Context, js jetstream.JetStream, log *slog.Logger) error {
	kv, err := js.KeyValue(ctx, bus.BucketClientTokens)
	if err != nil {
		return fmt.Errorf("open bucket %s: %w", bus.BucketClientTokens, err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch bucket %s: %w", bus.BucketClientTokens, err)
	}
	defer func() { _ = w.Stop() }()
	byID := map[string]bus.ClientToken{}
	replaying := true // apply the initial contents in one swap
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch channel closed")
			}
			if e == nil {
				replaying = false // end of the initial values
			} else {
				switch e.Operation() {
				case jetstream.KeyValuePut:
					var t bus.ClientToken
					if err := json.Unmarshal(e.Value(), &t); err != nil {
						log.Error("bad client token entry", "key", e.Key(), "revision", e.Revision(), "err", err)
						delete(byID, e.Key()) // an unreadable entry must not keep an older, valid one alive
					} else {
						t.ID = e.Key()
						byID[e.Key()] = t
					}
				case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
					delete(byID, e.Key())
				}
			}
			if replaying {
				continue
			}
			list := make([]bus.ClientToken, 0, len(byID))
			for _, t := range byID {
				list = append(list, t)
			}
			for _, id := range a.SetManaged(list) {
				log.Error("client token entry has no valid sha256; ignored", "token_id", id)
			}
			if e == nil {
				a.markLoaded()
				log.Info("client tokens loaded", "tokens", len(list))
			} else {
				log.Debug("client tokens updated", "token_id", e.Key(), "op", e.Operation().String(), "tokens", len(list))
			}
		}
	}
}
