// Command bench is the #13 benchmark: it runs the floor (a bare
// httputil.ReverseProxy that injects keys, full duplex) and the
// gemini-balance all-in-one (embedded NATS, embedded FerretDB on SQLite, every
// request logged) side by side against one fake Gemini upstream, with
// interleaved reps (floor, all-in-one, floor, all-in-one, ...), and prints one
// table with ratios to the floor:
//
//	go run ./deployments/bench                                # 3 reps, 32 connections, 10 s each
//	go run ./deployments/bench -targets floor,edge,gb -profile /tmp/gb.pprof
//	go run ./deployments/bench -targets floor,gb=/tmp/gb-before,gb    # before/after
//
// Every target is a separate process (this binary in a role). The load is wrk
// when it is installed, else a Go load generator (-load). CPU is the whole
// process's user+system time from /proc, counted from the start of the load
// until every request's log is in the store (polled through the admin API),
// so deferred store work is included. Peak RSS is /proc VmHWM, reset before
// the load. -allinone runs a built gemini-balance binary instead of the
// in-process role; -profile takes a CPU profile over the same window and
// prints CPU by component, and writes beside it a CPU profile of the stream
// bursts (FILE-bursts.pprof) and heap profiles at the window's start and at
// its peak live heap (FILE-heap-start.pprof, FILE-heap.pprof; compare them
// with go tool pprof -diff_base).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		if role, ok := roles[os.Args[1]]; ok {
			if err := role(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
				os.Exit(1)
			}
			return
		}
	}
	var o options
	flag.IntVar(&o.reps, "reps", 3, "interleaved repetitions per target")
	flag.IntVar(&o.conns, "c", 32, "connections of the non-stream load")
	flag.DurationVar(&o.dur, "dur", 10*time.Second, "length of each non-stream load")
	flag.IntVar(&o.bursts, "bursts", 5, "stream bursts per rep")
	flag.IntVar(&o.burst, "burst", 200, "streams opened at once in each burst")
	targets := flag.String("targets", "floor,gb", "columns, in order: floor, edge (edge + NATS + keyd's pool in memory, no logd, no store), gb (the all-in-one); edge=BIN runs another build of this command in the edge role and gb=BIN a built gemini-balance binary, for before/after columns in one run")
	flag.StringVar(&o.load, "load", "auto", "non-stream load generator: wrk, go, or auto (wrk when installed)")
	flag.StringVar(&o.allinone, "allinone", "", "run this gemini-balance binary (go build ./deployments/allinone) instead of the in-process all-in-one")
	flag.StringVar(&o.profile, "profile", "", "CPU profile of the all-in-one's first non-stream window to this file (FILE-edge.pprof for edge) and print CPU by component")
	summarize := flag.String("summarize", "", "only print CPU (and, with its heap profiles beside it, allocation) by component of an existing profile (with -requests, the requests it covers)")
	requests := flag.Int("requests", 1000, "with -summarize: requests served in the profile's window")
	flag.Parse()
	if *summarize != "" {
		if err := summarizeWindow("saved profile", *summarize, float64(*requests)); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	o.targets = strings.Split(*targets, ",")
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
