package native

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tidwall/gjson"

	"github.com/gemini-balance-go/edge/events"
	"github.com/gemini-balance-go/edge/files"
	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/guard"
	"github.com/gemini-balance-go/shared/keyapi"
	"github.com/gemini-balance-go/shared/outcome"
)

// upload serves the resumable upload protocol. The start request picks a
// key, binds the upload session to it (through keyd) and returns an upload
// URL that points at this gateway; chunks are streamed to the upstream
// session with the same key, and the finished file is bound to that key and
// the client token.
func (h *handlers) upload(prefix string) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := record(c, "gemini.files.upload", "")
		tokenID, tokenHint, ok, present := h.Authenticate(c.Request)
		if present && !ok {
			relay.WriteError(c.Writer, http.StatusUnauthorized, "invalid client token")
			return
		}
		rec.TokenID, rec.TokenHint = tokenID, tokenHint
		uploadID := c.Query("upload_id")
		if uploadID == "" {
			if !ok {
				relay.WriteError(c.Writer, http.StatusUnauthorized, "missing client token: pass it as ?key=, x-goog-api-key or Authorization: Bearer")
				return
			}
			h.startUpload(c, prefix, rec)
			return
		}
		h.uploadChunk(c, uploadID, ok, rec)
	}
}

func copyUploadHeaders(dst, src http.Header) {
	for k, vs := range src {
		if strings.HasPrefix(k, "X-Goog-Upload-") || k == "X-Goog-Upload-Url" {
			dst[k] = vs
		}
	}
}

func (h *handlers) startUpload(c *gin.Context, prefix string, rec *events.Record) {
	body, ok := readBody(c)
	if !ok {
		return
	}
	hdr := http.Header{}
	copyUploadHeaders(hdr, c.Request.Header)
	if ct := c.GetHeader("Content-Type"); ct != "" {
		hdr.Set("Content-Type", ct)
	}
	resp := h.Relay.Do(c.Request.Context(), &relay.Request{
		Route: rec.Route, ErrorType: "gemini-files-upload", Path: "/upload/v1beta/files",
		Query: relay.QueryWithoutKey(c.Request.URL.RawQuery), Header: hdr, Body: body,
	})
	if !resp.OK() {
		writeResponse(c, resp)
		return
	}
	upstreamURL := resp.Header.Get("X-Goog-Upload-URL")
	u, err := url.Parse(upstreamURL)
	uploadID := ""
	if err == nil {
		uploadID = u.Query().Get("upload_id")
	}
	if uploadID == "" {
		relay.WriteError(c.Writer, http.StatusBadGateway, "upstream started an upload without an upload URL")
		return
	}
	err = h.Keyd.BindFile(c.Request.Context(), bus.FileBinding{
		UploadID: uploadID, UploadURL: upstreamURL, KeyID: resp.Key.ID, TokenID: rec.TokenID, Created: time.Now().UTC(),
	})
	if err != nil {
		h.log.Error("bind upload session", "err", err)
		relay.WriteError(c.Writer, http.StatusServiceUnavailable, "could not record the upload session; try again")
		return
	}
	out := c.Writer.Header()
	copyUploadHeaders(out, resp.Header)
	out.Set("X-Goog-Upload-URL", publicBase(c.Request)+prefix+"?"+u.RawQuery)
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/json; charset=UTF-8"
	}
	c.Data(resp.Status, ct, resp.Body)
}

// publicBase is how the client reached us (behind a front proxy too).
func publicBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		scheme = strings.TrimSpace(strings.Split(p, ",")[0])
	}
	host := r.Host
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
		host = strings.TrimSpace(strings.Split(fh, ",")[0])
	}
	return scheme + "://" + host
}

func (h *handlers) uploadChunk(c *gin.Context, uploadID string, authed bool, rec *events.Record) {
	ctx := c.Request.Context()
	chunk, berr := limitChunk(c, h.maxChunk())
	if berr != nil {
		relay.WriteError(c.Writer, berr.Status, berr.Msg)
		return
	}
	b, err := h.Keyd.LookupFile(ctx, keyapi.FileQuery{UploadID: uploadID})
	if err != nil || b.UploadURL == "" {
		c.Data(http.StatusNotFound, "text/plain; charset=utf-8", []byte("Failed to find upload session."))
		return
	}
	if authed && !files.Owns(b, rec.TokenID, h.Settings.Get().FilesUserIsolation) {
		relay.WriteError(c.Writer, http.StatusForbidden, "this upload session belongs to another client token")
		return
	}
	rec.TokenID = b.TokenID
	rep, err := h.Keyd.Acquire(ctx, bus.AcquireRequest{Kind: bus.KindGemini, KeyID: b.KeyID})
	if err != nil || rep.ID == "" {
		relay.WriteError(c.Writer, http.StatusServiceUnavailable, "the key that started this upload is not usable now")
		return
	}
	rec.Attempts, rec.KeyID, rec.KeyHint, rec.KeyKind = 1, rep.ID, rep.Hint, bus.KindGemini
	hreq, err := http.NewRequestWithContext(ctx, c.Request.Method, b.UploadURL, c.Request.Body)
	if err != nil {
		relay.WriteError(c.Writer, http.StatusBadGateway, "bad upstream upload URL")
		return
	}
	hreq.ContentLength = c.Request.ContentLength
	copyUploadHeaders(hreq.Header, c.Request.Header)
	if ct := c.GetHeader("Content-Type"); ct != "" {
		hreq.Header.Set("Content-Type", ct)
	}
	res, err := h.Relay.Send(ctx, rep.Secret, rep.ID, hreq)
	if berr := chunk.clientFault(h.maxChunk()); err != nil && berr != nil {
		h.Keyd.Report(bus.Report{ID: rep.ID, Class: string(outcome.Canceled)})
		relay.WriteError(c.Writer, berr.Status, berr.Msg)
		return
	}
	if err != nil {
		h.Keyd.Report(bus.Report{ID: rep.ID, Class: string(outcome.ConnError), Status: http.StatusBadGateway})
		relay.WriteError(c.Writer, http.StatusBadGateway, "upstream upload failed")
		return
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		relay.WriteError(c.Writer, http.StatusBadGateway, "upstream upload answer was cut")
		return
	}
	v := outcome.Classify(res.StatusCode, body)
	if res.StatusCode/100 != 2 {
		body = relay.Scrub(ctx, body, rep.Secret)
	}
	h.Keyd.Report(bus.Report{ID: rep.ID, Class: string(v.Class), Status: res.StatusCode, Reason: v.Reason, RetryDelay: v.RetryDelay.Milliseconds()})
	if res.StatusCode/100 == 2 && strings.EqualFold(res.Header.Get("X-Goog-Upload-Status"), "final") {
		if f := gjson.GetBytes(body, "file"); f.Exists() && f.Get("name").Str != "" {
			fb := bus.FileBinding{
				Name: f.Get("name").Str, KeyID: b.KeyID, TokenID: b.TokenID, UploadID: uploadID,
				Created: time.Now().UTC(), Metadata: []byte(f.Raw),
			}
			if exp, err := time.Parse(time.RFC3339Nano, f.Get("expirationTime").Str); err == nil {
				fb.Expires = exp
			}
			if err := h.Keyd.BindFile(ctx, fb); err != nil {
				h.log.Error("bind uploaded file", "file", fb.Name, "err", err)
			}
		}
	}
	out := c.Writer.Header()
	copyUploadHeaders(out, res.Header)
	ct := res.Header.Get("Content-Type")
	if ct == "" && len(body) > 0 {
		ct = "application/json; charset=UTF-8"
	}
	if ct != "" {
		out.Set("Content-Type", ct)
	}
	c.Writer.WriteHeader(res.StatusCode)
	_, _ = c.Writer.Write(body)
}

// listFiles lists the files bound to the client token (all files when
// FILES_USER_ISOLATION_ENABLED is off), from keyd's bindings.
func (h *handlers) listFiles(c *gin.Context) {
	rec := record(c, "gemini.files.list", "")
	q := keyapi.FileListRequest{Prefix: "files/", Limit: 1000}
	if h.Settings.Get().FilesUserIsolation {
		q.TokenID = rec.TokenID
	}
	list, err := h.Keyd.ListBindings(c.Request.Context(), q)
	if err != nil {
		relay.WriteError(c.Writer, http.StatusServiceUnavailable, "the file index is unavailable, try again shortly")
		return
	}
	now := time.Now()
	files := list[:0]
	for _, f := range list {
		// Caches, batches and operations share the bindings; a keyd that
		// ignores the prefix must not leak them into the files list.
		if strings.HasPrefix(f.Name, "files/") && (f.Expires.IsZero() || f.Expires.After(now)) {
			files = append(files, f)
		}
	}
	size, _ := strconv.Atoi(c.Query("pageSize"))
	if size <= 0 || size > 100 {
		size = 10
	}
	off, _ := strconv.Atoi(c.Query("pageToken"))
	off = max(0, min(off, len(files)))
	end := min(off+size, len(files))
	var out bytes.Buffer
	out.WriteString(`{"files":[`)
	for i, f := range files[off:end] {
		if i > 0 {
			out.WriteByte(',')
		}
		if len(f.Metadata) > 0 {
			out.Write(f.Metadata)
		} else {
			out.WriteString(`{"name":"` + f.Name + `"}`)
		}
	}
	out.WriteByte(']')
	if end < len(files) {
		out.WriteString(`,"nextPageToken":"` + strconv.Itoa(end) + `"`)
	}
	out.WriteByte('}')
	c.Data(http.StatusOK, "application/json; charset=UTF-8", out.Bytes())
}

// fileBinding finds a file's binding and checks the client may see it.
func (h *handlers) fileBinding(c *gin.Context, rec *events.Record) (bus.FileBinding, bool) {
	return h.fileBindingOf(c, rec, c.Param("id"))
}

func (h *handlers) fileBindingOf(c *gin.Context, rec *events.Record, id string) (bus.FileBinding, bool) {
	b, err := h.Keyd.LookupFile(c.Request.Context(), keyapi.FileQuery{Name: "files/" + id})
	if err == nil && !files.Owns(b, rec.TokenID, h.Settings.Get().FilesUserIsolation) {
		err = bus.ErrNotFound
	}
	if err != nil {
		// Google's own answer for a file that is not yours or does not exist.
		relay.WriteError(c.Writer, http.StatusForbidden, "You do not have permission to access the File "+id+" or it may not exist.")
		return b, false
	}
	return b, true
}

func (h *handlers) getFile(version string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if id, ok := strings.CutSuffix(c.Param("id"), ":download"); ok {
			h.download(c, version, id)
			return
		}
		rec := record(c, "gemini.files.get", "")
		b, ok := h.fileBinding(c, rec)
		if !ok {
			return
		}
		resp := h.Relay.Do(c.Request.Context(), &relay.Request{Route: rec.Route, Method: http.MethodGet, PinKeyID: b.KeyID,
			Path: "/" + version + "/files/" + c.Param("id"), Query: relay.QueryWithoutKey(c.Request.URL.RawQuery)})
		if resp.OK() && guard.Valid(resp.Body) {
			b.Metadata = append([]byte(nil), bytes.TrimSpace(resp.Body)...)
			if err := h.Keyd.BindFile(c.Request.Context(), b); err != nil {
				h.log.Warn("refresh file binding", "file", b.Name, "err", err)
			}
		}
		writeResponse(c, resp)
	}
}

func (h *handlers) deleteFile(version string) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := record(c, "gemini.files.delete", "")
		b, ok := h.fileBinding(c, rec)
		if !ok {
			return
		}
		resp := h.Relay.Do(c.Request.Context(), &relay.Request{Route: rec.Route, Method: http.MethodDelete, PinKeyID: b.KeyID,
			Path: "/" + version + "/files/" + c.Param("id"), Query: relay.QueryWithoutKey(c.Request.URL.RawQuery)})
		if resp.OK() || resp.Status == http.StatusNotFound {
			if err := h.Keyd.DeleteFile(c.Request.Context(), keyapi.FileQuery{Name: b.Name}); err != nil {
				h.log.Warn("forget file binding", "file", b.Name, "err", err)
			}
		}
		writeResponse(c, resp)
	}
}

// download serves files/{id}:download (?alt=media): the file's bytes from the
// key that holds it (an upload, a batch's output, a generated video),
// streamed through without holding them. Failover is impossible: no other
// key can read the file.
func (h *handlers) download(c *gin.Context, version, id string) {
	rec := record(c, "gemini.files.download", "")
	ctx := c.Request.Context()
	b, ok := h.fileBindingOf(c, rec, id)
	if !ok {
		return
	}
	rep, err := h.Keyd.Acquire(ctx, bus.AcquireRequest{Kind: bus.KindGemini, KeyID: b.KeyID})
	if err != nil {
		relay.WriteError(c.Writer, http.StatusServiceUnavailable, "the key service is unavailable, try again shortly")
		return
	}
	if rep.ID == "" {
		status, msg := http.StatusServiceUnavailable, "the upstream key that holds "+b.Name+" is disabled or was removed; no other key can read it"
		if rep.NoKey == bus.NoKeyAllCooling {
			status, msg = http.StatusTooManyRequests, "the upstream key that holds "+b.Name+" is cooling down after rate limits; retry later"
		}
		relay.WriteError(c.Writer, status, msg)
		return
	}
	rec.Attempts, rec.KeyID, rec.KeyHint, rec.KeyKind = 1, rep.ID, rep.Hint, bus.KindGemini
	q := relay.QueryWithoutKey(c.Request.URL.RawQuery)
	if q == "" {
		q = "alt=media"
	}
	u := h.Settings.Get().BaseURL + "/" + version + "/files/" + url.PathEscape(id) + ":download?" + q
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		relay.WriteError(c.Writer, http.StatusBadRequest, "bad file id")
		return
	}
	if r := c.GetHeader("Range"); r != "" {
		hreq.Header.Set("Range", r)
	}
	res, err := h.Relay.Send(ctx, rep.Secret, rep.ID, hreq)
	if err != nil {
		class := outcome.ConnError
		if ctx.Err() != nil {
			class = outcome.Canceled
		}
		h.Keyd.Report(bus.Report{ID: rep.ID, Class: string(class), Status: http.StatusBadGateway})
		relay.WriteError(c.Writer, http.StatusBadGateway, "upstream download failed")
		return
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		v := outcome.Classify(res.StatusCode, body)
		h.Keyd.Report(bus.Report{ID: rep.ID, Class: string(v.Class), Status: res.StatusCode, Reason: v.Reason, RetryDelay: v.RetryDelay.Milliseconds()})
		rec.Class = string(v.Class)
		writeResponse(c, &relay.Response{Status: res.StatusCode, Header: res.Header, Body: relay.Scrub(ctx, body, rep.Secret), Class: v.Class})
		return
	}
	h.Keyd.Report(bus.Report{ID: rep.ID, Class: string(outcome.Success), Status: res.StatusCode})
	rec.Class = string(outcome.Success)
	out := c.Writer.Header()
	for _, k := range []string{"Content-Type", "Content-Length", "Content-Disposition", "Content-Range", "Accept-Ranges", "Etag", "Last-Modified"} {
		if v := res.Header.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	rec.MarkFirstByte()
	c.Writer.WriteHeader(res.StatusCode)
	_, _ = io.Copy(c.Writer, res.Body)
}
