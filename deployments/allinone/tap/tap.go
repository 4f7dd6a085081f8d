// Package tap is `gemini-balance tap`: it prints the events on the bus, one
// JSON line per message, with the request and error batches that edge sends
// S2-compressed (bus.HeaderEncoding) decoded, which `nats sub` shows as bytes.
package tap

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/gemini-balance-go/deployments/allinone/app"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
)

// line is what tap prints for one message. Payload is the message's JSON
// (decoded), or its text when it is not JSON; Error says why a payload did
// not decode.
type line struct {
	Subject string          `json:"subject"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Text    string          `json:"text,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// Command runs `gemini-balance tap [--url URL] [--subject S] [--count N]`
// until ctx ends or N messages were printed.
func Command(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tap", flag.ContinueOnError)
	fs.SetOutput(out)
	url := fs.String("url", "", "NATS URL with credentials (default: DATA_DIR/"+app.TapURLFile+", written by a running all-in-one)")
	subject := fs.String("subject", bus.SubjectEventsAll, "subject to watch")
	count := fs.Int("count", 0, "stop after this many messages (0: until interrupted)")
	fs.Usage = func() {
		fmt.Fprintln(out, "usage: gemini-balance tap [--url nats://user:password@host:4222] [--subject gb.events.>] [--count N]")
		fmt.Fprintln(out, "Prints each event message as a JSON line {subject, payload}, compressed batches decoded: pipe to jq '.payload.events[]?'.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errors.New("tap: unexpected arguments")
	}
	if *url == "" {
		in, err := config.LoadInfra()
		if err != nil {
			return err
		}
		raw, err := os.ReadFile(filepath.Join(in.DataDir, app.TapURLFile))
		if err != nil {
			return fmt.Errorf("tap: no --url, and no all-in-one's tap URL: %w", err)
		}
		*url = strings.TrimSpace(string(raw))
	}
	nc, err := nats.Connect(*url, nats.Name("gemini-balance tap"))
	if err != nil {
		return fmt.Errorf("tap: connect: %w", err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(*subject)
	if err != nil {
		return fmt.Errorf("tap: subscribe %s: %w", *subject, err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("tap: subscribe %s: %w", *subject, err)
	}
	if err := nc.LastError(); err != nil {
		return fmt.Errorf("tap: subscribe %s: %w", *subject, err)
	}
	enc := json.NewEncoder(out)
	for n := 0; *count == 0 || n < *count; n++ {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("tap: %w", err)
		}
		if err := enc.Encode(describe(m)); err != nil {
			return err
		}
	}
	return nil
}

func describe(m *nats.Msg) line {
	l := line{Subject: m.Subject}
	data, err := bus.DecodeBatch(m.Header.Get(bus.HeaderEncoding), m.Data)
	switch {
	case err != nil:
		l.Error = err.Error()
	case json.Valid(data):
		l.Payload = data
	default:
		l.Text = string(data)
	}
	return l
}
