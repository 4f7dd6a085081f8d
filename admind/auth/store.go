package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collections admind owns for the admin credential and revoked sessions.
const (
	AdminsCollection  = "admins"
	RevokedCollection = "admin_sessions_revoked"
)

const adminID = "admin"

// Admin is the stored admin credential: the password's argon2id hash, the
// random secret sessions are signed with, and the session generation a
// password change bumps (revoking every session at once).
type Admin struct {
	ID         string    `bson:"_id"`
	Hash       string    `bson:"hash"`
	Secret     []byte    `bson:"session_secret"`
	Generation int64     `bson:"generation"`
	CreatedAt  time.Time `bson:"created_at"`
	UpdatedAt  time.Time `bson:"updated_at"`
}

// ErrAdminExists is returned by Create when an admin was set first elsewhere.
var ErrAdminExists = errors.New("an admin password is already set")

// Store keeps the admin document in MongoDB. Every admind replica reads it,
// so they share one password, one session secret and one generation.
type Store struct {
	admins  *mongo.Collection
	revoked *mongo.Collection
}

// NewStore uses db's admins and revoked-sessions collections.
func NewStore(db *mongo.Database) *Store {
	return &Store{admins: db.Collection(AdminsCollection), revoked: db.Collection(RevokedCollection)}
}

// Load returns the admin; ok is false while none exists (first-run setup).
func (s *Store) Load(ctx context.Context) (Admin, bool, error) {
	var a Admin
	err := s.admins.FindOne(ctx, bson.M{"_id": adminID}).Decode(&a)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Admin{}, false, nil
	}
	if err != nil {
		return Admin{}, false, fmt.Errorf("load admin: %w", err)
	}
	return a, true, nil
}

// Create stores the first admin with the given password hash. It is a plain
// insert on a fixed _id, so of two racing setups (on any replicas) exactly
// one wins and the other gets ErrAdminExists; no transaction is needed.
func (s *Store) Create(ctx context.Context, hash string) (Admin, error) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	now := time.Now().UTC().Truncate(time.Millisecond)
	a := Admin{ID: adminID, Hash: hash, Secret: secret, Generation: 1, CreatedAt: now, UpdatedAt: now}
	if _, err := s.admins.InsertOne(ctx, a); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return Admin{}, ErrAdminExists
		}
		return Admin{}, fmt.Errorf("store admin: %w", err)
	}
	return a, nil
}

// SetPassword replaces the hash and bumps the generation, which revokes
// every session signed before.
func (s *Store) SetPassword(ctx context.Context, hash string) (Admin, error) {
	var a Admin
	err := s.admins.FindOneAndUpdate(ctx, bson.M{"_id": adminID},
		bson.M{"$set": bson.M{"hash": hash, "updated_at": time.Now().UTC()}, "$inc": bson.M{"generation": int64(1)}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&a)
	if err != nil {
		return Admin{}, fmt.Errorf("change admin password: %w", err)
	}
	return a, nil
}

// Revoke records a logged-out session until it would have expired anyway,
// and drops records of sessions that have expired since.
func (s *Store) Revoke(ctx context.Context, sid string, expires time.Time) error {
	_, err := s.revoked.UpdateOne(ctx, bson.M{"_id": sid}, bson.M{"$set": bson.M{"expires_at": expires.UTC()}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	_, _ = s.revoked.DeleteMany(ctx, bson.M{"expires_at": bson.M{"$lt": time.Now().UTC()}})
	return nil
}

// Revoked reports whether a session was logged out.
func (s *Store) Revoked(ctx context.Context, sid string) (bool, error) {
	n, err := s.revoked.CountDocuments(ctx, bson.M{"_id": sid}, options.Count().SetLimit(1))
	if err != nil {
		return false, fmt.Errorf("look up session: %w", err)
	}
	return n > 0, nil
}
