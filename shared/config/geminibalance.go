package config

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// GeminiBalanceOnly lists the variables gemini-balance documents that this
// gateway does not read, each with what to do instead. A gemini-balance .env
// works unchanged: these are reported by name at start (Unsupported), never
// silently ignored; every other variable it documents is a Settings or Infra
// field.
var GeminiBalanceOnly = map[string]string{
	"DATABASE_TYPE":   "the store is MongoDB (MONGO_URI, or the all-in-one's embedded one); bring the old database over with `gemini-balance import --from`",
	"SQLITE_DATABASE": "see DATABASE_TYPE",
	"MYSQL_HOST":      "see DATABASE_TYPE",
	"MYSQL_PORT":      "see DATABASE_TYPE",
	"MYSQL_USER":      "see DATABASE_TYPE",
	"MYSQL_PASSWORD":  "see DATABASE_TYPE",
	"MYSQL_DATABASE":  "see DATABASE_TYPE",
	"MYSQL_SOCKET":    "see DATABASE_TYPE",

	"URL_NORMALIZATION_ENABLED": "not supported: clients must use the documented routes",

	"UPLOAD_PROVIDER":                 "image hosting is not supported: generated images are returned inline (base64)",
	"SMMS_SECRET_TOKEN":               "see UPLOAD_PROVIDER",
	"PICGO_API_KEY":                   "see UPLOAD_PROVIDER",
	"PICGO_API_URL":                   "see UPLOAD_PROVIDER",
	"CLOUDFLARE_IMGBED_URL":           "see UPLOAD_PROVIDER",
	"CLOUDFLARE_IMGBED_AUTH_CODE":     "see UPLOAD_PROVIDER",
	"CLOUDFLARE_IMGBED_UPLOAD_FOLDER": "see UPLOAD_PROVIDER",
	"OSS_ENDPOINT":                    "see UPLOAD_PROVIDER",
	"OSS_ENDPOINT_INNER":              "see UPLOAD_PROVIDER",
	"OSS_ACCESS_KEY":                  "see UPLOAD_PROVIDER",
	"OSS_ACCESS_KEY_SECRET":           "see UPLOAD_PROVIDER",
	"OSS_BUCKET_NAME":                 "see UPLOAD_PROVIDER",
	"OSS_REGION":                      "see UPLOAD_PROVIDER",

	"STREAM_OPTIMIZER_ENABLED":    "not supported: streamed chunks are relayed as they arrive, never re-chunked or delayed",
	"STREAM_MIN_DELAY":            "see STREAM_OPTIMIZER_ENABLED",
	"STREAM_MAX_DELAY":            "see STREAM_OPTIMIZER_ENABLED",
	"STREAM_SHORT_TEXT_THRESHOLD": "see STREAM_OPTIMIZER_ENABLED",
	"STREAM_LONG_TEXT_THRESHOLD":  "see STREAM_OPTIMIZER_ENABLED",
	"STREAM_CHUNK_SIZE":           "see STREAM_OPTIMIZER_ENABLED",

	"FILES_CLEANUP_ENABLED":        "not configurable: file records carry Google's expiry and are dropped with the file",
	"FILES_CLEANUP_INTERVAL_HOURS": "see FILES_CLEANUP_ENABLED",

	"GITHUB_REPO_OWNER": "no update check",
	"GITHUB_REPO_NAME":  "no update check",
	"ENABLE_TTS":        "unused in gemini-balance too: TTS models are always recognised",
}

// Unsupported names the gemini-balance-only variables set (non-empty) in
// lookup, sorted, each as "NAME (what to do instead)".
func Unsupported(lookup func(string) (string, bool)) []string {
	var out []string
	for name, why := range GeminiBalanceOnly {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			out = append(out, name+" ("+why+")")
		}
	}
	slices.Sort(out)
	return out
}

// LoadSettingsFrom is LoadSettings reading lookup instead of the process
// environment (gemini-balance's t_settings rows, for one).
func LoadSettingsFrom(lookup func(string) (string, bool)) (Settings, error) {
	var s Settings
	err := load(&s, lookup)
	if err == nil {
		s.Normalize()
		s.AllowedTokens = WithoutPassword(s.AllowedTokens, s.AuthToken)
	}
	return s, err
}

// Known reports whether name is a variable of Settings or Infra.
func Known(name string) bool {
	for _, f := range Fields() {
		if f.Name == name {
			return true
		}
	}
	return false
}

// LoadDotEnv sets, from the .env file at path, every variable the process
// environment does not already hold (the environment wins, as with
// gemini-balance's pydantic settings). A missing file is not an error. It
// returns the names it set.
func LoadDotEnv(path string) ([]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	defer f.Close()
	vars, err := ParseDotEnv(f)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	var set []string
	for _, kv := range vars {
		if _, ok := os.LookupEnv(kv[0]); ok {
			continue
		}
		if err := os.Setenv(kv[0], kv[1]); err != nil {
			return set, fmt.Errorf("config: %s: %s: %w", path, kv[0], err)
		}
		set = append(set, kv[0])
	}
	return set, nil
}

// ParseDotEnv reads the dotenv format gemini-balance's .env uses: NAME=value
// lines, '#' comments, an optional "export ", values optionally in single or
// double quotes (a quoted value may span lines, as a JSON list often does),
// and an unquoted value's trailing " # comment" dropped.
func ParseDotEnv(r io.Reader) ([][2]string, error) {
	var out [][2]string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		text = strings.TrimPrefix(text, "export ")
		name, value, ok := strings.Cut(text, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\"'") {
			return nil, fmt.Errorf("line %d: want NAME=value", line)
		}
		value = strings.TrimSpace(value)
		if q := value[:min(1, len(value))]; q == `"` || q == `'` {
			start := line
			for !closedQuote(value, q[0]) {
				if !sc.Scan() {
					return nil, fmt.Errorf("line %d: %s: unterminated %s quote", start, name, q)
				}
				line++
				value += "\n" + sc.Text()
			}
			value = strings.TrimSpace(value)
			end := strings.LastIndexByte(value, q[0])
			value = value[1:end]
			if q == `"` {
				value = strings.NewReplacer(`\n`, "\n", `\"`, `"`, `\\`, `\`).Replace(value)
			}
		} else if i := strings.Index(value, " #"); i >= 0 {
			value = strings.TrimSpace(value[:i])
		}
		out = append(out, [2]string{name, value})
	}
	return out, sc.Err()
}

// closedQuote reports whether value, which opens with quote q, closes it.
func closedQuote(value string, q byte) bool {
	for i := 1; i < len(value); i++ {
		switch value[i] {
		case '\\':
			if q == '"' {
				i++
			}
		case q:
			return true
		}
	}
	return false
}
