package ferret

import (
	"context"
	"log/slog"
	"slices"
)

// lazyAttrs defers a logger's With until a record is logged. FerretDB calls
// With on every SQL statement, with the statement's arguments (a whole
// document on an insert), then logs at Debug; a JSON or text handler
// formats With's attributes at once, so below Debug every statement paid
// for encoding its arguments into a log line nobody writes (about 3% of the
// all-in-one's allocations under load).
type lazyAttrs struct {
	h   slog.Handler
	ops []func(slog.Handler) slog.Handler // With and WithGroup calls, in order
}

func (l lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	h := l.h
	for _, op := range l.ops {
		h = op(h)
	}
	return h.Handle(ctx, r)
}

func (l lazyAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return l
	}
	return lazyAttrs{h: l.h, ops: append(slices.Clip(l.ops), func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })}
}

func (l lazyAttrs) WithGroup(name string) slog.Handler {
	if name == "" {
		return l
	}
	return lazyAttrs{h: l.h, ops: append(slices.Clip(l.ops), func(h slog.Handler) slog.Handler { return h.WithGroup(name) })}
}
