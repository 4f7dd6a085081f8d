package ferret

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

// A logger's With costs nothing until a record is written, and a written
// record carries every attribute and group, in order.
func TestLazyAttrsFormatOnlyWhatIsLogged(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(lazyAttrs{h: slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})})
	formatted := 0
	costly := slog.Any("args", marshaler(func() { formatted++ }))
	l.With(costly).Debug("statement")
	if formatted != 0 || buf.Len() != 0 {
		t.Fatalf("a Debug record below Error formatted its attributes %d times and wrote %q", formatted, buf.String())
	}
	l.With("svc", "store").WithGroup("g").With(costly).Error("failed", "n", 1)
	if formatted != 1 {
		t.Fatalf("the logged record formatted its attribute %d times, want once", formatted)
	}
	var got struct {
		Svc string `json:"svc"`
		Msg string `json:"msg"`
		G   struct {
			Args string `json:"args"`
			N    int    `json:"n"`
		} `json:"g"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Svc != "store" || got.Msg != "failed" || got.G.Args != "v" || got.G.N != 1 {
		t.Fatalf("logged %s", buf.Bytes())
	}
}

// marshaler counts its JSON encodings.
type marshaler func()

func (m marshaler) MarshalJSON() ([]byte, error) {
	m()
	return []byte(`"v"`), nil
}
