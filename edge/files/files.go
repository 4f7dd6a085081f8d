// Package files is the one file-ownership check of edge. Every route whose
// request can reference an uploaded file (native generate, stream,
// countTokens and embeddings; the OpenAI chat route's file parts and
// image_url; the /openai/v1 passthrough) calls Check before anything goes
// upstream:
//
//	pin, deny := files.Check(ctx, keyd, body, files.Options{TokenID: rec.TokenID, Isolation: st.FilesUserIsolation, BaseURL: st.BaseURL})
//	if deny != nil { /* answer deny.Status, deny.Message in the route's shape */ }
//	req.PinKeyID = pin // the key that uploaded the files: only it can read them
//
// The request is parsed as JSON (escapes such as \/ and \u0066 decode as the
// upstream decodes them), and every reference anywhere in it counts:
// fileData.fileUri in any spelling (fileData/file_data, fileUri/file_uri),
// in contents, systemInstruction or anywhere else, OpenAI file_id and the
// url of image_url or file parts when it points at the upstream's files.
package files

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
)

// MaxRefs caps the distinct files one request may reference; each costs a
// lookup in keyd. Over it the request is refused with 400.
const MaxRefs = 32

// MaxDepth bounds the nesting the extractor follows (the same limit as the
// request-body depth check); deeper bodies are refused with 400.
const MaxDepth = 128

// GoogleHost is the upstream's public host: file URIs on it are references
// even when BASE_URL points elsewhere.
const GoogleHost = "generativelanguage.googleapis.com"

// Lookup finds a file's binding (keyd's files lookup); edge/keydclient.Client
// implements it and reports a missing binding as bus.ErrNotFound.
type Lookup interface {
	LookupFile(ctx context.Context, q keyapi.FileQuery) (bus.FileBinding, error)
}

// Options say whose request it is and how strict to be.
type Options struct {
	TokenID string
	// Isolation is FILES_USER_ISOLATION_ENABLED: every referenced file must
	// be bound to TokenID. Off, files are shared but still pinned to the key
	// that uploaded them.
	Isolation bool
	// BaseURL is the upstream root (BASE_URL): URIs on its host are references.
	BaseURL string
}

// Denial is a refused request; the route writes it in its own error shape.
type Denial struct {
	Status  int
	Message string
}

func (d *Denial) Error() string { return d.Message }

// notYours is Google's own answer for a file that is not yours or does not exist.
func notYours(name string) *Denial {
	return &Denial{Status: http.StatusForbidden, Message: "You do not have permission to access the File " + strings.TrimPrefix(name, "files/") + " or it may not exist."}
}

// Check finds every file the request references and checks that the caller
// may use each. It returns the key to pin the request to (empty when no
// known file is referenced) or a Denial; on a Denial nothing may be sent
// upstream.
func Check(ctx context.Context, lk Lookup, body []byte, o Options) (pin string, deny *Denial) {
	refs, err := Refs(body, o.BaseURL)
	if err != nil {
		return "", &Denial{Status: http.StatusBadRequest, Message: err.Error()}
	}
	return CheckNames(ctx, lk, refs, o)
}

// CheckNames is Check for file names the caller found itself ("files/x"),
// such as a batch's inputConfig.fileName.
func CheckNames(ctx context.Context, lk Lookup, refs []string, o Options) (pin string, deny *Denial) {
	if len(refs) == 0 {
		return "", nil
	}
	if lk == nil {
		if o.Isolation {
			return "", notYours(refs[0])
		}
		return "", nil
	}
	for _, name := range refs {
		b, err := lk.LookupFile(ctx, keyapi.FileQuery{Name: name})
		switch {
		case errors.Is(err, bus.ErrNotFound):
			if o.Isolation {
				// Not uploaded by this caller through the gateway: with
				// isolation nobody may reach it through our keys.
				return "", notYours(name)
			}
			continue // shared mode: let the upstream judge
		case err != nil:
			return "", &Denial{Status: http.StatusServiceUnavailable, Message: "the file index is unavailable, try again shortly"}
		}
		if !Owns(b, o.TokenID, o.Isolation) {
			return "", notYours(name)
		}
		switch {
		case b.KeyID == "":
		case pin == "":
			pin = b.KeyID
		case pin != b.KeyID:
			return "", &Denial{Status: http.StatusBadRequest, Message: "the referenced files were uploaded with different upstream keys and cannot be used in one request"}
		}
	}
	return pin, nil
}

// Owns reports whether the client token may use a bound file: always
// without isolation, else only the token that uploaded it. The files routes
// (get, delete, upload chunks) and Check all decide with it.
func Owns(b bus.FileBinding, tokenID string, isolation bool) bool {
	return !isolation || (b.TokenID != "" && b.TokenID == tokenID)
}

// refHints are the substrings one of which every reference contains: a
// "files" segment or a file_id key, or else an escaped ASCII letter or
// underscore (\u0041-\u007a in JSON, %41-%7A in a URL) that could spell
// them. Escapes of other characters (CJK text, \u003c from Go encoders,
// "50% off") do not force a parse.
var refHints = [][]byte{
	[]byte("files"), []byte("FILES"), []byte("Files"), []byte("ile_id"), []byte("ileId"), []byte("ILE_ID"),
	[]byte(`\u004`), []byte(`\u005`), []byte(`\u006`), []byte(`\u007`),
	[]byte("%4"), []byte("%5"), []byte("%6"), []byte("%7"),
}

// mayReference is the cheap test that spares most requests a full parse.
func mayReference(body []byte) bool {
	for _, s := range refHints {
		if bytes.Contains(body, s) {
			return true
		}
	}
	return false
}

// Refs lists the distinct "files/{id}" names body references. The body is
// parsed as JSON with at most MaxDepth levels; a body that may reference a
// file but is not valid JSON is an error, as is one with more than MaxRefs
// references. An empty body references nothing.
func Refs(body []byte, baseURL string) ([]string, error) {
	if len(bytes.TrimSpace(body)) == 0 || !mayReference(body) {
		return nil, nil
	}
	hosts := []string{GoogleHost}
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		hosts = append(hosts, strings.ToLower(u.Host))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object bool
		key    string // last key read in an object
		keyNow bool   // the next token is a key
	}
	var stack []frame
	seen := map[string]bool{}
	var out []string
	add := func(name string) error {
		if seen[name] {
			return nil
		}
		if len(out) >= MaxRefs {
			return fmt.Errorf("the request references more than %d files", MaxRefs)
		}
		seen[name] = true
		out = append(out, name)
		return nil
	}
	done := false // one whole top-level value was read
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("invalid JSON body: %v", err)
		}
		if done {
			return nil, errors.New("invalid JSON body: more than one value")
		}
		top := len(stack) - 1
		if top < 0 {
			if d, ok := tok.(json.Delim); !ok || (d != '{' && d != '[') {
				done = true // a bare scalar
				continue
			}
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) >= MaxDepth {
					return nil, fmt.Errorf("JSON nested deeper than %d levels", MaxDepth)
				}
				stack = append(stack, frame{object: d == '{', keyNow: d == '{'})
				continue
			default:
				stack = stack[:top]
				done = top == 0
			}
		} else if s, ok := tok.(string); ok && top >= 0 && stack[top].object && stack[top].keyNow {
			stack[top].key, stack[top].keyNow = s, false
			continue
		} else if ok && top >= 0 && stack[top].object {
			for _, name := range refsIn(stack[top].key, s, hosts) {
				if err := add(name); err != nil {
					return nil, err
				}
			}
		}
		if n := len(stack) - 1; n >= 0 && stack[n].object {
			stack[n].keyNow = true
		}
	}
	if len(stack) > 0 || !done {
		return nil, errors.New("invalid JSON body: unexpected end")
	}
	return out, nil
}

// refsIn reads the file names a string value under key names.
func refsIn(key, val string, hosts []string) []string {
	switch normKey(key) {
	case "fileid":
		if !strings.ContainsAny(val, "/:") {
			if val = strings.TrimSpace(val); val == "" {
				return nil
			}
			return []string{"files/" + val}
		}
		return uriRefs(val, hosts)
	case "fileuri", "uri", "url", "filedata":
		return uriRefs(val, hosts)
	}
	return nil
}

// normKey folds fileData/file_data/FILE_DATA to one spelling.
func normKey(k string) string {
	return strings.ToLower(strings.ReplaceAll(k, "_", ""))
}

// uriRefs reads the file names of a URI: a relative "files/x" or
// "/v1beta/files/x", or an http(s) URL on the upstream's host. Every
// "files/{id}" pair of its cleaned path counts; other hosts are ordinary
// web URLs and reference nothing of ours.
func uriRefs(s string, hosts []string) []string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "data:") {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil
	}
	switch strings.ToLower(u.Scheme) {
	case "":
		if u.Host != "" {
			if !onHost(u.Host, hosts) {
				return nil
			}
		}
	case "http", "https":
		if !onHost(u.Host, hosts) {
			return nil
		}
	default:
		return nil
	}
	p := u.Path
	if p == "" {
		p = u.Opaque
	}
	segs := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	var out []string
	for i := 0; i+1 < len(segs); i++ {
		if !strings.EqualFold(segs[i], "files") {
			continue
		}
		id, _, _ := strings.Cut(segs[i+1], ":")
		if id != "" {
			out = append(out, "files/"+id)
		}
	}
	return out
}

func onHost(h string, hosts []string) bool {
	h = strings.ToLower(h)
	for _, x := range hosts {
		if h == x || strings.TrimSuffix(h, ":443") == x {
			return true
		}
	}
	return false
}
