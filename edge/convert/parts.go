package convert

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// Message content → Gemini parts: text, images, audio, files and media types.

// content converts a message content: null, a string or an array of parts.
func (c *converter) content(raw json.RawMessage, field string, textOnly bool) ([]Part, error) {
	s, items, err := contentItems[ContentPart](raw, field, "want a string, an array of content parts or null")
	if err != nil || items == nil {
		if s == "" {
			return nil, err
		}
		return c.textParts(nil, s, textOnly), nil
	}
	text := func(dst []Part, it *ContentPart) ([]Part, bool) {
		if it.Type != "text" {
			return dst, false
		}
		return c.textParts(dst, it.Text, textOnly), true
	}
	return itemParts(items, field, text, func(it *ContentPart, f string) (Part, bool, error) { return c.part(it, f, textOnly) })
}

// contentItems decodes a message content of the OpenAI surfaces: null or
// "" (nothing), a string (s), or an array of T (items, never nil). want
// names the accepted forms for any other value.
func contentItems[T any](raw json.RawMessage, field, want string) (s string, items []T, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, nil
	}
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", nil, fieldErr(field, "invalid string")
		}
		return s, nil, nil
	case '[':
		if err := json.Unmarshal(raw, &items); err != nil {
			return "", nil, fieldErr(field, "want an array of content parts: %v", decodeError(err).Msg)
		}
		if items == nil {
			items = []T{}
		}
		return "", items, nil
	}
	return "", nil, fieldErr(field, "%s", want)
}

// itemParts converts the items of a content array in order: text (may be
// nil) takes the items it can append itself, part makes at most one part
// of each other item, whose field is field[j].
func itemParts[T any](items []T, field string, text func(dst []Part, it *T) ([]Part, bool), part func(it *T, field string) (Part, bool, error)) ([]Part, error) {
	parts := make([]Part, 0, len(items))
	for j := range items {
		if text != nil {
			var done bool
			if parts, done = text(parts, &items[j]); done {
				continue
			}
		}
		p, ok, err := part(&items[j], fmt.Sprintf("%s[%d]", field, j))
		if err != nil {
			return nil, err
		}
		if ok {
			parts = append(parts, p)
		}
	}
	return parts, nil
}

// textParts appends a text as parts. Markdown images with data: URLs (how
// this route returns generated images) become inlineData again, so a
// multi-turn image chat sends pictures, not megabytes of base64 text.
func (c *converter) textParts(dst []Part, s string, textOnly bool) []Part {
	if s == "" {
		return dst
	}
	if textOnly || !strings.Contains(s, "](data:image/") {
		return append(dst, Part{Text: s})
	}
	for s != "" {
		i := strings.Index(s, "![")
		if i < 0 {
			break
		}
		j := strings.Index(s[i:], "](data:image/")
		if j < 0 {
			break
		}
		k := strings.IndexByte(s[i+j:], ')')
		if k < 0 {
			break
		}
		url := s[i+j+2 : i+j+k]
		p, err := dataURLPart(url, "")
		if err != nil || strings.ContainsAny(s[i+2:i+j], "\n]") {
			// Not one of ours: keep the text as it is up to here.
			dst = appendText(dst, s[:i+j+k+1])
			s = s[i+j+k+1:]
			continue
		}
		dst = appendText(dst, strings.TrimRight(s[:i], " \n"))
		dst = append(dst, p)
		c.hasMedia = true
		s = strings.TrimLeft(s[i+j+k+1:], " \n")
	}
	return appendText(dst, s)
}

func appendText(dst []Part, s string) []Part {
	if s == "" {
		return dst
	}
	return append(dst, Part{Text: s})
}

func (c *converter) part(it *ContentPart, field string, textOnly bool) (Part, bool, error) {
	if textOnly && it.Type != "text" {
		c.drop(field, "system messages take text only")
		return Part{}, false, nil
	}
	switch it.Type {
	case "text":
		return Part{Text: it.Text}, it.Text != "", nil
	case "refusal":
		return Part{Text: it.Refusal}, it.Refusal != "", nil
	case "image_url":
		if it.ImageURL == nil || it.ImageURL.URL == "" {
			return Part{}, false, fieldErr(field+".image_url.url", "is required")
		}
		c.hasMedia = true
		p, err := c.imageURL(it.ImageURL.URL, field+".image_url.url")
		return p, err == nil, err
	case "input_audio", "input_video":
		in, kind := it.InputAudio, "audio"
		if it.Type == "input_video" {
			in, kind = it.InputVideo, "video"
		}
		f := field + "." + it.Type
		if in == nil || in.Data == "" {
			return Part{}, false, fieldErr(f+".data", "is required")
		}
		mime, ok := mediaMime(kind, in.Format)
		if !ok {
			return Part{}, false, fieldErr(f+".format", "unsupported %s format %q", kind, in.Format)
		}
		c.hasMedia = true
		if strings.HasPrefix(in.Data, "data:") {
			p, err := dataURLPart(in.Data, f+".data")
			return p, err == nil, err
		}
		return Part{InlineData: &Blob{MimeType: mime, Data: in.Data}}, true, nil
	case "file":
		if it.File == nil {
			return Part{}, false, fieldErr(field+".file", "is required")
		}
		c.hasMedia = true
		switch {
		case strings.HasPrefix(it.File.FileData, "data:"):
			p, err := dataURLPart(it.File.FileData, field+".file.file_data")
			return p, err == nil, err
		case it.File.FileData != "":
			mime := mimeByName(it.File.Filename)
			if mime == "" {
				return Part{}, false, fieldErr(field+".file.filename", "cannot tell the type of %q; send file_data as a data: URL", it.File.Filename)
			}
			return Part{InlineData: &Blob{MimeType: mime, Data: it.File.FileData}}, true, nil
		case it.File.FileID != "":
			if err := c.fileRef(field + ".file.file_id"); err != nil {
				return Part{}, false, err
			}
			return Part{FileData: &FileData{MimeType: mimeByName(it.File.Filename), FileURI: c.fileURI(it.File.FileID)}}, true, nil
		}
		return Part{}, false, fieldErr(field+".file.file_data", "file_data or file_id is required")
	case "":
		return Part{}, false, fieldErr(field+".type", "is required")
	}
	return Part{}, false, fieldErr(field+".type", "unsupported content part type %q", it.Type)
}

// fileURI turns a file id ("files/abc", "abc" or a full URI) into a File API URI.
func (c *converter) fileURI(id string) string {
	if strings.HasPrefix(id, "https://") || strings.HasPrefix(id, "http://") {
		return id
	}
	return c.opt.Settings.BaseURL + "/v1beta/files/" + strings.TrimPrefix(id, "files/")
}

func (c *converter) imageURL(u, field string) (Part, error) {
	if strings.HasPrefix(u, "data:") {
		return dataURLPart(u, field)
	}
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return Part{}, fieldErr(field, "want a data: URL or an http(s) URL")
	}
	// Files the upstream already holds and YouTube videos go by reference.
	if strings.HasPrefix(u, c.opt.Settings.BaseURL+"/v1beta/files/") ||
		strings.HasPrefix(u, "https://generativelanguage.googleapis.com/v1beta/files/") ||
		parsed.Host == "www.youtube.com" || parsed.Host == "youtube.com" || parsed.Host == "youtu.be" {
		if err := c.fileRef(field); err != nil {
			return Part{}, err
		}
		return Part{FileData: &FileData{FileURI: u}}, nil
	}
	if c.opt.Fetcher == nil {
		return Part{}, fieldErr(field, "image URLs are not fetched here; send a data: URL")
	}
	if c.fetches++; c.fetches > MaxImageFetches {
		return Part{}, fieldErr(field, "a request may fetch at most %d image URLs; send the rest as data: URLs", MaxImageFetches)
	}
	mime, data, err := c.opt.Fetcher.Fetch(c.ctx, u)
	if err != nil {
		return Part{}, fieldErr(field, "cannot fetch image: %v", err)
	}
	if c.fetched += int64(len(data)); c.fetched > MaxImageFetchBytes {
		return Part{}, fieldErr(field, "the images fetched for one request may total at most %d bytes", MaxImageFetchBytes)
	}
	return Part{InlineData: &Blob{MimeType: mime, Data: base64.StdEncoding.EncodeToString(data)}}, nil
}

// dataURLPart decodes the header of a data: URL; base64 payloads are passed
// on without copying.
func dataURLPart(u, field string) (Part, error) {
	rest := strings.TrimPrefix(u, "data:")
	comma := strings.IndexByte(rest, ',')
	if comma < 0 {
		return Part{}, fieldErr(field, "malformed data: URL (no comma)")
	}
	meta, payload := rest[:comma], rest[comma+1:]
	isB64 := strings.HasSuffix(meta, ";base64")
	mime := strings.TrimSuffix(meta, ";base64")
	if i := strings.IndexByte(mime, ';'); i >= 0 {
		mime = mime[:i]
	}
	mime = strings.ToLower(strings.TrimSpace(mime))
	if mime == "" || !strings.Contains(mime, "/") {
		return Part{}, fieldErr(field, "data: URL needs a media type, e.g. data:image/png;base64,...")
	}
	if mime == "image/jpg" {
		mime = "image/jpeg"
	}
	if payload == "" {
		return Part{}, fieldErr(field, "data: URL holds no data")
	}
	if !isB64 {
		raw, err := url.PathUnescape(payload)
		if err != nil {
			return Part{}, fieldErr(field, "malformed data: URL payload")
		}
		payload = base64.StdEncoding.EncodeToString([]byte(raw))
	}
	return Part{InlineData: &Blob{MimeType: mime, Data: payload}}, nil
}

func mediaMime(kind, format string) (string, bool) {
	f := strings.ToLower(strings.TrimSpace(format))
	if kind == "audio" {
		switch f {
		case "wav", "mp3", "aiff", "aac", "ogg", "flac", "webm":
			return "audio/" + f, true
		case "mpeg":
			return "audio/mp3", true
		case "pcm16", "pcm":
			return "audio/L16;codec=pcm;rate=24000", true
		}
		return "", false
	}
	switch f {
	case "mp4", "mpeg", "mov", "avi", "webm", "wmv", "3gpp":
		if f == "mov" {
			return "video/quicktime", true
		}
		if f == "avi" {
			return "video/x-msvideo", true
		}
		return "video/" + f, true
	case "flv":
		return "video/x-flv", true
	}
	return "", false
}

func mimeByName(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".pdf":
		return "application/pdf"
	case ".txt":
		return "text/plain"
	case ".md":
		return "text/markdown"
	case ".csv":
		return "text/csv"
	case ".html", ".htm":
		return "text/html"
	case ".json":
		return "application/json"
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".webp":
		return "image/webp"
	case ".gif":
		return "image/gif"
	case ".mp3":
		return "audio/mp3"
	case ".wav":
		return "audio/wav"
	case ".mp4":
		return "video/mp4"
	}
	return ""
}
