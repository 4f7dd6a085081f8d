package app

import (
	"bufio"
	"bytes"
	"context"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// ReleaseStartupMemory gives back what only starting needed, once the
// all-in-one serves. Starting allocates far more than serving keeps (the
// admin password's argon2 hash alone takes 19 MiB), and the Go heap then
// holds on to it until its next collection, which at idle can be minutes
// away: FreeOSMemory collects and returns it now. Starting also runs code
// that never runs again (every package's init, FerretDB's and JetStream's
// setup), and the pages of the binary it touched stay mapped: dropping the
// mappings of the binary's read-only segments (they are never written, so
// the page cache holds the same bytes) leaves mapped only the pages serving
// touches again, which the kernel maps back from its cache without I/O. A
// segment with a copied-on-write page (a PIE binary's relocated read-only
// data) is left alone: dropping that page would lose the relocation.
func ReleaseStartupMemory() error {
	debug.FreeOSMemory()
	return dropCleanTextPages()
}

// ReleaseMemory does both, as the all-in-one does once it serves: the
// startup memory now, the free heap after each stretch of work until ctx
// ends.
func ReleaseMemory(ctx context.Context) error {
	go ReleaseWhenIdle(ctx)
	return ReleaseStartupMemory()
}

// ReleaseWhenIdle returns the heap's free memory to the OS each time the
// process goes quiet after work, until ctx ends. Go keeps the heap it grew
// to (twice the live heap at the last collection) until its next
// collection, and a quiet process collects only every two minutes: after a
// burst of streams the all-in-one would sit on the burst's memory. Quiet is
// less than idleAllocs allocated in each of two idleEvery periods in a row
// (the background work of an idle all-in-one allocates far less); busy is
// more in one. A release costs one collection of the live heap.
func ReleaseWhenIdle(ctx context.Context) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	allocated := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	t := time.NewTicker(idleEvery)
	defer t.Stop()
	last, quiet, busy := allocated(), 0, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if allocated()-last >= idleAllocs {
			busy, quiet = true, 0
		} else {
			quiet++
		}
		if busy && quiet >= 2 {
			debug.FreeOSMemory()
			busy = false
		}
		last = allocated()
	}
}

// Variables for the tests.
var (
	idleEvery         = 2 * time.Second
	idleAllocs uint64 = 4 << 20
)

type mapping struct{ start, end uintptr }

// cleanReadOnlyMappings returns, from /proc/self/smaps, the mappings of path
// that are not writable and hold no private (copied-on-write) page.
func cleanReadOnlyMappings(smaps []byte, path string) []mapping {
	var out []mapping
	var cur *mapping
	var private bool
	done := func() {
		if cur != nil && !private {
			out = append(out, *cur)
		}
		cur, private = nil, false
	}
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if field, ok := strings.CutSuffix(f[0], ":"); ok {
			// A field of the current mapping. A copied-on-write page counts
			// as Anonymous; Private_Dirty is no sign of one (a binary just
			// written has dirty page-cache pages).
			if cur != nil && field == "Anonymous" && len(f) > 1 && f[1] != "0" {
				private = true
			}
			continue
		}
		lo, hi, isRange := strings.Cut(f[0], "-")
		if !isRange || len(f) < 2 {
			continue // VmFlags and the like
		}
		done()
		if len(f) < 6 || f[5] != path || strings.ContainsAny(f[1], "w") {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		cur = &mapping{uintptr(start), uintptr(end)}
	}
	done()
	return out
}
