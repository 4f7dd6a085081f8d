// Package keystore persists keyd's pool and file bindings in MongoDB: the
// collections `keys` and `files`, which only keyd reads or writes. Secrets
// are encrypted with AES-GCM when ENCRYPTION_KEY is set.
package keystore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/keyd/pool"
)

// Collection names owned by keyd.
const (
	KeysCollection  = "keys"
	FilesCollection = "files"
)

// Meta documents share the keys collection; key documents always have a kind.
const (
	metaEncryption = "_encryption"
	metaSeeded     = "_seeded"
)

// Store reads and writes keys and file bindings.
type Store struct {
	keys  *mongo.Collection
	files *mongo.Collection
	seal  *sealer // nil: secrets stored as they are
}

type keyDoc struct {
	ID     string   `bson:"_id"`
	Kind   string   `bson:"kind"`
	Hint   string   `bson:"hint"`
	Secret string   `bson:"secret"` // sealed when Enc
	Enc    bool     `bson:"enc"`
	State  stateDoc `bson:",inline"`
}

// stateDoc is the mutable part a flush writes; the secret is never rewritten.
type stateDoc struct {
	Weight         int             `bson:"weight"`
	Note           string          `bson:"note"`
	Disabled       bool            `bson:"disabled"`
	DisabledReason string          `bson:"disabled_reason"`
	DisabledAt     time.Time       `bson:"disabled_at"`
	Failures       int             `bson:"failures"`
	Cooldowns      []pool.Cooldown `bson:"cooldowns"`
	LastUsed       time.Time       `bson:"last_used"`
	LastError      string          `bson:"last_error"`
	Successes      int64           `bson:"successes"`
	FailuresTotal  int64           `bson:"failures_total"`
	Created        time.Time       `bson:"created"`
	Updated        time.Time       `bson:"updated"`
}

type encMeta struct {
	ID    string `bson:"_id"`
	Salt  []byte `bson:"salt"`
	Check string `bson:"check"`
}

// Open checks the stored keys against the passphrase and returns a store.
// With a passphrase and plaintext keys stored, it encrypts them in place.
// It refuses to start when the keys are encrypted and the passphrase is
// missing or wrong, rather than serving keys it cannot read.
func Open(ctx context.Context, db *mongo.Database, passphrase string) (*Store, error) {
	s, err := open(ctx, db, passphrase)
	if errors.Is(err, errRetryOpen) {
		s, err = open(ctx, db, passphrase)
	}
	return s, err
}

var errRetryOpen = errors.New("keystore: encryption meta written concurrently")

func open(ctx context.Context, db *mongo.Database, passphrase string) (*Store, error) {
	s := &Store{keys: db.Collection(KeysCollection), files: db.Collection(FilesCollection)}
	var meta encMeta
	err := s.keys.FindOne(ctx, bson.D{{Key: "_id", Value: metaEncryption}}).Decode(&meta)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		n, err := s.keys.CountDocuments(ctx, bson.D{{Key: "enc", Value: true}})
		if err != nil {
			return nil, fmt.Errorf("keystore: count encrypted keys: %w", err)
		}
		if n > 0 {
			return nil, fmt.Errorf("keystore: %w", ErrEncryptionKeyMissing) // meta lost; cannot verify
		}
		if passphrase == "" {
			return s, nil
		}
		if err := s.startEncrypting(ctx, passphrase); err != nil {
			return nil, err
		}
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("keystore: read encryption meta: %w", err)
	}
	if passphrase == "" {
		return nil, fmt.Errorf("keystore: %w", ErrEncryptionKeyMissing)
	}
	seal, err := newSealer(passphrase, meta.Salt)
	if err != nil {
		return nil, err
	}
	if got, err := seal.open(meta.Check, metaEncryption); err != nil || got != checkPlain {
		return nil, fmt.Errorf("keystore: %w", ErrEncryptionKeyWrong)
	}
	s.seal = seal
	return s, s.encryptPlaintext(ctx)
}

func (s *Store) startEncrypting(ctx context.Context, passphrase string) error {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	seal, err := newSealer(passphrase, salt)
	if err != nil {
		return err
	}
	meta := encMeta{ID: metaEncryption, Salt: salt, Check: seal.seal(checkPlain, metaEncryption)}
	if _, err := s.keys.InsertOne(ctx, meta); err != nil {
		if mongo.IsDuplicateKeyError(err) { // a replica starting alongside wrote it first: use its salt
			return errRetryOpen
		}
		return fmt.Errorf("keystore: write encryption meta: %w", err)
	}
	s.seal = seal
	return s.encryptPlaintext(ctx)
}

// encryptPlaintext seals keys stored before ENCRYPTION_KEY was set.
func (s *Store) encryptPlaintext(ctx context.Context) error {
	cur, err := s.keys.Find(ctx, bson.D{{Key: "kind", Value: bson.D{{Key: "$exists", Value: true}}}, {Key: "enc", Value: false}})
	if err != nil {
		return fmt.Errorf("keystore: find plaintext keys: %w", err)
	}
	var docs []keyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return fmt.Errorf("keystore: read plaintext keys: %w", err)
	}
	for _, d := range docs {
		upd := bson.D{{Key: "$set", Value: bson.D{{Key: "secret", Value: s.seal.seal(d.Secret, d.ID)}, {Key: "enc", Value: true}}}}
		if _, err := s.keys.UpdateByID(ctx, d.ID, upd); err != nil {
			return fmt.Errorf("keystore: encrypt key %s: %w", d.ID, err)
		}
	}
	return nil
}

// Encrypted reports whether secrets are stored encrypted.
func (s *Store) Encrypted() bool { return s.seal != nil }

// Seeded reports whether the first-start import has run, and marks it done
// when mark is set.
func (s *Store) Seeded(ctx context.Context) (bool, error) {
	n, err := s.keys.CountDocuments(ctx, bson.D{{Key: "_id", Value: metaSeeded}})
	if err != nil {
		return false, fmt.Errorf("keystore: read seed marker: %w", err)
	}
	return n > 0, nil
}

// MarkSeeded records that the first-start import ran.
func (s *Store) MarkSeeded(ctx context.Context) error {
	_, err := s.keys.UpdateByID(ctx, metaSeeded, bson.D{{Key: "$set", Value: bson.D{{Key: "at", Value: time.Now().UTC()}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) { // a replica starting alongside marked it first
		return fmt.Errorf("keystore: write seed marker: %w", err)
	}
	return nil
}

// LoadAll reads every key.
func (s *Store) LoadAll(ctx context.Context) ([]pool.Key, error) {
	return s.find(ctx, bson.D{{Key: "kind", Value: bson.D{{Key: "$exists", Value: true}}}})
}

// Load reads the given keys (after another replica added or changed them).
func (s *Store) Load(ctx context.Context, ids ...string) ([]pool.Key, error) {
	return s.find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
}

func (s *Store) find(ctx context.Context, filter bson.D) ([]pool.Key, error) {
	cur, err := s.keys.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "created", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("keystore: find keys: %w", err)
	}
	defer cur.Close(ctx)
	var out []pool.Key
	for cur.Next(ctx) {
		var d keyDoc
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("keystore: decode key: %w", err)
		}
		k, err := s.fromDoc(d)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("keystore: read keys: %w", err)
	}
	return out, nil
}

func (s *Store) fromDoc(d keyDoc) (pool.Key, error) {
	secret := d.Secret
	if d.Enc {
		if s.seal == nil {
			return pool.Key{}, fmt.Errorf("keystore: %w", ErrEncryptionKeyMissing)
		}
		var err error
		if secret, err = s.seal.open(d.Secret, d.ID); err != nil {
			return pool.Key{}, fmt.Errorf("keystore: key %s: %w", d.ID, err)
		}
	}
	st := d.State
	return pool.Key{
		ID: d.ID, Hint: d.Hint, Secret: secret, Kind: d.Kind, Weight: st.Weight, Note: st.Note,
		Disabled: st.Disabled, DisabledReason: st.DisabledReason, DisabledAt: st.DisabledAt,
		Failures: st.Failures, Cooldowns: st.Cooldowns, LastUsed: st.LastUsed, LastError: st.LastError,
		Successes: st.Successes, FailuresTotal: st.FailuresTotal, Created: st.Created,
	}, nil
}

func stateOf(k pool.Key) stateDoc {
	return stateDoc{
		Weight: k.Weight, Note: k.Note, Disabled: k.Disabled, DisabledReason: k.DisabledReason, DisabledAt: k.DisabledAt,
		Failures: k.Failures, Cooldowns: k.Cooldowns, LastUsed: k.LastUsed, LastError: k.LastError,
		Successes: k.Successes, FailuresTotal: k.FailuresTotal, Created: k.Created, Updated: time.Now().UTC(),
	}
}

// Insert stores new keys with their secrets. Keys already stored are left
// as they are and not reported as inserted.
func (s *Store) Insert(ctx context.Context, keys []pool.Key) (inserted []pool.Key, err error) {
	for _, k := range keys {
		d := keyDoc{ID: k.ID, Kind: k.Kind, Hint: k.Hint, Secret: k.Secret, State: stateOf(k)}
		if s.seal != nil {
			d.Secret, d.Enc = s.seal.seal(k.Secret, k.ID), true
		}
		if _, err := s.keys.InsertOne(ctx, d); err != nil {
			if mongo.IsDuplicateKeyError(err) {
				continue
			}
			return inserted, fmt.Errorf("keystore: insert key %s: %w", k.ID, err)
		}
		inserted = append(inserted, k)
	}
	return inserted, nil
}

// SaveState writes the state of changed keys in one bulk write. The secret
// is not touched; a key deleted meanwhile is not recreated.
func (s *Store) SaveState(ctx context.Context, keys []pool.Key) error {
	if len(keys) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, 0, len(keys))
	for _, k := range keys {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: k.ID}}).
			SetUpdate(bson.D{{Key: "$set", Value: stateOf(k)}}))
	}
	if _, err := s.keys.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
		return fmt.Errorf("keystore: save %d keys: %w", len(keys), err)
	}
	return nil
}

// Delete removes keys.
func (s *Store) Delete(ctx context.Context, ids []string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	res, err := s.keys.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return 0, fmt.Errorf("keystore: delete keys: %w", err)
	}
	return res.DeletedCount, nil
}
