// Package config turns the environment into typed settings. It is the one
// source of truth for names, defaults and validation; the README's table is
// checked against it by a test.
//
// Two groups exist. Infra is read from the environment on every start (where
// to find NATS and MongoDB, which port to serve). Settings seed the settings
// document on first start; after that admind owns them and broadcasts changes
// over the settings KV bucket, so a saved setting applies live.
package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// SafetySetting is one Gemini safety setting.
type SafetySetting struct {
	Category  string `json:"category"`
	Threshold string `json:"threshold"`
}

// Settings are the live, admin-editable settings. JSON names are the
// environment variable names, as in gemini-balance.
type Settings struct {
	// Keys and tokens.
	APIKeys       []string `json:"API_KEYS" env:"API_KEYS" doc:"Gemini API keys imported into the pool on first start"`
	VertexAPIKeys []string `json:"VERTEX_API_KEYS" env:"VERTEX_API_KEYS" doc:"Vertex Express keys imported on first start"`
	PaidKey       string   `json:"PAID_KEY" env:"PAID_KEY" doc:"key for Imagen models only (images/generations and native :predict); the pool is never used for them"`
	AllowedTokens []string `json:"ALLOWED_TOKENS" env:"ALLOWED_TOKENS" doc:"client tokens accepted on the public API"`
	AuthToken     string   `json:"AUTH_TOKEN" env:"AUTH_TOKEN" doc:"admin password; never accepted as a client token; empty means first-run setup (POST /api/setup, once)"`

	// Upstream.
	BaseURL               string            `json:"BASE_URL" env:"BASE_URL" default:"https://generativelanguage.googleapis.com" doc:"upstream root; a trailing /v1beta is tolerated"`
	VertexExpressBaseURL  string            `json:"VERTEX_EXPRESS_BASE_URL" env:"VERTEX_EXPRESS_BASE_URL" default:"https://aiplatform.googleapis.com/v1beta1/publishers/google" doc:"Vertex Express base"`
	CustomHeaders         map[string]string `json:"CUSTOM_HEADERS" env:"CUSTOM_HEADERS" doc:"extra headers on every upstream call (JSON object)"`
	Proxies               []string          `json:"PROXIES" env:"PROXIES" doc:"http/https/socks5 proxy URLs for upstream calls"`
	ProxiesConsistentHash bool              `json:"PROXIES_USE_CONSISTENCY_HASH_BY_API_KEY" env:"PROXIES_USE_CONSISTENCY_HASH_BY_API_KEY" default:"true" doc:"sticky proxy per key (rendezvous hash)"`
	TimeOut               int               `json:"TIME_OUT" env:"TIME_OUT" default:"300" min:"1" doc:"upstream timeout, seconds"`

	// Key policy.
	MaxFailures        int    `json:"MAX_FAILURES" env:"MAX_FAILURES" default:"3" min:"1" doc:"consecutive soft failures (5xx, timeouts) before a key is disabled"`
	MaxRetries         int    `json:"MAX_RETRIES" env:"MAX_RETRIES" default:"3" min:"1" doc:"attempts per request, each on another key, before the first byte"`
	CooldownSeconds    int    `json:"COOLDOWN_SECONDS" env:"COOLDOWN_SECONDS" default:"60" min:"1" doc:"429 cooldown when upstream gives no RetryInfo; grows if it repeats"`
	TestModel          string `json:"TEST_MODEL" env:"TEST_MODEL" default:"gemini-2.5-flash-lite" doc:"model used to verify keys"`
	CheckIntervalHours int    `json:"CHECK_INTERVAL_HOURS" env:"CHECK_INTERVAL_HOURS" default:"1" min:"0" doc:"period of the key recovery tick; 0 turns it off"`
	Timezone           string `json:"TIMEZONE" env:"TIMEZONE" default:"UTC" doc:"timezone of scheduled jobs"`

	// Models and injections.
	SearchModels              []string          `json:"SEARCH_MODELS" env:"SEARCH_MODELS" default:"[\"gemini-2.5-flash\",\"gemini-2.5-pro\"]" doc:"models that get a -search variant"`
	ImageModels               []string          `json:"IMAGE_MODELS" env:"IMAGE_MODELS" default:"[\"gemini-2.0-flash-exp\",\"gemini-2.5-flash-image-preview\"]" doc:"models that get an -image variant"`
	ThinkingModels            []string          `json:"THINKING_MODELS" env:"THINKING_MODELS" doc:"models that get a -non-thinking variant"`
	ThinkingBudgetMap         map[string]int    `json:"THINKING_BUDGET_MAP" env:"THINKING_BUDGET_MAP" doc:"default thinking budget per model (JSON object)"`
	FilteredModels            []string          `json:"FILTERED_MODELS" env:"FILTERED_MODELS" default:"[\"gemini-1.0-pro-vision-latest\",\"gemini-pro-vision\",\"chat-bison-001\",\"text-bison-001\",\"embedding-gecko-001\"]" doc:"models hidden from lists and rejected"`
	SafetySettings            []SafetySetting   `json:"SAFETY_SETTINGS" env:"SAFETY_SETTINGS" default:"[{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"threshold\":\"OFF\"},{\"category\":\"HARM_CATEGORY_HATE_SPEECH\",\"threshold\":\"OFF\"},{\"category\":\"HARM_CATEGORY_SEXUALLY_EXPLICIT\",\"threshold\":\"OFF\"},{\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"threshold\":\"OFF\"},{\"category\":\"HARM_CATEGORY_CIVIC_INTEGRITY\",\"threshold\":\"BLOCK_NONE\"}]" doc:"safety settings added when the client sent none"`
	ShowThinkingProcess       bool              `json:"SHOW_THINKING_PROCESS" env:"SHOW_THINKING_PROCESS" default:"true" doc:"return thoughts as reasoning_content on OpenAI routes"`
	ShowSearchLink            bool              `json:"SHOW_SEARCH_LINK" env:"SHOW_SEARCH_LINK" default:"true" doc:"append citations for -search models on OpenAI routes"`
	CodeExecutionEnabled      bool              `json:"TOOLS_CODE_EXECUTION_ENABLED" env:"TOOLS_CODE_EXECUTION_ENABLED" default:"false" doc:"inject the codeExecution tool"`
	URLContextEnabled         bool              `json:"URL_CONTEXT_ENABLED" env:"URL_CONTEXT_ENABLED" default:"false" doc:"inject the urlContext tool"`
	URLContextModels          []string          `json:"URL_CONTEXT_MODELS" env:"URL_CONTEXT_MODELS" default:"[\"gemini-2.5-pro\",\"gemini-2.5-flash\",\"gemini-2.5-flash-lite\",\"gemini-2.0-flash\"]" doc:"models eligible for urlContext"`
	TTSModel                  string            `json:"TTS_MODEL" env:"TTS_MODEL" default:"gemini-2.5-flash-preview-tts" doc:"model behind /v1/audio/speech"`
	TTSVoiceName              string            `json:"TTS_VOICE_NAME" env:"TTS_VOICE_NAME" default:"Zephyr" doc:"fallback TTS voice"`
	TTSSpeed                  string            `json:"TTS_SPEED" env:"TTS_SPEED" default:"normal" doc:"slow, normal or fast"`
	CreateImageModel          string            `json:"CREATE_IMAGE_MODEL" env:"CREATE_IMAGE_MODEL" default:"gemini-2.5-flash-image-preview" doc:"image-output model behind /v1/images/generations"`
	FakeStreamEnabled         bool              `json:"FAKE_STREAM_ENABLED" env:"FAKE_STREAM_ENABLED" default:"false" doc:"OpenAI streams from a non-stream upstream call with keep-alive comments"`
	FakeStreamIntervalSeconds int               `json:"FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS" env:"FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS" default:"5" min:"1" doc:"keep-alive period of fake streams"`
	ExtraModelAliases         map[string]string `json:"MODEL_ALIASES,omitempty" env:"MODEL_ALIASES" doc:"optional alias → upstream model map"`

	// Logging and retention.
	LogLevel                     string `json:"LOG_LEVEL" env:"LOG_LEVEL" default:"info" oneof:"debug,info,warn,warning,error,critical" doc:"log level, applied live"`
	ErrorLogRecordRequestBody    bool   `json:"ERROR_LOG_RECORD_REQUEST_BODY" env:"ERROR_LOG_RECORD_REQUEST_BODY" default:"false" doc:"store the request body with error logs"`
	AutoDeleteErrorLogsEnabled   bool   `json:"AUTO_DELETE_ERROR_LOGS_ENABLED" env:"AUTO_DELETE_ERROR_LOGS_ENABLED" default:"true" doc:"delete old error logs on the retention tick"`
	AutoDeleteErrorLogsDays      int    `json:"AUTO_DELETE_ERROR_LOGS_DAYS" env:"AUTO_DELETE_ERROR_LOGS_DAYS" default:"7" min:"1" doc:"error log age limit, days"`
	AutoDeleteRequestLogsEnabled bool   `json:"AUTO_DELETE_REQUEST_LOGS_ENABLED" env:"AUTO_DELETE_REQUEST_LOGS_ENABLED" default:"false" doc:"delete old request logs on the retention tick"`
	AutoDeleteRequestLogsDays    int    `json:"AUTO_DELETE_REQUEST_LOGS_DAYS" env:"AUTO_DELETE_REQUEST_LOGS_DAYS" default:"30" min:"1" doc:"request log age limit, days"`
	RollupRetentionDays          int    `json:"ROLLUP_RETENTION_DAYS" env:"ROLLUP_RETENTION_DAYS" default:"400" min:"1" doc:"hourly rollup age limit, days"`

	// Files and admin.
	FilesUserIsolation bool `json:"FILES_USER_ISOLATION_ENABLED" env:"FILES_USER_ISOLATION_ENABLED" default:"true" doc:"a client token sees only its own files"`
	AdminSessionExpire int  `json:"ADMIN_SESSION_EXPIRE" env:"ADMIN_SESSION_EXPIRE" default:"3600" min:"300" doc:"admin session lifetime, seconds"`

	// Load.
	MaxConcurrentRequests int `json:"MAX_CONCURRENT_REQUESTS" env:"MAX_CONCURRENT_REQUESTS" default:"1024" min:"1" doc:"edge: client requests one replica serves at once (streams included); beyond it 503 with Retry-After in the route's error shape, applied live"`
}

// Infra is read from the environment on every start and never stored.
type Infra struct {
	Port         int    `env:"PORT" default:"8000" min:"1" doc:"HTTP port of the public API and admin (all-in-one, edge, admind)"`
	DataDir      string `env:"DATA_DIR" default:"./data" doc:"all-in-one data: JetStream store and embedded FerretDB (created mode 0700)"`
	NATSURL      string `env:"NATS_URL" doc:"NATS server, or a comma-separated list of a cluster's servers (the client fails over between them); empty in the all-in-one means the embedded server"`
	NATSListen   string `env:"NATS_LISTEN" default:"127.0.0.1:4222" doc:"all-in-one: where the embedded NATS server also listens, with credentials generated per start (DATA_DIR/nats-*.url); off for none"`
	NATSUser     string `env:"NATS_USER" doc:"NATS user name"`
	NATSPassword string `env:"NATS_PASSWORD" doc:"NATS password"`
	NATSToken    string `env:"NATS_TOKEN" doc:"NATS token"`
	NATSCreds    string `env:"NATS_CREDS" doc:"NATS credentials file"`
	// JetStreamReplicas must be the same in every service: the owner of a
	// stream or bucket applies it, the others create with it when missing.
	JetStreamReplicas int    `env:"JETSTREAM_REPLICAS" default:"1" min:"1" max:"5" doc:"replicas of every JetStream stream and KV bucket; 3 on a 3-node NATS cluster (R3), the same in every service"`
	MongoURI          string `env:"MONGO_URI" doc:"MongoDB URI; empty in the all-in-one means the embedded FerretDB"`
	MongoDB           string `env:"MONGO_DB" default:"gemini_balance" doc:"MongoDB database name"`
	EncryptionKey     string `env:"ENCRYPTION_KEY" doc:"passphrase that encrypts stored keys (AES-GCM); keep it safe"`
	Replica           string `env:"REPLICA" doc:"replica name in events and logs; defaults to the host name"`
	MetricsAddr       string `env:"METRICS_ADDR" default:"127.0.0.1:9090" doc:"where Prometheus /metrics is served, apart from the public port; loopback by default (set :9090 for a scraper on the network); off disables it"`
	EventQueue        int    `env:"EVENT_QUEUE" default:"65536" min:"1" doc:"edge: events held in memory while the bus is slow; beyond it events are dropped and counted"`
	EventCompression  string `env:"EVENT_COMPRESSION" default:"s2" oneof:"s2,off" doc:"edge: s2 compresses event batches of 1 KiB or more on the bus; off sends plain JSON (while logd replicas older than the compression still run)"`
	LogdAckWait       int    `env:"LOGD_ACK_WAIT" default:"60" min:"1" doc:"logd: seconds before an event message a logd received and never acknowledged (it died) goes to another logd"`
	// TrustedProxies is checked by admind, which parses the entries.
	TrustedProxies []string `env:"TRUSTED_PROXIES" doc:"admind: CIDRs (or IPs) of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (client address for login throttling, Secure cookie behind TLS); empty trusts none"`
	// TickInterval is for tests: recovery and retention can be watched
	// without waiting an hour.
	TickInterval time.Duration `env:"TICK_INTERVAL" doc:"development only: schedulerd (and the all-in-one) tick at this period (a Go duration such as 2s) instead of their schedules"`
}

// Defaults returns Settings with every documented default applied.
func Defaults() Settings {
	var s Settings
	if err := load(&s, func(string) (string, bool) { return "", false }); err != nil {
		panic(err) // defaults are constants; a failure is a programming error
	}
	return s
}

// LoadSettings reads Settings from the environment over the defaults.
func LoadSettings() (Settings, error) {
	var s Settings
	err := load(&s, os.LookupEnv)
	if err == nil {
		s.Normalize()
		s.AllowedTokens = WithoutPassword(s.AllowedTokens, s.AuthToken)
	}
	return s, err
}

// WithoutPassword drops every token that equals the admin password after
// trimming: the admin password is never a client token, even when the
// environment lists it in ALLOWED_TOKENS.
func WithoutPassword(tokens []string, password string) []string {
	password = strings.TrimSpace(password)
	if password == "" {
		return tokens
	}
	out := make([]string, 0, len(tokens))
	for _, t := range tokens {
		if strings.TrimSpace(t) != password {
			out = append(out, t)
		}
	}
	return out
}

// LoadInfra reads Infra from the environment over the defaults.
func LoadInfra() (Infra, error) {
	var in Infra
	err := load(&in, os.LookupEnv)
	if err == nil && in.Replica == "" {
		in.Replica, _ = os.Hostname()
	}
	if err == nil {
		_, err = ParseTrustedProxies(in.TrustedProxies)
	}
	return in, err
}

// ParseTrustedProxies reads TRUSTED_PROXIES entries: CIDRs or single addresses.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("config: TRUSTED_PROXIES: %q is neither a CIDR nor an IP address", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Normalize fixes tolerated forms: a trailing slash or /v1beta on BASE_URL.
func (s *Settings) Normalize() {
	b := strings.TrimRight(strings.TrimSpace(s.BaseURL), "/")
	for _, suffix := range []string{"/v1beta", "/v1"} {
		b = strings.TrimSuffix(b, suffix)
	}
	s.BaseURL = b
	s.VertexExpressBaseURL = strings.TrimRight(s.VertexExpressBaseURL, "/")
}

// Field describes one variable, for docs and the README check.
type Field struct {
	Name, Default, Doc string
}

// Fields lists every variable of Settings and Infra.
func Fields() []Field {
	var out []Field
	for _, t := range []reflect.Type{reflect.TypeOf(Infra{}), reflect.TypeOf(Settings{})} {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Tag.Get("env") == "" {
				continue
			}
			out = append(out, Field{f.Tag.Get("env"), f.Tag.Get("default"), f.Tag.Get("doc")})
		}
	}
	return out
}

func load(dst any, lookup func(string) (string, bool)) error {
	v := reflect.ValueOf(dst).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("env")
		if name == "" {
			continue
		}
		raw, ok := lookup(name)
		if !ok || strings.TrimSpace(raw) == "" {
			raw, ok = f.Tag.Get("default"), f.Tag.Get("default") != ""
		}
		if !ok {
			continue
		}
		if err := setField(v.Field(i), raw); err != nil {
			return fmt.Errorf("config: %s: %w", name, err)
		}
		if err := checkBounds(f, v.Field(i)); err != nil {
			return fmt.Errorf("config: %s: %w", name, err)
		}
	}
	return nil
}

// Validate checks bounds of an already populated Settings (from the admin API).
func (s *Settings) Validate() error {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if err := checkBounds(t.Field(i), v.Field(i)); err != nil {
			return fmt.Errorf("%s: %w", t.Field(i).Tag.Get("env"), err)
		}
	}
	return nil
}

func checkBounds(f reflect.StructField, v reflect.Value) error {
	if m := f.Tag.Get("min"); m != "" && v.Kind() == reflect.Int {
		lo, _ := strconv.Atoi(m)
		if v.Int() < int64(lo) {
			return fmt.Errorf("must be at least %d, got %d", lo, v.Int())
		}
	}
	if m := f.Tag.Get("max"); m != "" && v.Kind() == reflect.Int {
		hi, _ := strconv.Atoi(m)
		if v.Int() > int64(hi) {
			return fmt.Errorf("must be at most %d, got %d", hi, v.Int())
		}
	}
	if o := f.Tag.Get("oneof"); o != "" && v.Kind() == reflect.String {
		for _, allowed := range strings.Split(o, ",") {
			if strings.EqualFold(v.String(), allowed) {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s, got %q", o, v.String())
	}
	return nil
}

func setField(fv reflect.Value, raw string) error {
	raw = strings.TrimSpace(raw)
	if fv.Type() == reflect.TypeFor[time.Duration]() {
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration like 2s, got %q", raw)
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(raw)
	case reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", raw)
		}
		fv.SetInt(int64(n))
	case reflect.Bool:
		b, err := parseBool(raw)
		if err != nil {
			return err
		}
		fv.SetBool(b)
	case reflect.Slice:
		if fv.Type().Elem().Kind() == reflect.String {
			list, err := ParseList(raw)
			if err != nil {
				return err
			}
			fv.Set(reflect.ValueOf(list))
			return nil
		}
		return unmarshalJSON(fv, raw)
	case reflect.Map:
		return unmarshalJSON(fv, raw)
	default:
		return fmt.Errorf("unsupported kind %s", fv.Kind())
	}
	return nil
}

func unmarshalJSON(fv reflect.Value, raw string) error {
	p := reflect.New(fv.Type())
	err := json.Unmarshal([]byte(raw), p.Interface())
	if err != nil && strings.Contains(raw, "'") && !strings.Contains(raw, `"`) {
		// gemini-balance accepts Python-style single-quoted dicts.
		raw = strings.ReplaceAll(raw, "'", `"`)
		err = json.Unmarshal([]byte(raw), p.Interface())
	}
	if err != nil && fv.Type() == reflect.TypeOf(map[string]int{}) {
		// gemini-balance's budgets are floats ("1024.0"); whole ones are kept.
		var floats map[string]float64
		if json.Unmarshal([]byte(raw), &floats) == nil {
			m := make(map[string]int, len(floats))
			for k, f := range floats {
				if f != float64(int(f)) {
					return fmt.Errorf("want whole numbers, got %v for %q", f, k)
				}
				m[k] = int(f)
			}
			fv.Set(reflect.ValueOf(m))
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("want JSON (%s): %v", fv.Type(), err)
	}
	fv.Set(p.Elem())
	return nil
}

func parseBool(raw string) (bool, error) {
	switch strings.ToLower(raw) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %q", raw)
}

// ParseList accepts a JSON array of strings, or comma/newline-separated text.
// Blanks are dropped and surrounding quotes trimmed.
func ParseList(raw string) ([]string, error) {
	raw = strings.TrimSpace(raw)
	if strings.HasPrefix(raw, "[") {
		var list []string
		if err := json.Unmarshal([]byte(raw), &list); err != nil {
			return nil, fmt.Errorf("want a JSON array of strings or comma-separated text: %v", err)
		}
		return compact(list), nil
	}
	return compact(strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })), nil
}

func compact(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = strings.Trim(strings.TrimSpace(s), `"'`)
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
