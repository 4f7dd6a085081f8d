package relay

import (
	"bytes"
	"errors"
	"io"
)

// Event is one streamed GenerateContentResponse as it came from upstream.
type Event struct {
	// Raw is the event's bytes exactly as upstream framed them: for SSE the
	// "data: …" block with its blank line; for the JSON array the element
	// with the separator before it ("[" or ","). A relay writes Raw as is.
	// The final Raw of a JSON array carries the closing "]" and no Data.
	Raw []byte
	// Data is the event's JSON payload (nil for the closing bracket).
	Data []byte
}

// errTruncated means upstream closed the stream inside an event or before
// closing the JSON array.
var errTruncated = errors.New("upstream stream ended inside an event")

// framer splits an upstream stream into whole events without copying or
// re-encoding them. Raw and Data point into its buffer and are valid until
// the next call to next.
type framer struct {
	r   io.Reader
	sse bool
	buf []byte
	beg int // first unconsumed byte
	end int // end of the bytes read
	pos int // scan position, beg <= pos <= end
	eof bool
	err error

	// JSON array scanner state.
	depth     int
	inStr     bool
	esc       bool
	elemStart int // offset of the current element's '{', -1 when none
	closed    bool
	elems     int
	scratch   []byte
	onRead    func()
	// crlf records that upstream ends SSE events with "\r\n\r\n"; an event
	// we add must use the same terminator, since the Go SDK picks the first
	// terminator it finds anywhere in its buffer.
	crlf bool
	// peeked is an event ready cut from the buffer; next returns it first.
	peeked    Event
	hasPeeked bool
	// filled records that the last read filled the buffer: more was waiting.
	filled bool
}

// minRead is the first buffer of a stream: one typical event fits, and an
// idle stream (thousands may be open) holds no more than that.
const minRead = 1 << 10

// maxRead bounds how far a busy stream's buffer grows: a read that fills the
// buffer doubles it, so a stream whose events queue up upstream (many
// streams sharing the CPU) takes them in a few reads, not one read per
// kilobyte.
const maxRead = 16 << 10

func newFramer(r io.Reader, sse bool) *framer {
	return &framer{r: r, sse: sse, buf: make([]byte, minRead), elemStart: -1}
}

// next returns the next event, io.EOF at a clean end, errTruncated or the
// read error otherwise.
func (f *framer) next() (Event, error) {
	if f.hasPeeked {
		f.hasPeeked = false
		return f.peeked, nil
	}
	for {
		if ev, ok := f.scan(); ok {
			return ev, nil
		}
		if f.eof {
			return f.atEOF()
		}
		if err := f.fill(); err != nil {
			return Event{}, err
		}
	}
}

// ready reports whether next would return without reading upstream: a
// whole event is buffered (cut now, and kept for next) or upstream ended.
// The event last returned must be written by then: cutting the next one
// may reuse its Data.
func (f *framer) ready() bool {
	if f.hasPeeked || f.eof {
		return true
	}
	if ev, ok := f.scan(); ok {
		f.peeked, f.hasPeeked = ev, true
		return true
	}
	return false
}

func (f *framer) atEOF() (Event, error) {
	rest := f.buf[f.beg:f.end]
	f.beg = f.end
	if f.sse {
		if len(bytes.TrimSpace(rest)) == 0 {
			return Event{}, io.EOF
		}
		return Event{}, errTruncated
	}
	if f.closed || (f.elems == 0 && len(bytes.TrimSpace(rest)) == 0) {
		if len(rest) > 0 {
			return Event{Raw: rest}, nil // trailing whitespace after ']'
		}
		return Event{}, io.EOF
	}
	return Event{}, errTruncated
}

// fill reads more bytes, compacting or growing the buffer as needed.
func (f *framer) fill() error {
	switch {
	case f.filled && len(f.buf) < maxRead:
		f.regrow(2 * len(f.buf))
	case f.end == len(f.buf) && f.beg > 0:
		f.compact()
	case f.end == len(f.buf):
		f.regrow(2 * len(f.buf)) // one event fills it
	}
	n, err := f.r.Read(f.buf[f.end:])
	f.filled = n > 0 && f.end+n == len(f.buf)
	f.end += n
	if n > 0 && f.onRead != nil {
		f.onRead()
	}
	if err == io.EOF {
		f.eof = true
		return nil
	}
	if err != nil {
		return err
	}
	return nil
}

// regrow moves the unconsumed bytes to the start of a new buffer of size n.
func (f *framer) regrow(n int) {
	nb := make([]byte, n)
	f.shift(copy(nb, f.buf[f.beg:f.end]))
	f.buf = nb
}

// compact moves the unconsumed bytes to the start of the buffer (the events
// returned before are no longer valid).
func (f *framer) compact() {
	f.shift(copy(f.buf, f.buf[f.beg:f.end]))
}

// shift moves the offsets by beg, once the n unconsumed bytes are at 0.
func (f *framer) shift(n int) {
	d := f.beg
	f.beg, f.end, f.pos = 0, n, f.pos-d
	if f.elemStart >= 0 {
		f.elemStart -= d
	}
}

func (f *framer) scan() (Event, bool) {
	if f.sse {
		return f.scanSSE()
	}
	return f.scanArray()
}

// scanSSE finds the next blank line ("\n\n" or "\r\n\r\n").
func (f *framer) scanSSE() (Event, bool) {
	b := f.buf
	for i := max(f.pos, f.beg); i < f.end; i++ {
		if b[i] != '\n' {
			continue
		}
		lf := i-1 >= f.beg && b[i-1] == '\n'
		crlf := i-3 >= f.beg && b[i-1] == '\r' && b[i-2] == '\n' && b[i-3] == '\r'
		if lf || crlf {
			f.crlf = crlf
			raw := b[f.beg : i+1]
			f.beg, f.pos = i+1, i+1
			if len(bytes.TrimSpace(raw)) == 0 {
				continue // stray blank line between events
			}
			return Event{Raw: raw, Data: f.sseData(raw)}, true
		}
	}
	f.pos = f.end
	return Event{}, false
}

// sseData returns the payload of the data lines of an SSE block.
func (f *framer) sseData(raw []byte) []byte {
	var one []byte
	count := 0
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		line = line[5:]
		if len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		count++
		if count == 1 {
			one = line
			continue
		}
		if count == 2 {
			f.scratch = append(f.scratch[:0], one...)
		}
		f.scratch = append(f.scratch, '\n')
		f.scratch = append(f.scratch, line...)
	}
	if count > 1 {
		return f.scratch
	}
	return one
}

// scanArray walks the JSON array byte by byte and cuts after each element.
func (f *framer) scanArray() (Event, bool) {
	b := f.buf
	for i := max(f.pos, f.beg); i < f.end; i++ {
		c := b[i]
		if f.inStr {
			switch {
			case f.esc:
				f.esc = false
			case c == '\\':
				f.esc = true
			case c == '"':
				f.inStr = false
			}
			continue
		}
		switch c {
		case '"':
			f.inStr = true
		case '[', '{':
			f.depth++
			if f.depth == 2 {
				f.elemStart = i
			}
		case ']', '}':
			f.depth--
			if f.depth == 1 && c == '}' && f.elemStart >= 0 {
				raw, data := b[f.beg:i+1], b[f.elemStart:i+1]
				f.beg, f.pos, f.elemStart = i+1, i+1, -1
				f.elems++
				return Event{Raw: raw, Data: data}, true
			}
			if f.depth == 0 {
				f.closed = true
				raw := b[f.beg : i+1]
				f.beg, f.pos = i+1, i+1
				return Event{Raw: raw}, true
			}
		}
	}
	f.pos = f.end
	return Event{}, false
}

// isErrorEvent reports whether a payload is a top-level {"error": …} object,
// which is how Gemini reports a failure inside a 200 stream.
func isErrorEvent(data []byte) bool {
	d := bytes.TrimLeft(data, " \t\r\n")
	if len(d) == 0 || d[0] != '{' {
		return false
	}
	d = bytes.TrimLeft(d[1:], " \t\r\n")
	return bytes.HasPrefix(d, []byte(`"error"`))
}

// hasContent reports whether a GenerateContentResponse carries an answer:
// parts, a finish reason, or prompt feedback (a blocked prompt is an answer).
// A quoted key cannot appear unescaped inside a JSON string, so a substring
// check is exact enough and costs no parse.
func hasContent(data []byte) bool {
	return bytes.Contains(data, []byte(`"parts"`)) ||
		bytes.Contains(data, []byte(`"finishReason"`)) ||
		bytes.Contains(data, []byte(`"promptFeedback"`))
}
