package fakegemini

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

type fileRec struct {
	file  File
	owner string
	data  []byte
}

type uploadSession struct {
	owner string
	file  File
	buf   bytes.Buffer
}

// FileOwner reports which key uploaded files/<id> (id may carry the "files/" prefix).
func (s *Server) FileOwner(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[strings.TrimPrefix(id, "files/")]
	if !ok {
		return "", false
	}
	return f.owner, true
}

// foreignFile finds a fileData.fileUri in a generate request that names a file owned by
// another key: Google answers that with 403 PERMISSION_DENIED.
func (s *Server) foreignFile(key string, body map[string]any) (string, bool) {
	var uris []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if u, ok := e.(string); ok && (k == "fileUri" || k == "file_uri") {
					uris = append(uris, u)
				} else {
					walk(e)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(body)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uris {
		i := strings.Index(u, "/files/")
		if i < 0 {
			continue
		}
		id := u[i+len("/files/"):]
		if f, ok := s.files[id]; !ok || f.owner != key {
			return id, true
		}
	}
	return "", false
}

// serveUpload implements the resumable upload protocol: start → X-Goog-Upload-URL on this
// host; then chunks with "upload" / "upload, finalize".
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.notFound(w, r)
		return
	}
	uploadID := r.URL.Query().Get("upload_id")
	if uploadID == "" {
		s.startUpload(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	req := &Request{Key: apiKey(r), Method: "files.upload", HTTP: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
	s.record(req)
	s.mu.Lock()
	sess, ok := s.uploads[uploadID]
	s.mu.Unlock()
	if !ok {
		// The upload frontend answers in plain text, not JSON.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "Failed to find upload session.")
		s.finish(req, 404, false)
		return
	}
	cmd := r.Header.Get("X-Goog-Upload-Command")
	off, _ := strconv.ParseInt(r.Header.Get("X-Goog-Upload-Offset"), 10, 64)
	s.mu.Lock()
	if off != int64(sess.buf.Len()) {
		s.mu.Unlock()
		w.Header().Set("X-Goog-Upload-Status", "active")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, "Invalid offset %d, expected %d.", off, sess.buf.Len())
		s.finish(req, 400, false)
		return
	}
	sess.buf.Write(body)
	if !strings.Contains(cmd, "finalize") {
		s.mu.Unlock()
		w.Header().Set("X-Goog-Upload-Status", "active")
		w.WriteHeader(http.StatusOK)
		s.finish(req, 200, false)
		return
	}
	delete(s.uploads, uploadID)
	data := sess.buf.Bytes()
	f := sess.file
	f.SizeBytes = int64(len(data))
	sum := sha256.Sum256(data)
	f.Sha256Hash = base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(sum[:])))
	f.State = "ACTIVE"
	id := strings.TrimPrefix(f.Name, "files/")
	s.files[id] = &fileRec{file: f, owner: sess.owner, data: data}
	s.mu.Unlock()
	w.Header().Set("X-Goog-Upload-Status", "final")
	writeJSON(w, map[string]any{"file": f})
	s.finish(req, 200, false)
}

func (s *Server) startUpload(w http.ResponseWriter, r *http.Request) {
	req, _, ok := s.begin(w, r, "files.create", "")
	if !ok {
		return
	}
	var meta struct {
		File struct {
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
			MIMEType    string `json:"mimeType"`
		} `json:"file"`
	}
	// Google's upload front end rejects metadata that is not a JSON object.
	if len(bytes.TrimSpace(req.Body)) > 0 {
		if err := json.Unmarshal(req.Body, &meta); err != nil {
			s.finish(req, writeError(w, BadRequest, Behaviour{Message: "Invalid JSON payload received. " + err.Error()}, ""), false)
			return
		}
	}
	id := strings.TrimPrefix(meta.File.Name, "files/")
	if id == "" {
		id = strings.ToLower(newID(12))
	}
	s.mu.Lock()
	_, exists := s.files[id]
	s.mu.Unlock()
	if exists {
		s.finish(req, writeError(w, "", Behaviour{Message: "File already exists."}, ""), false)
		return
	}
	mime := r.Header.Get("X-Goog-Upload-Header-Content-Type")
	if mime == "" {
		mime = meta.File.MIMEType
	}
	if mime == "" {
		mime = "application/octet-stream"
	}
	now := time.Now().UTC()
	ts := func(t time.Time) string { return t.Format("2006-01-02T15:04:05.000000Z") }
	f := File{Name: "files/" + id, DisplayName: meta.File.DisplayName, MIMEType: mime,
		CreateTime: ts(now), UpdateTime: ts(now), ExpirationTime: ts(now.Add(48 * time.Hour)),
		URI: scheme(r) + "://" + r.Host + "/v1beta/files/" + id, State: "PROCESSING", Source: "UPLOADED"}
	uploadID := newID(40)
	s.mu.Lock()
	s.uploads[uploadID] = &uploadSession{owner: req.Key, file: f}
	s.mu.Unlock()
	w.Header().Set("X-Goog-Upload-URL", scheme(r)+"://"+r.Host+r.URL.Path+"?upload_id="+uploadID+"&upload_protocol=resumable")
	w.Header().Set("X-Goog-Upload-Status", "active")
	w.Header().Set("X-Goog-Upload-Chunk-Granularity", "8388608")
	w.Header().Set("X-GUploader-UploadID", uploadID)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	s.finish(req, 200, false)
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// serveFiles handles GET/DELETE /{ver}/files/{id} and GET /{ver}/files (list).
func (s *Server) serveFiles(w http.ResponseWriter, r *http.Request, id string) {
	method := map[string]string{http.MethodGet: "files.get", http.MethodDelete: "files.delete"}[r.Method]
	if id == "" && r.Method == http.MethodGet {
		method = "files.list"
	}
	if id == "" && method != "files.list" {
		method = ""
	}
	req, ok := s.route(w, r, method)
	if !ok {
		return
	}
	if method == "files.list" {
		s.mu.Lock()
		var list []File
		for _, f := range s.files {
			if f.owner == req.Key {
				list = append(list, f.file)
			}
		}
		s.mu.Unlock()
		sort.Slice(list, func(i, j int) bool { return list[i].CreateTime > list[j].CreateTime })
		size, _ := strconv.Atoi(r.URL.Query().Get("pageSize"))
		if size <= 0 {
			size = 10
		}
		start, _ := strconv.Atoi(r.URL.Query().Get("pageToken"))
		start = min(start, len(list))
		end := min(start+size, len(list))
		out := map[string]any{}
		if end > start {
			out["files"] = list[start:end]
		}
		if end < len(list) {
			out["nextPageToken"] = strconv.Itoa(end)
		}
		writeJSON(w, out)
		s.finish(req, 200, false)
		return
	}
	s.mu.Lock()
	f, ok := s.files[id]
	if !ok || f.owner != req.Key {
		s.mu.Unlock()
		// Google does not tell "missing" from "someone else's".
		s.finish(req, writeError(w, PermissionDenied, fileDenied(id), ""), false)
		return
	}
	if method == "files.delete" {
		delete(s.files, id)
		s.mu.Unlock()
		writeJSON(w, map[string]any{})
		s.finish(req, 200, false)
		return
	}
	file := f.file
	s.mu.Unlock()
	writeJSON(w, file)
	s.finish(req, 200, false)
}
