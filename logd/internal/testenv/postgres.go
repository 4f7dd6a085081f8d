package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gemini-balance-go/testkit/storetest"
)

// StartPostgres starts a throwaway PostgreSQL cluster (Debian's postgresql
// package) as the postgres user on a free port and returns a URL of its
// database "ferretdb". It skips the test or benchmark when PostgreSQL is not
// installed.
func StartPostgres(t testing.TB) string { return startPostgres(t, "") }

// StartPostgresIn is StartPostgres on a cluster kept in dir (created on
// first use, stopped but not removed at the end), so a benchmark can reuse
// what it seeded before.
func StartPostgresIn(t testing.TB, dir string) string { return startPostgres(t, dir) }

func startPostgres(t testing.TB, keep string) string {
	t.Helper()
	pgCtl, err := exec.LookPath("pg_ctl")
	if err != nil {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
		if len(matches) == 0 {
			t.Skip("PostgreSQL is not installed (apt-get install postgresql)")
		}
		pgCtl = matches[len(matches)-1]
	}
	if real, err := filepath.EvalSymlinks(pgCtl); err == nil {
		pgCtl = real
	}
	bin := filepath.Dir(pgCtl)
	dir := keep
	if dir == "" {
		tmp, err := os.MkdirTemp("", "logd-pg-")
		if err != nil {
			t.Fatal(err)
		}
		dir = tmp
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot hand a directory to the postgres user: %v %s", err, out)
	}
	data := filepath.Join(dir, "data")
	_, statErr := os.Stat(filepath.Join(data, "PG_VERSION"))
	fresh := statErr != nil
	if fresh {
		run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
	}
	// LOGD_BENCH_PG_OPTS adds server settings, e.g. "-c synchronous_commit=off".
	run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "start",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c shared_buffers=256MB %s", port, dir, os.Getenv("LOGD_BENCH_PG_OPTS")))
	t.Cleanup(func() {
		_ = exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "fast", "stop").Run()
	})
	lastPsql.Store(&psqlCmd{bin: filepath.Join(bin, "psql"), port: strconv.Itoa(port)})
	if pid, err := os.ReadFile(filepath.Join(data, "postmaster.pid")); err == nil {
		if n, err := strconv.Atoi(strings.SplitN(string(pid), "\n", 2)[0]); err == nil {
			postmaster.Store(int64(n))
		}
	}
	if fresh {
		run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "ferretdb")
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/ferretdb", port)
}

var (
	postmaster atomic.Int64
	lastPsql   atomic.Pointer[psqlCmd]
)

type psqlCmd struct{ bin, port string }

// PostgresQuery runs sql with psql on database "ferretdb" of the cluster
// started last and returns its output (benchmark diagnostics, e.g.
// pg_stat_statements when LOGD_BENCH_PG_OPTS preloads it).
func PostgresQuery(sql string) (string, error) {
	p := lastPsql.Load()
	if p == nil {
		return "", fmt.Errorf("no PostgreSQL cluster started")
	}
	out, err := exec.Command(p.bin, "-h", "127.0.0.1", "-p", p.port, "-U", "postgres", "-d", "ferretdb", "-c", sql).CombinedOutput()
	return string(out), err
}

// PostgresCPU returns the CPU time used so far by the PostgreSQL cluster
// started last (its postmaster and the backends alive now, which hold
// FerretDB's pool connections), for benchmarks that split CPU cost between
// processes. It is zero when there is no such cluster or /proc is missing.
func PostgresCPU() time.Duration {
	pid := postmaster.Load()
	if pid == 0 {
		return 0
	}
	var total time.Duration
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state ppid ... utime(14) stime(15).
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		fs := strings.Fields(string(b)[i+1:])
		if len(fs) < 13 {
			continue
		}
		self, _ := strconv.ParseInt(strings.TrimSuffix(filepath.Base(filepath.Dir(f)), "/"), 10, 64)
		ppid, _ := strconv.ParseInt(fs[1], 10, 64)
		if self != pid && ppid != pid {
			continue
		}
		ticks := int64(0)
		for _, k := range []int{11, 12} { // utime, stime
			n, _ := strconv.ParseInt(fs[k], 10, 64)
			ticks += n
		}
		if self == pid { // and the backends that have exited
			for _, k := range []int{13, 14} {
				n, _ := strconv.ParseInt(fs[k], 10, 64)
				ticks += n
			}
		}
		total += time.Duration(ticks) * time.Second / 100 // USER_HZ
	}
	return total
}

// StartFerretPostgres starts FerretDB on a fresh PostgreSQL cluster and returns its MongoDB URI.
func StartFerretPostgres(t testing.TB) string {
	t.Helper()
	return storetest.StartOnPostgres(t, StartPostgres(t))
}

// StartFerretPostgresIn is StartFerretPostgres on a cluster kept in dir
// (see StartPostgresIn).
func StartFerretPostgresIn(t testing.TB, dir string) string {
	t.Helper()
	return storetest.StartOnPostgres(t, StartPostgresIn(t, dir))
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
