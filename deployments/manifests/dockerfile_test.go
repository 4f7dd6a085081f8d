package manifests

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// The Dockerfile, as BuildKit reads it: a Go build stage and a distroless
// runtime stage that holds only the binary, runs as a non-root user, and
// checks its health with the binary's own `healthcheck` subcommand.
func TestDockerfileMultiStageNonRootWithHealthcheck(t *testing.T) {
	f, err := os.Open("../docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ast, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("BuildKit cannot parse the Dockerfile: %v", err)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		t.Fatalf("BuildKit rejects the Dockerfile: %v", err)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stage(s), want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.BaseName, "golang:") || build.Name != "build" {
		t.Errorf("first stage %q FROM %s, want the Go toolchain as \"build\"", build.Name, build.BaseName)
	}
	if !strings.HasPrefix(final.BaseName, "gcr.io/distroless/static") {
		t.Errorf("runtime stage FROM %s, want distroless static (no shell, no libc)", final.BaseName)
	}
	var (
		user       string
		health     *instructions.HealthCheckCommand
		entrypoint []string
		copies     []*instructions.CopyCommand
	)
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			health = c
		case *instructions.EntrypointCommand:
			entrypoint = c.CmdLine
		case *instructions.CopyCommand:
			copies = append(copies, c)
		case *instructions.RunCommand:
			t.Errorf("runtime stage RUNs %v: distroless has no shell", c.CmdLine)
		}
	}
	if u := strings.SplitN(user, ":", 2)[0]; u == "" || u == "root" || u == "0" {
		t.Errorf("runtime stage runs as %q, want a non-root user", user)
	}
	if health == nil {
		t.Fatal("no HEALTHCHECK")
	}
	if want := []string{"CMD", "/usr/local/bin/service", "healthcheck"}; !slices.Equal(health.Health.Test, want) {
		t.Errorf("HEALTHCHECK %v, want %v (the binary probes itself)", health.Health.Test, want)
	}
	if health.Health.Interval <= 0 || health.Health.Timeout <= 0 || health.Health.StartPeriod <= 0 {
		t.Errorf("HEALTHCHECK without interval, timeout or start period: %+v", health.Health)
	}
	if !slices.Equal(entrypoint, []string{"/usr/local/bin/service"}) {
		t.Errorf("ENTRYPOINT %v, want the service binary the healthcheck runs", entrypoint)
	}
	for _, c := range copies {
		if c.From != build.Name {
			t.Errorf("runtime stage copies %v from %q, not from the build stage", c.SourcePaths, c.From)
		}
	}
	var built bool
	for _, c := range build.Commands {
		if r, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "CGO_ENABLED=0 go build") {
			built = true
		}
	}
	if !built {
		t.Error("build stage does not build a static binary (CGO_ENABLED=0 go build)")
	}
}
