// Package settings owns the settings document: admind keeps it in MongoDB
// (collection "settings") and mirrors every saved version into the gb_settings
// KV bucket, which every service watches and applies live.
//
// Secrets never sit in that document in clear: the admin password lives only
// as a hash (admind/auth), API keys live only in keyd's store (the
// environment's API_KEYS, VERTEX_API_KEYS and PAID_KEY are imported by keyd on
// first start; later ones go to keyd when saved), and proxies with
// credentials are sealed with ENCRYPTION_KEY (refused without it).
package settings

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // TIMEZONE is checked the way schedulerd resolves it

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
	"github.com/gemini-balance-go/shared/redact"
	"github.com/gemini-balance-go/shared/seal"
)

// Collection is the MongoDB collection admind owns for settings.
const Collection = "settings"

const docID = "current"

// document stores the settings as their JSON text: map keys such as model
// names contain dots, which FerretDB does not accept as field names, and the
// JSON form is exactly what travels on the KV bucket.
type document struct {
	ID        string    `bson:"_id"`
	JSON      string    `bson:"json"`
	UpdatedAt time.Time `bson:"updated_at"`
	Revision  int64     `bson:"revision"`
}

// Store reads and writes the settings document and publishes it.
type Store struct {
	coll *mongo.Collection
	js   jetstream.JetStream
	live *natsx.Settings
	// Box seals proxy credentials (ENCRYPTION_KEY); nil refuses them.
	Box *seal.Box
}

// NewStore uses db's settings collection, publishes on js and, when live is
// set, applies saved settings to it at once (before the KV echo arrives).
func NewStore(db *mongo.Database, js jetstream.JetStream, live *natsx.Settings) *Store {
	return &Store{coll: db.Collection(Collection), js: js, live: live}
}

// Load returns the stored settings; ok is false when none are stored yet.
func (s *Store) Load(ctx context.Context) (config.Settings, bool, error) {
	var d document
	err := s.coll.FindOne(ctx, bson.M{"_id": docID}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return config.Settings{}, false, nil
	}
	if err != nil {
		return config.Settings{}, false, fmt.Errorf("load settings: %w", err)
	}
	out := config.Defaults()
	if err := json.Unmarshal([]byte(d.JSON), &out); err != nil {
		return config.Settings{}, false, fmt.Errorf("decode stored settings: %w", err)
	}
	out.Normalize()
	if out.Proxies, err = s.Box.OpenProxies(out.Proxies); err != nil {
		// A configuration error (no or another ENCRYPTION_KEY): retrying cannot fix it.
		return config.Settings{}, false, fmt.Errorf("%w: stored settings: %w", ErrInvalid, err)
	}
	return out, true, nil
}

// StoredForm is v as it may be stored and published: no admin password, no
// API key, proxy credentials sealed. Without a Box, a proxy with credentials
// is refused (ErrInvalid).
func (s *Store) StoredForm(v config.Settings) (config.Settings, error) {
	v.AuthToken, v.APIKeys, v.VertexAPIKeys, v.PaidKey = "", nil, nil, ""
	p, err := s.Box.SealProxies(v.Proxies)
	if err != nil {
		return v, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	v.Proxies = p
	return v, nil
}

func holdsSecrets(v config.Settings) bool {
	// Proxies with credentials are re-saved too: a document of an older
	// version holds them in clear (re-sealing a sealed one is harmless).
	return v.AuthToken != "" || len(v.APIKeys) > 0 || len(v.VertexAPIKeys) > 0 || v.PaidKey != "" ||
		slices.ContainsFunc(v.Proxies, seal.HasCredentials)
}

// Bootstrap runs at start: it seeds the document from seed when none exists,
// then publishes the stored document so every service converges on it.
// adopt receives the seed's AUTH_TOKEN (or one a document of an older version
// still holds in clear) before anything is written, to store it as the admin
// hash; the document is then saved without it.
func (s *Store) Bootstrap(ctx context.Context, seed config.Settings, adopt func(password string) error) (config.Settings, error) {
	cur, ok, err := s.Load(ctx)
	if err != nil {
		return config.Settings{}, err
	}
	if !ok {
		cur = seed
		cur.Normalize()
	}
	if cur.AuthToken != "" {
		if err := adopt(cur.AuthToken); err != nil {
			return config.Settings{}, err
		}
	}
	if !ok || holdsSecrets(cur) {
		if err := s.save(ctx, cur); err != nil {
			return config.Settings{}, err
		}
	}
	if err := s.publish(ctx, cur); err != nil {
		return config.Settings{}, err
	}
	return cur, nil
}

// Import stores v as the settings document without publishing it (the
// importer runs without NATS; admind publishes the stored document when it
// starts). It validates like Save and reports whether the document changed,
// so importing the same settings again writes nothing.
func (s *Store) Import(ctx context.Context, v config.Settings) (changed bool, err error) {
	v.Normalize()
	if err := Validate(&v); err != nil {
		return false, err
	}
	cur, ok, err := s.Load(ctx) // proxies opened, comparable with v's
	if err != nil {
		return false, err
	}
	if ok && sameSettings(cur, v) {
		return false, nil
	}
	return true, s.save(ctx, v)
}

// sameSettings compares two settings as stored: secrets left out.
func sameSettings(a, b config.Settings) bool {
	a.AuthToken, a.APIKeys, a.VertexAPIKeys, a.PaidKey = "", nil, nil, ""
	b.AuthToken, b.APIKeys, b.VertexAPIKeys, b.PaidKey = "", nil, nil, ""
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// ErrInvalid wraps validation failures, which callers report as bad input.
var ErrInvalid = errors.New("invalid settings")

// Validate checks bounds and the rules that cross fields.
func Validate(next *config.Settings) error {
	if err := next.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := time.LoadLocation(next.Timezone); err != nil || next.Timezone == "" {
		return fmt.Errorf("%w: TIMEZONE: unknown time zone %q (want an IANA name like UTC or Asia/Shanghai)", ErrInvalid, next.Timezone)
	}
	for name, raw := range map[string]string{"BASE_URL": next.BaseURL, "VERTEX_EXPRESS_BASE_URL": next.VertexExpressBaseURL} {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: %s: want an http(s) URL, got %q", ErrInvalid, name, raw)
		}
	}
	return nil
}

// Save validates, stores and publishes next.
func (s *Store) Save(ctx context.Context, next config.Settings) error {
	next.Normalize()
	if err := Validate(&next); err != nil {
		return err
	}
	if err := s.save(ctx, next); err != nil {
		return err
	}
	return s.publish(ctx, next)
}

func (s *Store) save(ctx context.Context, v config.Settings) error {
	v, err := s.StoredForm(v)
	if err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = s.coll.UpdateOne(ctx, bson.M{"_id": docID}, bson.M{
		"$set": bson.M{"json": string(data), "updated_at": time.Now().UTC()},
		"$inc": bson.M{"revision": int64(1)},
	}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	return nil
}

func (s *Store) publish(ctx context.Context, v config.Settings) error {
	stored, err := s.StoredForm(v)
	if err != nil {
		return err
	}
	if err := natsx.PublishSettings(ctx, s.js, stored); err != nil {
		return fmt.Errorf("publish settings: %w", err)
	}
	if s.live != nil {
		v.AuthToken, v.APIKeys, v.VertexAPIKeys, v.PaidKey = "", nil, nil, ""
		s.live.Set(v)
	}
	return nil
}

// PasswordPlaceholder stands for the admin password in GET /api/config (only
// its hash exists); sent back unchanged, it keeps the password.
const PasswordPlaceholder = "********"

// Masked returns v as a JSON-ready map with every secret replaced by its hint.
func Masked(v config.Settings) map[string]any {
	v.APIKeys = hints(v.APIKeys)
	v.VertexAPIKeys = hints(v.VertexAPIKeys)
	v.AllowedTokens = hints(v.AllowedTokens)
	v.PaidKey = redact.Hint(v.PaidKey)
	v.AuthToken = PasswordPlaceholder
	v.Proxies = slices.Clone(v.Proxies)
	for i, p := range v.Proxies {
		v.Proxies[i] = maskProxy(p)
	}
	data, _ := json.Marshal(v)
	out := map[string]any{}
	_ = json.Unmarshal(data, &out)
	return out
}

// Merge applies a partial update (JSON object of variable names) onto cur.
// A secret sent back in its masked form keeps its current value, so a client
// may GET the config, change one field and PUT the whole thing back.
func Merge(cur config.Settings, patch []byte) (config.Settings, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(patch, &fields); err != nil {
		return cur, fmt.Errorf("%w: want a JSON object of settings: %v", ErrInvalid, err)
	}
	// Overlay at the top level through a fresh decode, so a list or map in
	// the patch replaces the current one and nothing aliases cur.
	base, _ := json.Marshal(cur)
	var merged map[string]json.RawMessage
	_ = json.Unmarshal(base, &merged)
	for k, v := range fields {
		merged[k] = v
	}
	data, _ := json.Marshal(merged)
	next := config.Defaults()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a misspelt variable is an error, not a silent no-op
	if err := dec.Decode(&next); err != nil {
		return cur, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	next.APIKeys = unmask(next.APIKeys, cur.APIKeys)
	next.VertexAPIKeys = unmask(next.VertexAPIKeys, cur.VertexAPIKeys)
	next.AllowedTokens = unmask(next.AllowedTokens, cur.AllowedTokens)
	next.Proxies = unmaskText(next.Proxies, cur.Proxies)
	if next.PaidKey != cur.PaidKey && next.PaidKey == redact.Hint(cur.PaidKey) {
		next.PaidKey = cur.PaidKey
	}
	if next.AuthToken == PasswordPlaceholder {
		next.AuthToken = cur.AuthToken
	}
	return next, nil
}

// maskProxy hides a proxy's password (user:****@host) and any key-like text.
func maskProxy(p string) string {
	if at := strings.LastIndex(p, "@"); at >= 0 {
		start := strings.Index(p, "://") + 3 // 2 when there is no scheme: start of string
		if start == 2 {
			start = 0
		}
		if colon := strings.Index(p[start:at], ":"); colon >= 0 {
			p = p[:start+colon+1] + "****" + p[at:]
		}
	}
	return redact.Text(p)
}

func hints(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = redact.Hint(s)
	}
	return out
}

// unmask replaces each entry that is the hint of a current secret by that secret.
func unmask(next, cur []string) []string {
	used := make([]bool, len(cur))
	out := make([]string, 0, len(next))
	for _, n := range next {
		v := n
		for i, c := range cur {
			if !used[i] && (n == c || n == redact.Hint(c)) {
				v, used[i] = c, true
				break
			}
		}
		out = append(out, v)
	}
	return out
}

func unmaskText(next, cur []string) []string {
	out := slices.Clone(next)
	for i, n := range out {
		for _, c := range cur {
			if n == maskProxy(c) {
				out[i] = c
				break
			}
		}
	}
	return out
}
