package fakegemini

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The key-affine resources: context caches, batches and long-running
// operations. Each belongs to the key that created it, as on Google (the key's
// Cloud project): another key gets 403 PERMISSION_DENIED and never learns
// whether the resource exists, and lists show only the caller's own. Batches
// and operations finish on their first poll, so a test sees both states.
type resource struct {
	owner   string
	obj     map[string]any
	created time.Time
	expire  time.Time // caches
	polls   int
	// batch input, answered on completion
	model    string
	requests []any
	embed    bool
}

// ResourceOwner reports which key created a cache, batch or operation
// ("cachedContents/x", "batches/y", "models/m/operations/z").
func (s *Server) ResourceOwner(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.res[name]
	if !ok {
		return "", false
	}
	return r.owner, true
}

// resID is a resource id in [a-z0-9], the alphabet Google uses (the genai
// SDK reads a file id out of a download URI with ^[a-z0-9]+).
func resID(n int) string {
	const abc = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := []byte(newID(n))
	for i, c := range b {
		b[i] = abc[int(c)%len(abc)]
	}
	return string(b)
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// lookupRes finds name for key; a missing or foreign resource is one answer.
func (s *Server) lookupRes(key, name string) (*resource, bool) {
	r, ok := s.res[name]
	if !ok || r.owner != key || (!r.expire.IsZero() && time.Now().After(r.expire)) {
		return nil, false
	}
	return r, true
}

func denied(what string) Behaviour {
	return Behaviour{Message: what + " not found (or permission denied)"}
}

// fileDenied is Google's answer to a file that is missing or another key's.
func fileDenied(id string) Behaviour {
	return Behaviour{Message: fmt.Sprintf("You do not have permission to access the File %s or it may not exist.", id)}
}

// route starts a resource call. method "" is a verb the path does not
// take: 404, as on Google.
func (s *Server) route(w http.ResponseWriter, r *http.Request, method string) (*Request, bool) {
	if method == "" {
		s.notFound(w, r)
		return nil, false
	}
	req, _, ok := s.begin(w, r, method, "")
	return req, ok
}

// onlyGet is method for a GET and "" (404) for any other verb.
func onlyGet(r *http.Request, method string) string {
	if r.Method != http.MethodGet {
		return ""
	}
	return method
}

// ownedLocked locks s.mu and finds the caller's resource; a missing or
// foreign one unlocks and answers 403, the same for both. On success the
// caller holds s.mu.
func (s *Server) ownedLocked(w http.ResponseWriter, req *Request, name, what string) (*resource, bool) {
	s.mu.Lock()
	res, ok := s.lookupRes(req.Key, name)
	if !ok {
		s.mu.Unlock()
		s.finish(req, writeError(w, PermissionDenied, denied(what), ""), false)
		return nil, false
	}
	return res, true
}

// answerLocked encodes v while s.mu still guards it, unlocks and answers
// 200 with the compact JSON.
func (s *Server) answerLocked(w http.ResponseWriter, req *Request, v any) {
	body, _ := json.Marshal(v)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(body)
	s.finish(req, 200, false)
}

// serveCaches handles /{ver}/cachedContents[/{id}].
func (s *Server) serveCaches(w http.ResponseWriter, r *http.Request, id string) {
	method := map[string]string{http.MethodGet: "cachedContents.get", http.MethodPatch: "cachedContents.patch", http.MethodDelete: "cachedContents.delete"}[r.Method]
	if id == "" {
		method = map[string]string{http.MethodGet: "cachedContents.list", http.MethodPost: "cachedContents.create"}[r.Method]
	}
	req, ok := s.route(w, r, method)
	if !ok {
		return
	}
	var body map[string]any
	if len(strings.TrimSpace(string(req.Body))) > 0 {
		if err := json.Unmarshal(req.Body, &body); err != nil {
			s.finish(req, writeError(w, BadRequest, Behaviour{Message: "Invalid JSON payload received. " + err.Error()}, ""), false)
			return
		}
	}
	now := time.Now()
	switch method {
	case "cachedContents.list":
		s.writeList(w, r, req, "cachedContents/", "cachedContents")
		return
	case "cachedContents.create":
		model, _ := body["model"].(string)
		if model == "" {
			s.finish(req, writeError(w, BadRequest, Behaviour{Message: "CachedContent.model is required."}, ""), false)
			return
		}
		if !strings.HasPrefix(model, "models/") {
			model = "models/" + model
		}
		if fid, bad := s.foreignFile(req.Key, body); bad {
			s.finish(req, writeError(w, PermissionDenied, fileDenied(fid), ""), false)
			return
		}
		exp, err := expiry(body, now, now.Add(time.Hour))
		if err != nil {
			s.finish(req, writeError(w, BadRequest, Behaviour{Message: err.Error()}, ""), false)
			return
		}
		name := "cachedContents/" + resID(12)
		obj := map[string]any{"name": name, "model": model, "createTime": stamp(now), "updateTime": stamp(now), "expireTime": stamp(exp),
			"usageMetadata": map[string]any{"totalTokenCount": countTokens(body)}}
		if d, ok := body["displayName"]; ok {
			obj["displayName"] = d
		}
		s.mu.Lock()
		s.res[name] = &resource{owner: req.Key, obj: obj, created: now, expire: exp}
		s.mu.Unlock()
		writeJSON(w, obj)
		s.finish(req, 200, false)
		return
	}
	name := "cachedContents/" + id
	res, ok := s.ownedLocked(w, req, name, "CachedContent")
	if !ok {
		return
	}
	switch method {
	case "cachedContents.delete":
		delete(s.res, name)
		s.mu.Unlock()
		writeJSON(w, map[string]any{})
	case "cachedContents.patch":
		exp, err := expiry(body, now, res.expire)
		if err != nil {
			s.mu.Unlock()
			s.finish(req, writeError(w, BadRequest, Behaviour{Message: err.Error()}, ""), false)
			return
		}
		res.expire = exp
		res.obj["expireTime"], res.obj["updateTime"] = stamp(exp), stamp(now)
		obj := res.obj
		s.mu.Unlock()
		writeJSON(w, obj)
	default:
		obj := res.obj
		s.mu.Unlock()
		writeJSON(w, obj)
	}
	s.finish(req, 200, false)
}

// expiry reads ttl ("300s") or expireTime (RFC 3339) from a cache body.
func expiry(body map[string]any, now, def time.Time) (time.Time, error) {
	if ttl, ok := body["ttl"].(string); ok {
		d, err := time.ParseDuration(ttl)
		if err != nil || !strings.HasSuffix(ttl, "s") || d <= 0 {
			return time.Time{}, fmt.Errorf("Invalid value at 'cached_content.ttl' (type.googleapis.com/google.protobuf.Duration), Field 'ttl', Illegal duration format; duration must end with 's'")
		}
		return now.Add(d), nil
	}
	if et, ok := body["expireTime"].(string); ok {
		t, err := time.Parse(time.RFC3339Nano, et)
		if err != nil {
			return time.Time{}, fmt.Errorf("Invalid value at 'cached_content.expire_time' (type.googleapis.com/google.protobuf.Timestamp), Field 'expireTime', Invalid time format: %v", err)
		}
		return t, nil
	}
	return def, nil
}

// writeList answers a list of the caller's resources under prefix.
func (s *Server) writeList(w http.ResponseWriter, r *http.Request, req *Request, prefix, field string) {
	s.mu.Lock()
	var list []*resource
	for name, res := range s.res {
		if strings.HasPrefix(name, prefix) && res.owner == req.Key && (res.expire.IsZero() || time.Now().Before(res.expire)) {
			list = append(list, res)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].created.After(list[j].created) })
	size, _ := strconv.Atoi(r.URL.Query().Get("pageSize"))
	if size <= 0 {
		size = 10
	}
	start, _ := strconv.Atoi(r.URL.Query().Get("pageToken"))
	start = min(max(start, 0), len(list))
	end := min(start+size, len(list))
	out := map[string]any{}
	objs := []any{}
	for _, res := range list[start:end] {
		objs = append(objs, res.obj)
	}
	if len(objs) > 0 {
		out[field] = objs
	}
	if end < len(list) {
		out["nextPageToken"] = strconv.Itoa(end)
	}
	s.answerLocked(w, req, out)
}

// cachedContentCheck applies a generate call's cachedContent: it must be the
// caller's, and the request may not also set systemInstruction, tools or
// toolConfig. It returns the cached token count, or the error already written.
func (s *Server) cachedContentCheck(w http.ResponseWriter, req *Request, body map[string]any, model string) (int, bool) {
	name, _ := field2(body, "cachedContent", "cached_content").(string)
	if name == "" {
		return 0, true
	}
	for _, k := range []string{"systemInstruction", "system_instruction", "tools", "toolConfig", "tool_config"} {
		if _, ok := body[k]; ok {
			s.finish(req, writeError(w, BadRequest, Behaviour{Message: "CachedContent can not be used with GenerateContent request setting system_instruction, tools or tool_config.\n\nProposed fix: move those values to CachedContent from GenerateContent request."}, model), false)
			return 0, false
		}
	}
	s.mu.Lock()
	res, ok := s.lookupRes(req.Key, name)
	n := 0
	if ok {
		if u, _ := res.obj["usageMetadata"].(map[string]any); u != nil {
			n, _ = u["totalTokenCount"].(int)
		}
	}
	s.mu.Unlock()
	if !ok {
		s.finish(req, writeError(w, PermissionDenied, denied("CachedContent"), model), false)
		return 0, false
	}
	return n, true
}

const (
	batchType = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch"
	embedType = "type.googleapis.com/google.ai.generativelanguage.v1beta.EmbedContentBatch"
	videoType = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
)

// createBatch serves models/{m}:batchGenerateContent and :asyncBatchEmbedContent.
func (s *Server) createBatch(w http.ResponseWriter, r *http.Request, req *Request, model string, body map[string]any, embed bool) {
	batch := field(body, "batch")
	if batch == nil {
		s.finish(req, writeError(w, BadRequest, Behaviour{Message: "batch is required."}, model), false)
		return
	}
	in := field(batch, "inputConfig", "input_config")
	var reqs []any
	if in != nil {
		if fn, _ := field2(in, "fileName", "file_name").(string); fn != "" {
			id := strings.TrimPrefix(fn, "files/")
			s.mu.Lock()
			f, ok := s.files[id]
			var data []byte
			if ok && f.owner == req.Key {
				data = f.data
			}
			s.mu.Unlock()
			if !ok || f.owner != req.Key {
				s.finish(req, writeError(w, PermissionDenied, fileDenied(id), model), false)
				return
			}
			for _, line := range strings.Split(string(data), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil {
					reqs = append(reqs, m)
				}
			}
		} else if rq := field(in, "requests"); rq != nil {
			reqs, _ = rq["requests"].([]any)
		}
	}
	if len(reqs) == 0 {
		s.finish(req, writeError(w, BadRequest, Behaviour{Message: "Batch input is empty: set inputConfig.requests or inputConfig.fileName."}, model), false)
		return
	}
	if fid, bad := s.foreignFile(req.Key, body); bad {
		s.finish(req, writeError(w, PermissionDenied, fileDenied(fid), model), false)
		return
	}
	now := time.Now()
	name := "batches/" + resID(14)
	typ := batchType
	if embed {
		typ = embedType
	}
	meta := map[string]any{"@type": typ, "model": "models/" + model, "state": "BATCH_STATE_PENDING",
		"createTime": stamp(now), "updateTime": stamp(now),
		"batchStats": map[string]any{"requestCount": strconv.Itoa(len(reqs)), "pendingRequestCount": strconv.Itoa(len(reqs))}}
	if d, ok := batch["displayName"]; ok {
		meta["displayName"] = d
	}
	obj := map[string]any{"name": name, "metadata": meta}
	s.mu.Lock()
	s.res[name] = &resource{owner: req.Key, obj: obj, created: now, model: model, requests: reqs, embed: embed}
	s.mu.Unlock()
	writeJSON(w, obj)
	s.finish(req, 200, false)
}

// finishBatch completes a pending batch with one answer per request, in order.
func (s *Server) finishBatch(res *resource) {
	meta := res.obj["metadata"].(map[string]any)
	if meta["state"] != "BATCH_STATE_PENDING" {
		return
	}
	now := time.Now()
	var out []any
	for _, e := range res.requests {
		m, _ := e.(map[string]any)
		one := map[string]any{}
		if md, ok := m["metadata"]; ok {
			one["metadata"] = md
		} else if k, ok := m["key"]; ok {
			one["metadata"] = map[string]any{"key": k}
		}
		inner := field(m, "request")
		if res.embed {
			one["response"] = map[string]any{"embedding": map[string]any{"values": embed(texts(inner["content"]), dims(inner))}}
		} else {
			one["response"] = merge(s.buildChunks(res.model, inner, Reply{Parts: []Part{Text("echo: " + lastUserText(inner))}}))
		}
		out = append(out, one)
	}
	n := strconv.Itoa(len(out))
	meta["state"], meta["updateTime"], meta["endTime"] = "BATCH_STATE_SUCCEEDED", stamp(now), stamp(now)
	meta["batchStats"] = map[string]any{"requestCount": n, "successfulRequestCount": n}
	meta["output"] = map[string]any{"inlinedResponses": map[string]any{"inlinedResponses": out}}
	res.obj["done"] = true
}

// serveBatches handles /{ver}/batches, batches/{id} (GET, DELETE) and
// batches/{id}:cancel (POST).
func (s *Server) serveBatches(w http.ResponseWriter, r *http.Request, id string) {
	method := ""
	switch {
	case id == "" && r.Method == http.MethodGet:
		method = "batches.list"
	case strings.HasSuffix(id, ":cancel") && r.Method == http.MethodPost:
		method, id = "batches.cancel", strings.TrimSuffix(id, ":cancel")
	case id != "" && !strings.Contains(id, ":") && r.Method == http.MethodGet:
		method = "batches.get"
	case id != "" && !strings.Contains(id, ":") && r.Method == http.MethodDelete:
		method = "batches.delete"
	}
	req, ok := s.route(w, r, method)
	if !ok {
		return
	}
	if method == "batches.list" {
		s.writeList(w, r, req, "batches/", "operations")
		return
	}
	name := "batches/" + id
	res, ok := s.ownedLocked(w, req, name, "Batch")
	if !ok {
		return
	}
	var out any = map[string]any{}
	switch method {
	case "batches.delete":
		delete(s.res, name)
	case "batches.cancel":
		meta := res.obj["metadata"].(map[string]any)
		if meta["state"] == "BATCH_STATE_PENDING" {
			meta["state"], meta["updateTime"] = "BATCH_STATE_CANCELLED", stamp(time.Now())
			res.obj["done"] = true
		}
	default:
		res.polls++
		s.finishBatch(res)
		out = res.obj
	}
	s.answerLocked(w, req, out)
}

// predictLongRunning starts a video operation owned by the key.
func (s *Server) predictLongRunning(w http.ResponseWriter, r *http.Request, req *Request, model string, body map[string]any) {
	inst, _ := body["instances"].([]any)
	if len(inst) == 0 {
		s.finish(req, writeError(w, BadRequest, Behaviour{Message: "instances is required."}, model), false)
		return
	}
	name := "models/" + model + "/operations/" + resID(12)
	obj := map[string]any{"name": name}
	s.mu.Lock()
	s.res[name] = &resource{owner: req.Key, obj: obj, created: time.Now(), model: model, requests: inst}
	s.mu.Unlock()
	writeJSON(w, obj)
	s.finish(req, 200, false)
}

// serveOperation polls an operation: the first poll finishes it with one video
// file per instance, owned by the operation's key and downloadable with it.
func (s *Server) serveOperation(w http.ResponseWriter, r *http.Request, name string) {
	req, ok := s.route(w, r, onlyGet(r, "operations.get"))
	if !ok {
		return
	}
	res, ok := s.ownedLocked(w, req, name, "Operation")
	if !ok {
		return
	}
	res.polls++
	if res.obj["done"] == nil {
		var samples []any
		now := time.Now().UTC()
		for i, e := range res.requests {
			m, _ := e.(map[string]any)
			prompt, _ := m["prompt"].(string)
			id := resID(12)
			data := []byte(fmt.Sprintf("fake-mp4 %d: %s", i, prompt))
			uri := scheme(r) + "://" + r.Host + "/v1beta/files/" + id + ":download?alt=media"
			s.files[id] = &fileRec{owner: res.owner, data: data, file: File{Name: "files/" + id, MIMEType: "video/mp4", SizeBytes: int64(len(data)),
				CreateTime: stamp(now), UpdateTime: stamp(now), ExpirationTime: stamp(now.Add(48 * time.Hour)),
				URI: scheme(r) + "://" + r.Host + "/v1beta/files/" + id, State: "ACTIVE", Source: "GENERATED"}}
			samples = append(samples, map[string]any{"video": map[string]any{"uri": uri}})
		}
		res.obj["done"] = true
		res.obj["response"] = map[string]any{"@type": videoType, "generateVideoResponse": map[string]any{"generatedSamples": samples}}
	}
	s.answerLocked(w, req, res.obj)
}

// serveDownload answers files/{id}:download with the raw bytes, owner key only.
func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request, id string) {
	req, ok := s.route(w, r, onlyGet(r, "files.download"))
	if !ok {
		return
	}
	s.mu.Lock()
	f, ok := s.files[id]
	s.mu.Unlock()
	if !ok || f.owner != req.Key {
		s.finish(req, writeError(w, PermissionDenied, fileDenied(id), ""), false)
		return
	}
	w.Header().Set("Content-Type", f.file.MIMEType)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	_, _ = w.Write(f.data)
	s.finish(req, 200, false)
}
