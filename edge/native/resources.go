package native

// One concern, kept whole: the key-affine resources (caches, batches, operations) and their key bindings.

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/gemini-balance-go/edge/events"
	"github.com/gemini-balance-go/edge/files"
	"github.com/gemini-balance-go/edge/models"
	"github.com/gemini-balance-go/edge/relay"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/keyapi"
)

// Key-affine resources: context caches, batches and long-running operations
// live in the Cloud project of the key that created them, exactly like an
// uploaded file, so they reuse the file bindings in keyd (name → key, client
// token). A create may go to any key (with failover before the first byte);
// its answer is bound to the key that made it and to the client token. Every
// later call naming the resource is pinned to that key, with no failover, and
// answered 403 for any other client token, whatever FILES_USER_ISOLATION_ENABLED
// says: a cache or a batch holds the creator's data. When the owning key is
// disabled or deleted the resource cannot be reached through another key:
// the answer says so (503, or 429 while it cools down) instead of trying one.

// resourceKind describes one family of resources.
type resourceKind struct {
	prefix    string // binding name prefix, "cachedContents/"
	route     string // request event route stem, "gemini.cachedContents"
	listField string // the list answer's array field
}

var (
	cacheKind = resourceKind{prefix: "cachedContents/", route: "gemini.cachedContents", listField: "cachedContents"}
	batchKind = resourceKind{prefix: "batches/", route: "gemini.batches", listField: "operations"}
	opKind    = resourceKind{prefix: "", route: "gemini.operations"}
)

// creates are the model methods whose answer names a new key-affine resource.
var creates = map[string]bool{"batchGenerateContent": true, "asyncBatchEmbedContent": true, "predictLongRunning": true}

// registerResources mounts the cache, batch and operation routes on g.
func (h *handlers) registerResources(g gin.IRouter, version string) {
	g.POST("/cachedContents", h.createCache(version))
	g.GET("/cachedContents", h.listResources(cacheKind, version))
	g.GET("/cachedContents/:id", h.getResource(cacheKind, version))
	g.PATCH("/cachedContents/:id", h.patchCache(version))
	g.DELETE("/cachedContents/:id", h.deleteResource(cacheKind, version))
	g.GET("/batches", h.listResources(batchKind, version))
	g.GET("/batches/:id", h.getResource(batchKind, version))
	g.POST("/batches/:id", h.cancelBatch(version))
	g.DELETE("/batches/:id", h.deleteResource(batchKind, version))
	g.GET("/models/:model/operations/:op", h.getOperation(version))
	g.GET("/operations/:op", h.getOperation(version))
}

// notYours is the answer for a resource of another client token or one the
// gateway does not know: the two are not told apart, as Google does not.
func notYours(c *gin.Context, name string) {
	relay.WriteError(c.Writer, http.StatusForbidden, "You do not have permission to access "+name+" or it may not exist.")
}

// owned finds the binding of name and checks that the client token created
// it; otherwise the answer is written and ok is false.
func (h *handlers) owned(c *gin.Context, rec *events.Record, name string) (bus.FileBinding, bool) {
	b, err := h.Keyd.LookupFile(c.Request.Context(), keyapi.FileQuery{Name: name})
	switch {
	case errors.Is(err, bus.ErrNotFound):
		notYours(c, name)
		return b, false
	case err != nil:
		h.log.Error("look up resource binding", "name", name, "err", err)
		relay.WriteError(c.Writer, http.StatusServiceUnavailable, "the resource index is unavailable, try again shortly")
		return b, false
	case b.TokenID == "" || b.TokenID != rec.TokenID:
		notYours(c, name)
		return b, false
	}
	return b, true
}

// pinnedAnswer rewrites a local "no key" answer of a pinned call so that it
// names the real cause: the one key that holds the resource is unusable.
func pinnedAnswer(resp *relay.Response, name string) *relay.Response {
	if !resp.Local || resp.NoKey == "" {
		return resp
	}
	out := *resp
	if resp.NoKey == bus.NoKeyAllCooling {
		out.Body = relay.ErrorBody(resp.Status, "the upstream key that holds "+name+" is cooling down after rate limits; retry in "+
			strconv.Itoa(int(resp.RetryAfter.Round(time.Second)/time.Second))+"s (no other key can reach it)")
		return &out
	}
	out.Status = http.StatusServiceUnavailable
	out.Body = relay.ErrorBody(out.Status, "the upstream key that holds "+name+" is disabled or was removed; "+
		"no other key can reach it (re-enable that key, or create the resource again)")
	return &out
}

// pinned relays one call to the key that owns b.
func (h *handlers) pinned(ctx context.Context, rec *events.Record, b bus.FileBinding, method, path, query string, body []byte) *relay.Response {
	resp := h.Relay.Do(ctx, &relay.Request{Route: rec.Route, Method: method, PinKeyID: b.KeyID, Path: path,
		Query: query, Body: body})
	return pinnedAnswer(resp, b.Name)
}

// bind records a created resource with its key and client token. On failure
// the resource is deleted upstream again so nothing is left that no call
// could reach, and false is returned with the answer written.
func (h *handlers) bind(c *gin.Context, b bus.FileBinding, undoPath string) bool {
	err := h.Keyd.BindFile(c.Request.Context(), b)
	if err == nil {
		return true
	}
	h.log.Error("bind created resource", "name", b.Name, "err", err)
	if undoPath != "" {
		rec := events.From(c.Request.Context())
		_ = h.Relay.Do(context.WithoutCancel(c.Request.Context()), &relay.Request{Route: rec.Route, Method: http.MethodDelete, PinKeyID: b.KeyID, Path: undoPath})
	}
	relay.WriteError(c.Writer, http.StatusServiceUnavailable, "could not record "+b.Name+" with its key; it was not kept, try again")
	return false
}

// refresh stores a resource's latest upstream JSON in its binding, and binds
// the files it produced (batch output, generated videos) to the same key and
// client token so they can be downloaded.
func (h *handlers) refresh(ctx context.Context, b bus.FileBinding, body []byte) {
	if !gjson.ValidBytes(body) {
		return
	}
	b.Metadata = append([]byte(nil), bytes.TrimSpace(body)...)
	if err := h.Keyd.BindFile(ctx, b); err != nil {
		h.log.Warn("refresh resource binding", "name", b.Name, "err", err)
	}
	var made []string
	for _, p := range []string{"metadata.output.responsesFile", "response.responsesFile"} {
		if f := gjson.GetBytes(body, p).Str; strings.HasPrefix(f, "files/") {
			made = append(made, f)
		}
	}
	if gjson.GetBytes(body, "response").Exists() {
		refs, _ := files.Refs([]byte(gjson.GetBytes(body, "response").Raw), h.Settings.Get().BaseURL)
		made = append(made, refs...)
	}
	for _, f := range made {
		if _, err := h.Keyd.LookupFile(ctx, keyapi.FileQuery{Name: f}); err == nil {
			continue
		}
		if err := h.Keyd.BindFile(ctx, bus.FileBinding{Name: f, KeyID: b.KeyID, TokenID: b.TokenID, Created: time.Now().UTC()}); err != nil {
			h.log.Warn("bind produced file", "file", f, "err", err)
		}
	}
}

// createCache serves POST cachedContents: any key (failover before the first
// byte), or the key of the files the cache content names.
func (h *handlers) createCache(version string) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := record(c, cacheKind.route+".create", "")
		body, ok := readBody(c)
		if !ok {
			return
		}
		if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
			relay.WriteError(c.Writer, http.StatusBadRequest, "invalid request body: a cachedContent JSON object is required")
			return
		}
		st := h.Settings.Get()
		var model string
		if mr := gjson.GetBytes(body, "model"); mr.Type == gjson.String {
			model = strings.TrimPrefix(mr.Str, "models/")
		}
		if model == "" {
			relay.WriteError(c.Writer, http.StatusBadRequest, "cachedContent.model is required")
			return
		}
		m := resolveAllowed(c, model, st)
		if m == nil {
			return
		}
		rec.Model = m.Requested
		pin, deny := files.Check(c.Request.Context(), h.Keyd, body, files.Options{TokenID: rec.TokenID, Isolation: st.FilesUserIsolation, BaseURL: st.BaseURL})
		if deny != nil {
			relay.WriteError(c.Writer, deny.Status, deny.Message)
			return
		}
		if m.Upstream != model {
			body = RewriteModelField(body, *m)
		}
		resp := h.Relay.Do(c.Request.Context(), &relay.Request{Route: rec.Route, ErrorType: "gemini-cached-contents", Model: m.Upstream,
			PinKeyID: pin, Path: "/" + version + "/cachedContents", Query: relay.QueryWithoutKey(c.Request.URL.RawQuery), Body: body})
		if pin != "" {
			resp = pinnedAnswer(resp, "the referenced files")
		}
		if resp.OK() {
			name := gjson.GetBytes(resp.Body, "name").Str
			if !strings.HasPrefix(name, cacheKind.prefix) {
				relay.WriteError(c.Writer, http.StatusBadGateway, "upstream created a cache without a name")
				return
			}
			b := bus.FileBinding{Name: name, KeyID: resp.Key.ID, TokenID: rec.TokenID, Created: time.Now().UTC(),
				Metadata: append([]byte(nil), bytes.TrimSpace(resp.Body)...)}
			b.Expires, _ = time.Parse(time.RFC3339Nano, gjson.GetBytes(resp.Body, "expireTime").Str)
			if !h.bind(c, b, "/"+version+"/"+name) {
				return
			}
		}
		writeResponse(c, resp)
	}
}

// listResources lists the client token's own resources of one kind from
// keyd's bindings, paged like Google (pageSize, pageToken). Batches that are
// not done yet are refreshed from upstream on their own keys first.
func (h *handlers) listResources(k resourceKind, version string) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := record(c, k.route+".list", "")
		ctx := c.Request.Context()
		list, err := h.Keyd.ListBindings(ctx, keyapi.FileListRequest{TokenID: rec.TokenID, Prefix: k.prefix, Owned: true, Limit: 1000})
		if err != nil {
			relay.WriteError(c.Writer, http.StatusServiceUnavailable, "the resource index is unavailable, try again shortly")
			return
		}
		now := time.Now()
		kept := list[:0]
		for _, b := range list {
			if strings.HasPrefix(b.Name, k.prefix) && b.TokenID == rec.TokenID && (b.Expires.IsZero() || b.Expires.After(now)) {
				kept = append(kept, b)
			}
		}
		size, _ := strconv.Atoi(c.Query("pageSize"))
		if size <= 0 || size > 100 {
			size = 10
		}
		off, _ := strconv.Atoi(c.Query("pageToken"))
		off = max(0, min(off, len(kept)))
		end := min(off+size, len(kept))
		var out bytes.Buffer
		out.WriteString(`{"` + k.listField + `":[`)
		for i, b := range kept[off:end] {
			if k == batchKind && !gjson.GetBytes(b.Metadata, "done").Bool() {
				resp := h.Relay.Do(ctx, &relay.Request{Route: rec.Route, Method: http.MethodGet, PinKeyID: b.KeyID, Path: "/" + version + "/" + b.Name})
				if resp.OK() {
					h.refresh(ctx, b, resp.Body)
					b.Metadata = resp.Body
				}
			}
			if i > 0 {
				out.WriteByte(',')
			}
			if len(b.Metadata) > 0 && gjson.ValidBytes(b.Metadata) {
				out.Write(bytes.TrimSpace(b.Metadata))
			} else {
				out.WriteString(`{"name":` + strconv.Quote(b.Name) + `}`)
			}
		}
		out.WriteByte(']')
		if end < len(kept) {
			out.WriteString(`,"nextPageToken":"` + strconv.Itoa(end) + `"`)
		}
		out.WriteByte('}')
		c.Data(http.StatusOK, "application/json; charset=UTF-8", out.Bytes())
	}
}

// getResource serves GET cachedContents/{id} and batches/{id} on the owning key.
func (h *handlers) getResource(k resourceKind, version string) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := record(c, k.route+".get", "")
		name := k.prefix + c.Param("id")
		b, ok := h.owned(c, rec, name)
		if !ok {
			return
		}
		resp := h.pinned(c.Request.Context(), rec, b, http.MethodGet, "/"+version+"/"+name, relay.QueryWithoutKey(c.Request.URL.RawQuery), nil)
		if resp.OK() {
			h.refresh(c.Request.Context(), b, resp.Body)
		}
		writeResponse(c, resp)
	}
}

// patchCache serves PATCH cachedContents/{id} (only the expiry is mutable).
func (h *handlers) patchCache(version string) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := record(c, cacheKind.route+".patch", "")
		name := cacheKind.prefix + c.Param("id")
		body, ok := readBody(c)
		if !ok {
			return
		}
		b, ok := h.owned(c, rec, name)
		if !ok {
			return
		}
		resp := h.pinned(c.Request.Context(), rec, b, http.MethodPatch, "/"+version+"/"+name, relay.QueryWithoutKey(c.Request.URL.RawQuery), body)
		if resp.OK() {
			if exp, err := time.Parse(time.RFC3339Nano, gjson.GetBytes(resp.Body, "expireTime").Str); err == nil {
				b.Expires = exp
			}
			h.refresh(c.Request.Context(), b, resp.Body)
		}
		writeResponse(c, resp)
	}
}

// deleteResource serves DELETE cachedContents/{id} and batches/{id}; the
// binding goes when upstream deleted it or no longer has it.
func (h *handlers) deleteResource(k resourceKind, version string) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := record(c, k.route+".delete", "")
		name := k.prefix + c.Param("id")
		b, ok := h.owned(c, rec, name)
		if !ok {
			return
		}
		resp := h.pinned(c.Request.Context(), rec, b, http.MethodDelete, "/"+version+"/"+name, relay.QueryWithoutKey(c.Request.URL.RawQuery), nil)
		if resp.OK() || (!resp.Local && resp.Status == http.StatusNotFound) {
			if err := h.Keyd.DeleteFile(c.Request.Context(), keyapi.FileQuery{Name: name}); err != nil {
				h.log.Warn("forget resource binding", "name", name, "err", err)
			}
		}
		writeResponse(c, resp)
	}
}

// cancelBatch serves POST batches/{id}:cancel.
func (h *handlers) cancelBatch(version string) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := record(c, batchKind.route+".cancel", "")
		id, ok := strings.CutSuffix(c.Param("id"), ":cancel")
		if !ok || id == "" {
			relay.WriteError(c.Writer, http.StatusNotFound, "unknown method: POST "+c.Request.URL.Path)
			return
		}
		if _, ok := readBody(c); !ok {
			return
		}
		name := batchKind.prefix + id
		b, ok := h.owned(c, rec, name)
		if !ok {
			return
		}
		writeResponse(c, h.pinned(c.Request.Context(), rec, b, http.MethodPost, "/"+version+"/"+name+":cancel", relay.QueryWithoutKey(c.Request.URL.RawQuery), []byte("{}")))
	}
}

// getOperation serves GET models/{m}/operations/{id} and operations/{id} on
// the key that started the operation; a finished one's files (videos) are
// bound to that key and client token for files/{id}:download.
func (h *handlers) getOperation(version string) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := record(c, opKind.route+".get", "")
		name := "operations/" + c.Param("op")
		if m := c.Param("model"); m != "" {
			name = "models/" + m + "/" + name
			rec.Model = m
		}
		b, ok := h.owned(c, rec, name)
		if !ok {
			return
		}
		resp := h.pinned(c.Request.Context(), rec, b, http.MethodGet, "/"+version+"/"+name, relay.QueryWithoutKey(c.Request.URL.RawQuery), nil)
		if resp.OK() {
			h.refresh(c.Request.Context(), b, resp.Body)
		}
		writeResponse(c, resp)
	}
}

// bindCreated binds the resource a model method created (a batch or an
// operation) to its key and client token, and writes the answer.
func (h *handlers) bindCreated(c *gin.Context, resp *relay.Response, version string) {
	if resp.OK() {
		name := gjson.GetBytes(resp.Body, "name").Str
		if name == "" || strings.Contains(name, "..") {
			relay.WriteError(c.Writer, http.StatusBadGateway, "upstream started a job without a name")
			return
		}
		rec := events.From(c.Request.Context())
		undo := ""
		if strings.HasPrefix(name, batchKind.prefix) {
			undo = "/" + version + "/" + name
		}
		if !h.bind(c, bus.FileBinding{Name: name, KeyID: resp.Key.ID, TokenID: rec.TokenID, Created: time.Now().UTC(),
			Metadata: append([]byte(nil), bytes.TrimSpace(resp.Body)...)}, undo) {
			return
		}
	}
	writeResponse(c, resp)
}

// resolveAllowed resolves a model name and applies FILTERED_MODELS and the
// client token's allow-list; nil means the answer is written.
func resolveAllowed(c *gin.Context, name string, st *config.Settings) *models.Model {
	m := models.Resolve(name, st)
	if m.Filtered(st) {
		relay.WriteError(c.Writer, http.StatusNotFound, "models/"+m.Requested+" is not found or is not available on this gateway")
		return nil
	}
	if !allowModel(c, m) {
		return nil
	}
	return &m
}

// cacheRefs lists the distinct cachedContents a request body names
// (cachedContent or cached_content, at any depth: a batch's inline requests
// name theirs too). Escaped keys count as the upstream decodes them.
func cacheRefs(body []byte) []string {
	if !bytes.Contains(body, []byte("ached")) && !bytes.Contains(body, []byte(`\u`)) {
		return nil
	}
	var out []string
	var walk func(r gjson.Result, depth int)
	walk = func(r gjson.Result, depth int) {
		if depth > files.MaxDepth {
			return
		}
		r.ForEach(func(k, v gjson.Result) bool {
			switch {
			case v.Type == gjson.String && (k.Str == "cachedContent" || k.Str == "cached_content"):
				name := strings.TrimLeft(strings.TrimSpace(v.Str), "/")
				if i := strings.Index(name, cacheKind.prefix); i > 0 {
					name = name[i:]
				}
				if len(name) > len(cacheKind.prefix) && strings.HasPrefix(name, cacheKind.prefix) && !slices.Contains(out, name) {
					out = append(out, name)
				}
			case v.IsObject() || v.IsArray():
				walk(v, depth+1)
			}
			return true
		})
	}
	walk(gjson.ParseBytes(body), 0)
	return out
}

// affinity decides the key a model call must use: the key of every file it
// names (files.Check, FILES_USER_ISOLATION_ENABLED rules), of the caches it
// names (always the client token's own; one the gateway never bound goes
// unpinned) and of a batch's input file. All must
// agree; a mix of keys cannot be served. On a Denial nothing goes upstream.
func (h *handlers) affinity(ctx context.Context, body []byte, method, tokenID string, st *config.Settings) (string, *files.Denial) {
	o := files.Options{TokenID: tokenID, Isolation: st.FilesUserIsolation, BaseURL: st.BaseURL}
	pin, deny := files.Check(ctx, h.Keyd, body, o)
	if deny != nil {
		return "", deny
	}
	merge := func(key string) *files.Denial {
		switch {
		case key == "" || key == pin:
		case pin == "":
			pin = key
		default:
			return &files.Denial{Status: http.StatusBadRequest, Message: "the files and caches this request names belong to different upstream keys and cannot be used in one request"}
		}
		return nil
	}
	for _, p := range batchInputPaths[method] {
		if f := gjson.GetBytes(body, p); f.Type == gjson.String && f.Str != "" {
			name := "files/" + strings.TrimPrefix(strings.TrimSpace(f.Str), "files/")
			key, deny := files.CheckNames(ctx, h.Keyd, []string{name}, o)
			if deny != nil {
				return "", deny
			}
			if d := merge(key); d != nil {
				return "", d
			}
		}
	}
	for _, name := range cacheRefs(body) {
		b, err := h.Keyd.LookupFile(ctx, keyapi.FileQuery{Name: name})
		switch {
		case errors.Is(err, bus.ErrNotFound):
			// Not made through the gateway: no client token owns it and no
			// key is known, so the upstream judges (a wrong key fails there).
			continue
		case err == nil && (b.TokenID == "" || b.TokenID != tokenID):
			return "", &files.Denial{Status: http.StatusForbidden, Message: "You do not have permission to access " + name + " or it may not exist."}
		case err != nil:
			return "", &files.Denial{Status: http.StatusServiceUnavailable, Message: "the resource index is unavailable, try again shortly"}
		}
		if d := merge(b.KeyID); d != nil {
			return "", d
		}
	}
	return pin, nil
}

// batchInputPaths are where a batch create names its input file; other
// methods have none, and their (maybe large) bodies are not searched.
var batchInputPaths = func() map[string][]string {
	p := []string{"batch.inputConfig.fileName", "batch.input_config.file_name", "batch.inputConfig.file_name", "batch.input_config.fileName"}
	return map[string][]string{"batchGenerateContent": p, "asyncBatchEmbedContent": p}
}()

// cacheCompatible undoes injections a request that names a cachedContent
// cannot carry: Gemini refuses systemInstruction, tools and toolConfig beside
// a cache (they belong in the cache), so an injected search or code tool
// would turn a valid request into a 400. What the client sent stays.
func cacheCompatible(orig, injected []byte) []byte {
	for _, k := range []string{"tools", "toolConfig", "tool_config", "systemInstruction", "system_instruction"} {
		if !gjson.GetBytes(orig, k).Exists() && gjson.GetBytes(injected, k).Exists() {
			if next, err := sjson.DeleteBytes(injected, k); err == nil {
				injected = next
			}
		}
	}
	return injected
}
