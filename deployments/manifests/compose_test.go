package manifests

import (
	"bufio"
	"context"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/gemini-balance-go/shared/config"
)

const (
	composeFile = "../../docker-compose.yml"
	haFile      = "../../docker-compose.ha.yml"
	envExample  = "../../.env.example"
)

// apps are the five services built from deployments/docker/Dockerfile.
var apps = []string{"edge", "keyd", "logd", "admind", "schedulerd"}

// requiredVars are the ${VAR:?message} variables of the compose files: the
// secrets compose refuses to start without.
func requiredVars(t *testing.T, files ...string) []string {
	t.Helper()
	re := regexp.MustCompile(`\$\{([A-Z0-9_]+):\?`)
	var out []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(raw), -1) {
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// secretEnv gives every required variable a value, as a filled-in .env does.
func secretEnv(t *testing.T, files ...string) map[string]string {
	env := map[string]string{}
	for _, v := range requiredVars(t, files...) {
		env[v] = "s3cret" + strings.ToLower(strings.ReplaceAll(v, "_", ""))
	}
	return env
}

// load reads the compose files as `docker compose` does, with env as the
// only environment (no .env, no OS variables).
func load(t *testing.T, env map[string]string, files ...string) (*types.Project, error) {
	t.Helper()
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	opts, err := cli.NewProjectOptions(files, cli.WithName("gb"), cli.WithWorkingDirectory("../.."), cli.WithEnv(list))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func mustLoad(t *testing.T, files ...string) *types.Project {
	t.Helper()
	p, err := load(t, secretEnv(t, files...), files...)
	if err != nil {
		t.Fatalf("compose %v does not load: %v", files, err)
	}
	return p
}

func env(s types.ServiceConfig, name string) string {
	if v, ok := s.Environment[name]; ok && v != nil {
		return *v
	}
	return ""
}

// checkHealth: every service has a healthcheck, the app services run the
// binary's own `healthcheck` (distroless images have no curl), and every
// depends_on waits for health.
func checkHealth(t *testing.T, p *types.Project) {
	t.Helper()
	for name, s := range p.Services {
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL" {
			t.Errorf("%s has no healthcheck: %+v", name, hc)
			continue
		}
		if slices.Contains(apps, name) && !slices.Equal(hc.Test, []string{"CMD", "/usr/local/bin/service", "healthcheck"}) {
			t.Errorf("%s's healthcheck is %v, want the binary's own `healthcheck`", name, hc.Test)
		}
		if slices.Contains(hc.Test, "curl") {
			t.Errorf("%s's healthcheck uses curl", name)
		}
		for dep, d := range s.DependsOn {
			if d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s depends on %s with condition %q, want service_healthy", name, dep, d.Condition)
			}
		}
	}
}

func deps(s types.ServiceConfig) []string {
	var out []string
	for d := range s.DependsOn {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// docker-compose.yml: NATS, MongoDB, the five services and the Caddy proxy,
// each healthy before what needs it starts; every setting .env.example
// lists reaches the services; each service its own NATS user.
func TestComposeTopologyAndHealth(t *testing.T) {
	p := mustLoad(t, composeFile)
	names := p.ServiceNames()
	sort.Strings(names)
	if want := []string{"admind", "edge", "keyd", "logd", "mongo", "nats", "proxy", "schedulerd"}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	checkHealth(t, p)
	wantDeps := map[string][]string{
		"edge": {"keyd", "nats"}, "keyd": {"mongo", "nats"}, "logd": {"mongo", "nats"}, "admind": {"mongo", "nats"},
		"schedulerd": {"nats"}, "proxy": {"admind", "edge"},
	}
	for svc, want := range wantDeps {
		if got := deps(p.Services[svc]); !slices.Equal(got, want) {
			t.Errorf("%s depends on %v, want %v", svc, got, want)
		}
	}
	if r := p.Services["keyd"].Deploy; r == nil || r.Replicas == nil || *r.Replicas != 2 {
		t.Error("keyd does not run 2 replicas")
	}
	if ports := p.Services["proxy"].Ports; len(ports) != 1 || ports[0].Target != 8000 || ports[0].Published != "8000" {
		t.Errorf("proxy ports %+v, want 8000:8000", ports)
	}
	for _, svc := range apps {
		s := p.Services[svc]
		if len(s.Ports) != 0 {
			t.Errorf("%s publishes %v: only the proxy is reachable from outside", svc, s.Ports)
		}
		if s.Build == nil || s.Build.Args["SERVICE"] == nil || *s.Build.Args["SERVICE"] != svc {
			t.Errorf("%s is not built with SERVICE=%s", svc, svc)
		}
		if env(s, "NATS_USER") != svc || env(s, "NATS_PASSWORD") != secretEnv(t, composeFile)[strings.ToUpper(svc)+"_NATS_PASSWORD"] {
			t.Errorf("%s connects as %q with another user's password", svc, env(s, "NATS_USER"))
		}
		uri := env(s, "MONGO_URI")
		if owns := svc == "keyd" || svc == "logd" || svc == "admind"; owns != (uri != "") {
			t.Errorf("%s MONGO_URI %q: only keyd, logd and admind get database credentials", svc, uri)
		}
		for _, f := range config.Fields() {
			if composeOnly[f.Name] == "" && !hasKey(s, f.Name) {
				t.Errorf("%s: %s from .env does not reach the service", svc, f.Name)
			}
		}
	}
}

// composeOnly are config variables compose does not pass from .env, and why.
var composeOnly = map[string]string{
	"DATA_DIR": "all-in-one only", "NATS_LISTEN": "all-in-one only",
	"NATS_TOKEN": "compose uses per-service users", "NATS_CREDS": "compose uses per-service users",
	"REPLICA":         "defaults to the container's host name, unique per replica",
	"TRUSTED_PROXIES": "admind only",
	"TICK_INTERVAL":   "development only (tests set it on schedulerd)",
}

func hasKey(s types.ServiceConfig, k string) bool { _, ok := s.Environment[k]; return ok }

// docker-compose.ha.yml on top: a 3-node NATS cluster with JetStream, R3
// streams and buckets, a MongoDB replica set, and services that know every
// node.
func TestComposeHATopology(t *testing.T) {
	p := mustLoad(t, composeFile, haFile)
	checkHealth(t, p)
	nodes := []string{"nats", "nats-2", "nats-3"}
	routes := "nats://nats:6222,nats://nats-2:6222,nats://nats-3:6222"
	seen := map[string]bool{}
	for _, n := range nodes {
		s, ok := p.Services[n]
		if !ok {
			t.Fatalf("no NATS node %s", n)
		}
		cmd := s.Command
		flag := func(f string) string {
			if i := slices.Index(cmd, f); i >= 0 && i+1 < len(cmd) {
				return cmd[i+1]
			}
			return ""
		}
		if flag("-c") != "/etc/nats/nats.conf" || flag("--cluster_name") != "gb" || flag("--routes") != routes || flag("--cluster") == "" {
			t.Errorf("%s: %v is not a member of cluster gb with every route and the users' config", n, cmd)
		}
		if name := flag("--name"); name == "" || seen[name] {
			t.Errorf("%s: server name %q missing or not unique (JetStream clustering needs unique names)", n, name)
		} else {
			seen[name] = true
		}
		if len(s.Volumes) != 2 {
			t.Errorf("%s: volumes %v, want its config and its own JetStream store", n, s.Volumes)
		}
	}
	for _, m := range []string{"mongo", "mongo-2", "mongo-3"} {
		s, ok := p.Services[m]
		if !ok {
			t.Fatalf("no MongoDB member %s", m)
		}
		if !slices.Contains(s.Command, "--replSet") || !slices.Contains(s.Command, "rs0") || !slices.Contains(s.Command, "--keyFile") {
			t.Errorf("%s runs %v, want a member of replica set rs0 with a key file", m, s.Command)
		}
	}
	if hc := strings.Join(p.Services["mongo"].HealthCheck.Test, " "); !strings.Contains(hc, "rs.initiate") || !strings.Contains(hc, "PRIMARY") {
		t.Errorf("mongo's healthcheck %q neither initiates the set nor waits for a primary", hc)
	}
	for _, svc := range apps {
		s := p.Services[svc]
		if got := env(s, "NATS_URL"); got != "nats://nats:4222,nats://nats-2:4222,nats://nats-3:4222" {
			t.Errorf("%s NATS_URL %q, want every node", svc, got)
		}
		if env(s, "JETSTREAM_REPLICAS") != "3" {
			t.Errorf("%s JETSTREAM_REPLICAS %q, want 3 (R3)", svc, env(s, "JETSTREAM_REPLICAS"))
		}
		for _, n := range nodes {
			if _, ok := s.DependsOn[n]; !ok {
				t.Errorf("%s does not wait for %s", svc, n)
			}
		}
		uri := env(s, "MONGO_URI")
		switch svc {
		case "keyd", "logd", "admind":
			if !strings.Contains(uri, "replicaSet=rs0") || !strings.Contains(uri, "@mongo:27017,mongo-2:27017,mongo-3:27017/") {
				t.Errorf("%s MONGO_URI %q does not name the replica set", svc, uri)
			}
		default:
			if uri != "" {
				t.Errorf("%s gets MongoDB credentials", svc)
			}
		}
		if env(s, "NATS_USER") != svc {
			t.Errorf("%s lost its own NATS user in HA", svc)
		}
	}
}

// A missing secret stops `docker compose up` with a message naming it.
func TestComposeRefusesToStartWithoutASecret(t *testing.T) {
	for _, files := range [][]string{{composeFile}, {composeFile, haFile}} {
		full := secretEnv(t, files...)
		if len(full) < 9 {
			t.Fatalf("%v requires only %v", files, full)
		}
		for v := range full {
			e := map[string]string{}
			for k, x := range full {
				if k != v {
					e[k] = x
				}
			}
			if _, err := load(t, e, files...); err == nil || !strings.Contains(err.Error(), v) {
				t.Errorf("%v without %s: %v, want an error naming it", files, v, err)
			}
		}
	}
}

// No secret is written in a compose file: every password, key or token
// value is a required ${VAR:?…} (or an empty seed), never a default.
func TestComposeHasNoInlineSecrets(t *testing.T) {
	secretName := regexp.MustCompile(`^\s*-?\s*"?([A-Z0-9_]*(PASSWORD|SECRET|TOKEN|_KEY|KEYS)[A-Z0-9_]*)"?\s*[:=]\s*(.*)$`)
	for _, f := range []string{composeFile, haFile} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := regexp.MustCompile(`\$\{[A-Z0-9_]*(PASSWORD|TOKEN|KEY|USER|SECRET)[A-Z0-9_]*:-[^}]+\}`).FindString(string(raw)); m != "" {
			t.Errorf("%s: a secret with a default: %s", f, m)
		}
		sc := bufio.NewScanner(strings.NewReader(string(raw)))
		for sc.Scan() {
			m := secretName.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			v := strings.TrimSpace(m[3])
			if i := strings.Index(v, " #"); i >= 0 {
				v = strings.TrimSpace(v[:i])
			}
			if v != "" && v != `""` && !strings.HasPrefix(v, "${") && !strings.HasPrefix(v, "&") && !strings.HasPrefix(v, "*") {
				t.Errorf("%s: %s has an inline value %q", f, m[1], v)
			}
		}
	}
	// And loaded: no service's environment holds a value not from the .env.
	p := mustLoad(t, composeFile, haFile)
	for name, s := range p.Services {
		for k, v := range s.Environment {
			if v != nil && *v != "" && regexp.MustCompile(`PASSWORD|SECRET|_KEY$|TOKENS?$`).MatchString(k) && !strings.HasPrefix(*v, "s3cret") {
				t.Errorf("%s: %s=%q does not come from .env", name, k, *v)
			}
		}
	}
}

// envExampleVars reads .env.example: variables set (required) and those
// documented commented out with their defaults.
func envExampleVars(t *testing.T) (set map[string]string, documented map[string]string) {
	t.Helper()
	raw, err := os.ReadFile(envExample)
	if err != nil {
		t.Fatal(err)
	}
	set, documented = map[string]string{}, map[string]string{}
	line := regexp.MustCompile(`^(# )?([A-Z][A-Z0-9_]*)=(.*)$`)
	for _, l := range strings.Split(string(raw), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		v := strings.Trim(m[3], "'")
		if m[1] == "" {
			set[m[2]] = v
		}
		documented[m[2]] = v
	}
	return set, documented
}

// .env.example documents every variable shared/config reads (with its real
// default) and every variable the compose files read; the ones it leaves to
// fill in are exactly the secrets compose requires; and the README names
// each.
func TestEnvExampleDocumentsEveryVariable(t *testing.T) {
	set, documented := envExampleVars(t)
	fields := map[string]string{}
	for _, f := range config.Fields() {
		fields[f.Name] = f.Default
		d, ok := documented[f.Name]
		if !ok {
			t.Errorf(".env.example does not list %s", f.Name)
		} else if d != f.Default && f.Name != "ENCRYPTION_KEY" {
			t.Errorf(".env.example: %s=%q, config's default is %q", f.Name, d, f.Default)
		}
	}
	interpolated := map[string]bool{}
	re := regexp.MustCompile(`\$\{([A-Z0-9_]+)[:}]`)
	for _, f := range []string{composeFile, haFile} {
		raw, _ := os.ReadFile(f)
		for _, m := range re.FindAllStringSubmatch(string(raw), -1) {
			interpolated[m[1]] = true
			if _, ok := documented[m[1]]; !ok {
				t.Errorf("%s reads %s, which .env.example does not list", f, m[1])
			}
		}
	}
	for v := range documented {
		if _, ok := fields[v]; !ok && !interpolated[v] {
			t.Errorf(".env.example lists %s, which neither shared/config nor compose reads", v)
		}
	}
	var toFill []string
	for v := range set {
		toFill = append(toFill, v)
	}
	sort.Strings(toFill)
	required := requiredVars(t, composeFile)
	if !slices.Equal(toFill, required) {
		t.Errorf(".env.example leaves %v to fill in; docker-compose.yml requires %v", toFill, required)
	}
	for _, v := range requiredVars(t, haFile) {
		if _, ok := documented[v]; !ok {
			t.Errorf("docker-compose.ha.yml requires %s, which .env.example does not list", v)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for v := range documented {
		if !strings.Contains(string(readme), "`"+v+"`") && !strings.Contains(string(readme), v+"=") {
			t.Errorf("README does not mention %s", v)
		}
	}
}
