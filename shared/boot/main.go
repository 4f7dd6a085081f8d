package boot

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gemini-balance-go/shared/obs"
)

// Service is the shape every service package has (edge/gateway,
// keyd/service, logd/service, admind/server, schedulerd/ticks): built by its
// New from one Deps, it runs until ctx ends and says whether it is ready.
type Service interface {
	// Run serves until ctx ends, then stops cleanly; an error means the
	// service failed.
	Run(ctx context.Context) error
	// Ready is nil while the service does its work (/readyz).
	Ready(ctx context.Context) error
}

// HTTPService is a Service with an HTTP surface of its own (edge, admind).
// Its handler serves its own /healthz and /readyz.
type HTTPService interface {
	Service
	Handler() http.Handler
}

// Build wires a service from a started process: the whole of a main.
type Build func(ctx context.Context, p *Process) (Service, error)

// Main is a service binary: the healthcheck subcommand, or Start, build,
// then run until SIGINT or SIGTERM while serving PORT. It exits 1 when any
// step fails.
func Main(service string, build Build) {
	Command(service, func(ctx context.Context) error { return run(ctx, service, build) })
}

// Command is a binary's main (the services' and the all-in-one's): the
// healthcheck subcommand, or run until SIGINT or SIGTERM; a second signal
// kills the process the default way. It exits 1 when run fails.
func Command(name string, run func(ctx context.Context) error) {
	if len(os.Args) > 1 && os.Args[1] == HealthcheckArg {
		os.Exit(Healthcheck(os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	err := run(ctx)
	stop()
	if err != nil {
		obs.NewLogger(os.Stderr, name).Error(name+" stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, service string, build Build) error {
	p, err := Start(ctx, service)
	if err != nil {
		return err
	}
	defer p.Close()
	svc, err := build(ctx, p)
	if err != nil {
		return err
	}
	return p.Run(ctx, svc)
}

// Run runs svc and serves PORT until ctx ends or either fails, and returns
// once both have stopped. A service without a handler gets /healthz and
// /readyz (the process's checks and svc.Ready) from the start; an
// HTTPService's handler is served once svc is ready, so nothing reaches its
// API before its start-up is done (admind's first-run setup, say).
func (p *Process) Run(ctx context.Context, svc Service) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- svc.Run(ctx) }()
	h := http.Handler(p.HealthMux(obs.Check{Name: p.Service, Check: svc.Ready}))
	if hs, ok := svc.(HTTPService); ok {
		if err := waitReady(ctx, p.Service, svc, runDone); err != nil {
			cancel()
			return err
		}
		h = hs.Handler()
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- p.Serve(ctx, h, p.Drain) }()
	var err error
	select {
	case err = <-runDone: // ctx ended, or the service failed
		cancel()
		err = errors.Join(err, <-serveDone)
	case err = <-serveDone: // ctx ended and the server drained, or PORT failed
		cancel()
		err = errors.Join(err, <-runDone)
	}
	return err
}

// waitReady polls svc.Ready until it passes; it returns early when ctx ends
// (nil: a stop during start-up is no failure) or when Run returned.
func waitReady(ctx context.Context, name string, svc Service, runDone <-chan error) error {
	for svc.Ready(ctx) != nil {
		select {
		case <-ctx.Done():
			return <-runDone
		case err := <-runDone:
			if err == nil {
				err = errors.New(name + " stopped during start-up")
			}
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
