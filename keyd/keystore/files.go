package keystore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/shared/bus"
)

// fileDoc is a file binding. A finished upload is stored under its file name;
// a pending resumable upload under "upload:<id>", so any edge replica can
// continue it with the key that started it.
type fileDoc struct {
	ID        string    `bson:"_id"`
	Name      string    `bson:"name"`
	KeyID     string    `bson:"key_id"`
	TokenID   string    `bson:"token_id"`
	UploadURL string    `bson:"upload_url"`
	UploadID  string    `bson:"upload_id"`
	Created   time.Time `bson:"created"`
	Expires   time.Time `bson:"expires"`
	Metadata  []byte    `bson:"metadata"`
}

func fileID(name, uploadID string) string {
	if name != "" {
		return name
	}
	return "upload:" + uploadID
}

// BindFile stores or replaces a binding. Binding a finished file removes the
// pending upload it came from.
func (s *Store) BindFile(ctx context.Context, b bus.FileBinding) error {
	if b.Name == "" && b.UploadID == "" {
		return errors.New("file binding needs a name or an upload id")
	}
	if b.Created.IsZero() {
		b.Created = time.Now().UTC()
	}
	d := fileDoc{ID: fileID(b.Name, b.UploadID), Name: b.Name, KeyID: b.KeyID, TokenID: b.TokenID, UploadURL: b.UploadURL,
		UploadID: b.UploadID, Created: b.Created, Expires: b.Expires, Metadata: b.Metadata}
	if _, err := s.files.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, d, options.Replace().SetUpsert(true)); err != nil {
		return fmt.Errorf("keystore: bind file %s: %w", d.ID, err)
	}
	if b.Name != "" && b.UploadID != "" {
		if _, err := s.files.DeleteOne(ctx, bson.D{{Key: "_id", Value: fileID("", b.UploadID)}}); err != nil {
			return fmt.Errorf("keystore: drop pending upload %s: %w", b.UploadID, err)
		}
	}
	return nil
}

// LookupFile finds a binding by file name or by pending upload id.
func (s *Store) LookupFile(ctx context.Context, name, uploadID string) (bus.FileBinding, bool, error) {
	var d fileDoc
	err := s.files.FindOne(ctx, bson.D{{Key: "_id", Value: fileID(name, uploadID)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return bus.FileBinding{}, false, nil
	}
	if err != nil {
		return bus.FileBinding{}, false, fmt.Errorf("keystore: look up file: %w", err)
	}
	return d.binding(), true, nil
}

func (d fileDoc) binding() bus.FileBinding {
	return bus.FileBinding{Name: d.Name, KeyID: d.KeyID, TokenID: d.TokenID, UploadURL: d.UploadURL, UploadID: d.UploadID,
		Created: d.Created, Expires: d.Expires, Metadata: d.Metadata}
}

// ListFiles returns finished files, newest first, of one client token (all
// tokens when tokenID is empty), optionally of one key and of one name
// prefix (a resource kind: "files/", "cachedContents/", "batches/").
func (s *Store) ListFiles(ctx context.Context, tokenID, keyID, prefix string, limit int) ([]bus.FileBinding, error) {
	filter := bson.D{{Key: "name", Value: bson.D{{Key: "$ne", Value: ""}}}}
	if prefix != "" {
		// An anchored literal prefix: MongoDB serves it from the _id index.
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$regex", Value: "^" + regexp.QuoteMeta(prefix)}}}}
	}
	if tokenID != "" {
		filter = append(filter, bson.E{Key: "token_id", Value: tokenID})
	}
	if keyID != "" {
		filter = append(filter, bson.E{Key: "key_id", Value: keyID})
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	cur, err := s.files.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "created", Value: -1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("keystore: list files: %w", err)
	}
	var docs []fileDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("keystore: read files: %w", err)
	}
	out := make([]bus.FileBinding, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.binding())
	}
	return out, nil
}

// DeleteFile removes a binding by file name or pending upload id.
func (s *Store) DeleteFile(ctx context.Context, name, uploadID string) (bool, error) {
	res, err := s.files.DeleteOne(ctx, bson.D{{Key: "_id", Value: fileID(name, uploadID)}})
	if err != nil {
		return false, fmt.Errorf("keystore: delete file: %w", err)
	}
	return res.DeletedCount > 0, nil
}
