package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gemini-balance-go/deployments/embedded/natsd"
	"github.com/gemini-balance-go/edge/gateway"
	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/natsx"
)

// serveEdgeOnly runs edge with an embedded NATS server (JetStream on disk,
// events stored) and keyd's pool in memory (keydPeer), without logd and any
// store: a diagnostic column that separates edge's own cost from request
// logging. control serves the profile switch (see serveControl).
func serveEdgeOnly(upstream string, keys []string, control string) error {
	if err := serveControl(control); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "edgebench-nats-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := natsd.Start(natsd.Options{StoreDir: dir})
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nc, err := nats.Connect("", nats.InProcessServer(ns.Server))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := natsx.Provision(ctx, js); err != nil {
		return err
	}
	st := config.Defaults()
	st.BaseURL = upstream
	st.AllowedTokens = []string{token}
	st.APIKeys = keys
	kc, err := nats.Connect("", nats.InProcessServer(ns.Server)) // keyd's own connection, as in the all-in-one
	if err != nil {
		return err
	}
	defer kc.Close()
	stopPeer, err := keydPeer(kc, st)
	if err != nil {
		return err
	}
	defer stopPeer()
	infra, _ := config.LoadInfra()
	g, err := gateway.New(gateway.Deps{NC: nc, JS: js, Settings: natsx.NewSettings(st), Infra: infra,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	go func() { _ = g.Run(ctx) }()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: g.Handler(), ReadHeaderTimeout: 30 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	fmt.Printf("LISTEN http://%s\n", l.Addr())
	if err := srv.Serve(l); err != http.ErrServerClosed {
		return err
	}
	return nil
}
