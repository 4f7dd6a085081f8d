package service

import (
	"context"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/keyapi"
)

// BindFile records which key (and client token) a file or pending upload belongs to.
func (s *Service) BindFile(ctx context.Context, b bus.FileBinding) keyapi.OKReply {
	if err := s.store.BindFile(ctx, b); err != nil {
		return keyapi.OKReply{Error: err.Error()}
	}
	return keyapi.OKReply{OK: true, Found: true}
}

// isolated reports whether a binding is hidden from the asking token:
// with FILES_USER_ISOLATION_ENABLED a client token sees only its own files.
func (s *Service) isolated(b bus.FileBinding, tokenID string) bool {
	return s.d.Settings.Get().FilesUserIsolation && tokenID != "" && b.TokenID != "" && b.TokenID != tokenID
}

// LookupFile finds the binding of a file or pending upload.
func (s *Service) LookupFile(ctx context.Context, q keyapi.FileQuery) keyapi.FileReply {
	b, ok, err := s.store.LookupFile(ctx, q.Name, q.UploadID)
	if err != nil {
		return keyapi.FileReply{Error: err.Error()}
	}
	if !ok || s.isolated(b, q.TokenID) {
		return keyapi.FileReply{}
	}
	return keyapi.FileReply{File: &b}
}

// ListFiles lists a token's files (every token's without isolation, unless
// the request asks for owned bindings only).
func (s *Service) ListFiles(ctx context.Context, req keyapi.FileListRequest) keyapi.FileListReply {
	token := req.TokenID
	if !s.d.Settings.Get().FilesUserIsolation && !req.Owned {
		token = ""
	}
	files, err := s.store.ListFiles(ctx, token, req.KeyID, req.Prefix, req.Limit)
	if err != nil {
		return keyapi.FileListReply{Files: []bus.FileBinding{}, Error: err.Error()}
	}
	return keyapi.FileListReply{Files: files}
}

// DeleteFile forgets a binding, if the asking token may see it.
func (s *Service) DeleteFile(ctx context.Context, q keyapi.FileQuery) keyapi.OKReply {
	b, ok, err := s.store.LookupFile(ctx, q.Name, q.UploadID)
	if err != nil {
		return keyapi.OKReply{Error: err.Error()}
	}
	if !ok || s.isolated(b, q.TokenID) {
		return keyapi.OKReply{OK: true}
	}
	if _, err := s.store.DeleteFile(ctx, q.Name, q.UploadID); err != nil {
		return keyapi.OKReply{Error: err.Error()}
	}
	return keyapi.OKReply{OK: true, Found: true}
}
