package app

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCleanReadOnlyMappingsKeepsOnlyTheBinarysUnmodifiedReadOnlySegments(t *testing.T) {
	smaps := `00400000-01e3f000 r-xp 00000000 fe:00 123 /opt/gb/gemini-balance
Size:              27900 kB
Rss:               20000 kB
Private_Dirty:     20000 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
01e3f000-03917000 r--p 01a3f000 fe:00 123 /opt/gb/gemini-balance
Rss:               22000 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
03917000-03a01000 r--p 03517000 fe:00 123 /opt/gb/gemini-balance
Rss:                 744 kB
Private_Dirty:       744 kB
Anonymous:           744 kB
03a01000-03b01000 rw-p 03601000 fe:00 123 /opt/gb/gemini-balance
Rss:                 100 kB
Anonymous:             0 kB
7f0000000000-7f0000100000 r-xp 00000000 fe:00 9 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 800 kB
Anonymous:             0 kB
7f0000200000-7f0000300000 rw-p 00000000 00:00 0
Rss:                1024 kB
Anonymous:          1024 kB
`
	got := cleanReadOnlyMappings([]byte(smaps), "/opt/gb/gemini-balance")
	want := []mapping{{0x00400000, 0x01e3f000}, {0x01e3f000, 0x03917000}}
	if len(got) != len(want) {
		t.Fatalf("mappings = %x, want %x (the text and read-only data; not the relocated page, the writable data, libc or the heap)", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("mapping %d = %x, want %x", i, got[i], want[i])
		}
	}
}

// The binary's resident pages go, and the process runs on (its code maps
// back in as it runs).
func TestReleaseStartupMemoryDropsTheBinarysResidentPagesAndTheProcessRunsOn(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/smaps")
	}
	before := exeRSS(t)
	if err := ReleaseStartupMemory(); err != nil {
		t.Fatal(err)
	}
	after := exeRSS(t)
	t.Logf("the test binary's resident pages: %d kB before, %d kB after", before, after)
	if after >= before/2 {
		t.Fatalf("resident pages of the binary went from %d kB to %d kB; want them mostly dropped", before, after)
	}
	// Code the test has not run since (and data it has not read) still works.
	if got := strings.Repeat(strconv.Itoa(42), 3); got != "424242" {
		t.Fatalf("after the drop: %q", got)
	}
	if exeRSS(t) == 0 {
		t.Fatal("no resident page of the binary at all, yet it runs: the count is wrong")
	}
}

// exeRSS sums Rss over this process's mappings of its executable.
func exeRSS(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	total, in := 0, false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			in = len(f) >= 6 && f[5] == exe
		case in && len(f) >= 2 && f[0] == "Rss:":
			n, _ := strconv.Atoi(f[1])
			total += n
		}
	}
	return total
}

// After work that grew the heap, a quiet process hands the memory back
// (without the release the dead memory stays: nothing allocates, so nothing
// collects it).
func TestReleaseWhenIdleHandsBackTheHeapOfFinishedWork(t *testing.T) {
	every, allocs := idleEvery, idleAllocs
	idleEvery, idleAllocs = 50*time.Millisecond, 1<<20
	t.Cleanup(func() { idleEvery, idleAllocs = every, allocs })
	debug.FreeOSMemory()
	before := heapHeld()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ReleaseWhenIdle(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// The work: 128 MiB live while it allocates on, then dropped.
	workSink = make([][]byte, 128)
	for i := range workSink {
		workSink[i] = make([]byte, 1<<20)
	}
	for end := time.Now().Add(4 * idleEvery); time.Now().Before(end); {
		garbageSink = make([]byte, 64<<10)
		time.Sleep(time.Millisecond)
	}
	workSink, garbageSink = nil, nil
	deadline := time.Now().Add(5 * time.Second)
	for heapHeld() > before+32<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("the heap still holds %d MiB more than before the finished work (128 MiB)", (heapHeld()-before)>>20)
		}
		time.Sleep(idleEvery)
	}
}

var (
	workSink    [][]byte
	garbageSink []byte
)

// heapHeld is the heap memory not handed back to the OS: objects (dead ones
// too, until collected), free and unused.
func heapHeld() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/free:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64() + s[2].Value.Uint64()
}
