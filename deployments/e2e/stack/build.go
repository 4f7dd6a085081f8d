// Package stack is the process-stack harness: it builds the real binaries once per
// `go test` run and starts nats-server, gb-store (FerretDB), the fake Gemini upstream and
// the five services as separate processes, so end-to-end tests exercise exactly what
// ships — process boundaries, environment configuration, NATS and MongoDB included.
package stack

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Binary names and the packages they are built from.
var binaries = []struct{ name, pkg string }{
	{"nats-server", "github.com/nats-io/nats-server/v2"},
	{"gb-store", "github.com/gemini-balance-go/deployments/embedded/cmd/gb-store"},
	{"fakegemini", "github.com/gemini-balance-go/testkit/cmd/fakegemini"},
	{"keyd", "github.com/gemini-balance-go/keyd"},
	{"logd", "github.com/gemini-balance-go/logd"},
	{"admind", "github.com/gemini-balance-go/admind"},
	{"schedulerd", "github.com/gemini-balance-go/schedulerd"},
	{"edge", "github.com/gemini-balance-go/edge"},
	{"allinone", "github.com/gemini-balance-go/deployments/allinone"}, // the gemini-balance all-in-one
}

// Build is the result of building every binary once.
type Build struct {
	Dir    string
	Errors map[string]string // binary → build output, for binaries that did not build
}

var (
	buildOnce sync.Once
	built     *Build
	buildDir  string
)

// Main wraps testing.M for an e2e package: builds the binaries into a temporary
// directory shared by every test of the run, and removes it afterwards.
//
//	func TestMain(m *testing.M) { stack.Main(m) }
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "gb-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// Binaries builds (once per process) and returns the build result.
func Binaries(t testing.TB) *Build {
	t.Helper()
	buildOnce.Do(func() {
		dir := buildDir
		if dir == "" { // no TestMain: build under the test's temp root, leaked on purpose
			dir, _ = os.MkdirTemp("", "gb-e2e-bin-")
		}
		built = build(dir)
	})
	return built
}

func build(dir string) *Build {
	root, err := repoRoot()
	b := &Build{Dir: dir, Errors: map[string]string{}}
	if err != nil {
		for _, bin := range binaries {
			b.Errors[bin.name] = err.Error()
		}
		return b
	}
	// One go command links everything in parallel; only if that fails, build one by one
	// to tell which binary is missing or broken.
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, bin := range binaries {
		args = append(args, bin.pkg)
	}
	all := exec.Command("go", args...)
	all.Dir = root
	if all.Run() == nil {
		return b
	}
	for _, bin := range binaries {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, bin.name), bin.pkg)
		cmd.Dir = root
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			b.Errors[bin.name] = strings.TrimSpace(out.String() + "\n" + err.Error())
		}
	}
	return b
}

// Path is the built binary's path.
func (b *Build) Path(name string) string { return filepath.Join(b.Dir, name) }

// repoRoot finds the directory holding go.work, walking up from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.work not found above the working directory")
		}
		dir = parent
	}
}
