package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/seal"
)

// Settings holds the live settings of a service: the environment's values
// until admind's document arrives over the KV bucket, then each saved version.
// Reads are a single atomic load, cheap enough for every request.
type Settings struct {
	cur atomic.Pointer[config.Settings]

	mu       sync.Mutex // serialises Set and guards onChange, box and log
	onChange []func(config.Settings)
	box      *seal.Box
	log      *slog.Logger
}

// UseBox opens the sealed secrets (PROXIES with credentials) of every later
// version with ENCRYPTION_KEY's box (nil: none set); entries that do not open
// are left out and logged. Call it before Watch.
func (s *Settings) UseBox(b *seal.Box, log *slog.Logger) {
	s.mu.Lock()
	s.box, s.log = b, log
	s.mu.Unlock()
}

// NewSettings starts with the given settings (usually from the environment).
func NewSettings(initial config.Settings) *Settings {
	s := &Settings{}
	s.cur.Store(&initial)
	return s
}

// Get returns the current settings. Callers must not modify the result.
func (s *Settings) Get() *config.Settings { return s.cur.Load() }

// OnChange registers a callback run after each later update. It may be
// called at any time, also while Watch is applying updates.
func (s *Settings) OnChange(f func(config.Settings)) {
	s.mu.Lock()
	s.onChange = append(s.onChange, f)
	s.mu.Unlock()
}

// Set replaces the settings and runs the callbacks, one update at a time so
// callbacks see updates in order.
func (s *Settings) Set(next config.Settings) {
	next.Normalize()
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.ContainsFunc(next.Proxies, seal.IsSealed) {
		open, err := s.box.OpenProxies(next.Proxies)
		if err != nil && s.log != nil {
			s.log.Error("proxies left out: their credentials do not open; set the ENCRYPTION_KEY admind uses", "err", err)
		}
		next.Proxies = open
	}
	s.cur.Store(&next)
	for _, f := range s.onChange {
		f(next)
	}
}

// Watch follows the settings KV bucket until ctx ends, applying each value.
func (s *Settings) Watch(ctx context.Context, js jetstream.JetStream, log *slog.Logger) error {
	kv, err := js.KeyValue(ctx, bus.BucketSettings)
	if err != nil {
		return fmt.Errorf("open settings bucket: %w", err)
	}
	w, err := kv.Watch(ctx, bus.KeySettings)
	if err != nil {
		return fmt.Errorf("watch settings: %w", err)
	}
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil || e.Operation() != jetstream.KeyValuePut {
					continue // nil marks the end of the initial values
				}
				next := config.Defaults()
				if err := json.Unmarshal(e.Value(), &next); err != nil {
					log.Error("bad settings document", "revision", e.Revision(), "err", err)
					continue
				}
				s.Set(next)
				log.Debug("settings applied", "revision", e.Revision())
			}
		}
	}()
	return nil
}

// PublishSettings writes a settings document into the bucket (admind only).
func PublishSettings(ctx context.Context, js jetstream.JetStream, s config.Settings) error {
	kv, err := js.KeyValue(ctx, bus.BucketSettings)
	if err != nil {
		return fmt.Errorf("open settings bucket: %w", err)
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, bus.KeySettings, data)
	return err
}

// FetchSettings reads the current settings document; ok is false if none yet.
func FetchSettings(ctx context.Context, js jetstream.JetStream) (config.Settings, bool, error) {
	kv, err := js.KeyValue(ctx, bus.BucketSettings)
	if err != nil {
		return config.Settings{}, false, err
	}
	e, err := kv.Get(ctx, bus.KeySettings)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return config.Settings{}, false, nil
	}
	if err != nil {
		return config.Settings{}, false, err
	}
	s := config.Defaults()
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return config.Settings{}, false, err
	}
	s.Normalize()
	return s, true, nil
}
