// Package tokens manages client tokens: admind creates them at random, keeps
// only their SHA-256 in MongoDB (collection "tokens"), and mirrors every
// token into the gb_client_tokens KV bucket, from which every edge replica
// applies them live. A token's full value exists once, in the answer to its
// creation; it is never stored, logged or published.
package tokens

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/redact"
)

// Collection is the MongoDB collection admind owns for client tokens.
const Collection = "tokens"

// Prefix starts every generated token; "sk-" keeps redact.Text masking it
// wherever it turns up in free text.
const Prefix = "sk-gb-"

// randomChars is how many random base62 characters follow Prefix (~238 bits).
const randomChars = 40

// MaxNameLen bounds a token's name.
const MaxNameLen = 100

var (
	// ErrInvalid wraps bad input, which callers report as 400.
	ErrInvalid = errors.New("invalid token request")
	// ErrNotFound is returned for an unknown token id.
	ErrNotFound = errors.New("no such client token")
)

// document is what MongoDB holds: the hash, never the token.
type document struct {
	ID        string     `bson:"_id"` // redact.ID(token)
	Name      string     `bson:"name"`
	Hint      string     `bson:"hint"`
	SHA256    string     `bson:"sha256"`
	Disabled  bool       `bson:"disabled"`
	CreatedAt time.Time  `bson:"created_at"`
	ExpiresAt *time.Time `bson:"expires_at,omitempty"`
	Models    []string   `bson:"models,omitempty"` // allow-list; empty: every model
}

// Token is a client token as the admin API shows it: never the token itself.
type Token struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Hint      string     `json:"hint"`
	Disabled  bool       `json:"disabled"`
	Expired   bool       `json:"expired"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Models is the model allow-list; empty means every model.
	Models []string `json:"models"`
}

// Store keeps the tokens in MongoDB and mirrors them into the KV bucket.
type Store struct {
	coll *mongo.Collection
	js   jetstream.JetStream
	Now  func() time.Time
	// beforeWrite, when set (tests), runs between reading MongoDB and
	// writing the bucket in reconcile: the window a concurrent writer hits.
	beforeWrite func(id string)
}

// NewStore uses db's tokens collection and publishes through js.
func NewStore(db *mongo.Database, js jetstream.JetStream) *Store {
	return &Store{coll: db.Collection(Collection), js: js, Now: time.Now}
}

// Generate returns a fresh random token: Prefix and 40 base62 characters.
func Generate() string {
	return Prefix + base62(randomChars)
}

func base62(n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := make([]byte, 0, n)
	buf := make([]byte, 64)
	for len(out) < n {
		_, _ = rand.Read(buf) // crypto/rand.Read never fails (Go ≥ 1.24)
		for _, b := range buf {
			if b < 248 && len(out) < n { // 248 = 4×62: rejection keeps the draw uniform
				out = append(out, alphabet[b%62])
			}
		}
	}
	return string(out)
}

// CreateRequest is what an admin sends to create a token.
type CreateRequest struct {
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Models    []string   `json:"models,omitempty"`
}

// MaxModels bounds a token's model allow-list.
const MaxModels = 200

var modelName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// NormalizeModels cleans an allow-list as edge compares it: no "models/"
// prefix, lower case, no duplicates, in the order given. A name edge could
// never match is refused, naming it.
func NormalizeModels(in []string) ([]string, error) {
	if len(in) > MaxModels {
		return nil, fmt.Errorf("%w: models: at most %d", ErrInvalid, MaxModels)
	}
	out := []string{}
	for _, m := range in {
		m = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(m), "models/"))
		if !modelName.MatchString(m) {
			return nil, fmt.Errorf("%w: models: %q is not a model name (letters, digits, '.', '_', '-')", ErrInvalid, m)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// Create stores a new random token and publishes it. It returns the token's
// public view and, this one time, the token itself. forbidden names secrets
// a token must never equal (the admin password, ALLOWED_TOKENS); a random
// token practically never does, but the check makes it a guarantee.
func (s *Store) Create(ctx context.Context, req CreateRequest, forbidden []string) (Token, string, error) {
	name := strings.TrimSpace(req.Name)
	if name == "" || utf8.RuneCountInString(name) > MaxNameLen {
		return Token{}, "", fmt.Errorf("%w: name: want 1 to %d characters", ErrInvalid, MaxNameLen)
	}
	now := s.Now().UTC()
	if req.ExpiresAt != nil {
		exp := req.ExpiresAt.UTC().Truncate(time.Millisecond) // MongoDB keeps milliseconds
		if !exp.After(now) {
			return Token{}, "", fmt.Errorf("%w: expires_at: must lie in the future", ErrInvalid)
		}
		req.ExpiresAt = &exp
	}
	allow, err := NormalizeModels(req.Models)
	if err != nil {
		return Token{}, "", err
	}
	for attempt := 0; ; attempt++ {
		secret := Generate()
		if slices.Contains(forbidden, secret) {
			continue
		}
		d := document{
			ID: redact.ID(secret), Name: name, Hint: redact.Hint(secret), SHA256: bus.TokenSHA256(secret),
			CreatedAt: now.Truncate(time.Millisecond), ExpiresAt: req.ExpiresAt, Models: allow,
		}
		if _, err := s.coll.InsertOne(ctx, d); err != nil {
			if mongo.IsDuplicateKeyError(err) && attempt < 3 {
				continue // a 64-bit id collided; draw again
			}
			return Token{}, "", fmt.Errorf("store client token: %w", err)
		}
		if _, err := s.reconcile(ctx, d.ID); err != nil {
			// Undo, so the caller never holds a token that edge will not know.
			undo := context.WithoutCancel(ctx)
			_, _ = s.coll.DeleteOne(undo, bson.M{"_id": d.ID})
			_, _ = s.reconcile(undo, d.ID)
			return Token{}, "", err
		}
		return s.view(d), secret, nil
	}
}

// List returns every token, oldest first.
func (s *Store) List(ctx context.Context) ([]Token, error) {
	docs, err := s.all(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Token, 0, len(docs))
	for _, d := range docs {
		out = append(out, s.view(d))
	}
	return out, nil
}

func (s *Store) all(ctx context.Context) ([]document, error) {
	cur, err := s.coll.Find(ctx, bson.M{}, options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("list client tokens: %w", err)
	}
	var docs []document
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("list client tokens: %w", err)
	}
	return docs, nil
}

// Update is a change to a token; nil fields stay as they are.
type Update struct {
	Disabled *bool     `json:"disabled"`
	Models   *[]string `json:"models"`
}

// SetDisabled disables or re-enables a token and publishes the change.
func (s *Store) SetDisabled(ctx context.Context, id string, disabled bool) (Token, error) {
	return s.Update(ctx, id, Update{Disabled: &disabled})
}

// Update changes a token's disabled flag and/or model allow-list and
// publishes the change.
func (s *Store) Update(ctx context.Context, id string, u Update) (Token, error) {
	set := bson.M{}
	if u.Disabled != nil {
		set["disabled"] = *u.Disabled
	}
	if u.Models != nil {
		allow, err := NormalizeModels(*u.Models)
		if err != nil {
			return Token{}, err
		}
		set["models"] = allow
	}
	if len(set) == 0 {
		return Token{}, fmt.Errorf("%w: nothing to change: set disabled and/or models", ErrInvalid)
	}
	var d document
	err := s.coll.FindOneAndUpdate(ctx, bson.M{"_id": id}, bson.M{"$set": set},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Token{}, ErrNotFound
	}
	if err != nil {
		return Token{}, fmt.Errorf("update client token: %w", err)
	}
	if _, err := s.reconcile(ctx, d.ID); err != nil {
		return Token{}, err
	}
	return s.view(d), nil
}

// Delete revokes a token. MongoDB goes first and the bucket then follows
// MongoDB, so a failure half-way leaves a state that a retry, or admind's next
// start-up Sync, completes; it can never bring a revoked token back.
func (s *Store) Delete(ctx context.Context, id string) error {
	res, err := s.coll.DeleteOne(ctx, bson.M{"_id": id})
	if err != nil {
		return fmt.Errorf("delete client token: %w", err)
	}
	wasPublished, err := s.reconcile(ctx, id)
	if err != nil {
		return err
	}
	if res.DeletedCount == 0 && !wasPublished {
		return ErrNotFound
	}
	return nil
}

// Secret reports whether secret is one of the managed tokens (the admin
// password must never be one).
func (s *Store) Secret(ctx context.Context, secret string) (bool, error) {
	if secret == "" {
		return false, nil
	}
	n, err := s.coll.CountDocuments(ctx, bson.M{"_id": redact.ID(secret), "sha256": bus.TokenSHA256(secret)})
	if err != nil {
		return false, fmt.Errorf("look up client token: %w", err)
	}
	return n > 0, nil
}

// Sync makes the bucket hold exactly the stored tokens: admind runs it at
// start, so a lost or stale bucket (NATS reset, a write that failed) heals.
// It returns how many tokens are stored.
func (s *Store) Sync(ctx context.Context) (int, error) {
	docs, err := s.all(ctx)
	if err != nil {
		return 0, err
	}
	kv, err := s.bucket(ctx)
	if err != nil {
		return 0, err
	}
	keys, err := kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, fmt.Errorf("list %s: %w", bus.BucketClientTokens, err)
	}
	ids := keys
	for _, d := range docs {
		if !slices.Contains(keys, d.ID) {
			ids = append(ids, d.ID)
		}
	}
	for _, id := range ids {
		if _, err := s.reconcile(ctx, id); err != nil {
			return 0, err
		}
	}
	return len(docs), nil
}

// reconcile makes the bucket entry of id match MongoDB as it is now. Every
// write to the bucket goes through here, as a compare-and-set on the entry's
// revision: when another admind replica (or its start-up Sync) writes the
// same entry in between, the loser re-reads MongoDB and tries again, so the
// bucket never ends on an older state than MongoDB's. It reports whether the
// bucket held the entry before.
func (s *Store) reconcile(ctx context.Context, id string) (bool, error) {
	kv, err := s.bucket(ctx)
	if err != nil {
		return false, err
	}
	for attempt := 0; ; attempt++ {
		var rev uint64
		var have []byte
		e, err := kv.Get(ctx, id)
		switch {
		case err == nil:
			rev, have = e.Revision(), e.Value()
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return false, fmt.Errorf("read %s entry: %w", bus.BucketClientTokens, err)
		}
		var d document
		err = s.coll.FindOne(ctx, bson.M{"_id": id}).Decode(&d)
		found := err == nil
		if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
			return false, fmt.Errorf("read client token: %w", err)
		}
		if s.beforeWrite != nil {
			s.beforeWrite(id)
		}
		switch {
		case found && have != nil && string(have) == string(entry(d)):
			return true, nil // already current: spare every edge a needless update
		case found && have != nil:
			_, err = kv.Update(ctx, id, entry(d), rev)
		case found:
			_, err = kv.Create(ctx, id, entry(d)) // also succeeds over a deleted entry
		case have != nil:
			err = kv.Purge(ctx, id, jetstream.LastRevision(rev))
		default:
			return false, nil
		}
		if err == nil {
			return have != nil, nil
		}
		if attempt >= 8 || ctx.Err() != nil {
			return false, fmt.Errorf("write %s entry: %w", bus.BucketClientTokens, err)
		}
	}
}

func (s *Store) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := s.js.KeyValue(ctx, bus.BucketClientTokens)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", bus.BucketClientTokens, err)
	}
	return kv, nil
}

func entry(d document) []byte {
	e := bus.ClientToken{V: bus.Version, ID: d.ID, Name: d.Name, Hint: d.Hint, SHA256: d.SHA256, Disabled: d.Disabled, Models: d.Models}
	if d.ExpiresAt != nil {
		exp := d.ExpiresAt.UTC() // the same bytes whichever zone the driver decoded into, so Sync sees no change
		e.ExpiresAt = &exp
	}
	data, _ := json.Marshal(e)
	return data
}

func (s *Store) view(d document) Token {
	t := Token{ID: d.ID, Name: d.Name, Hint: d.Hint, Disabled: d.Disabled, CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt, Models: d.Models}
	if t.Models == nil {
		t.Models = []string{}
	}
	if d.ExpiresAt != nil {
		exp := d.ExpiresAt.UTC()
		t.ExpiresAt = &exp
		t.Expired = !s.Now().Before(exp)
	}
	return t
}
