// Package natsd runs an embedded NATS server with JetStream. The all-in-one
// binary uses it as its bus, and every service's component tests use it
// (through testkit/natstest) so they exercise real NATS rather than a mock.
package natsd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options say where the server keeps its JetStream store and where it listens.
type Options struct {
	// StoreDir holds the JetStream file store; it is created if missing.
	StoreDir string
	// Listen is "host:port". Port 0 or -1 picks a free port. Empty means
	// 127.0.0.1 on a free port. A host other than loopback needs
	// authentication (set by Configure), or Start refuses it.
	Listen string
	// NoListen opens no TCP port: clients connect in-process only
	// (nats.InProcessServer) and URL is empty.
	NoListen bool
	// ServerName names the server in monitoring and logs (default "gb-embedded").
	ServerName string
	// Log sends the server's own log lines to stderr; off by default because
	// nats-server is chatty and the services log what matters.
	Log bool
	// Configure, when set, adjusts the server options last (auth, limits, ...).
	Configure func(*server.Options)
}

// Server is a running embedded NATS server.
type Server struct {
	*server.Server
	// URL is the client URL, e.g. "nats://127.0.0.1:4222".
	URL string
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("natsd: StoreDir is required for JetStream")
	}
	if err := os.MkdirAll(o.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("natsd: create store dir: %w", err)
	}
	host, port := "127.0.0.1", server.RANDOM_PORT
	if !o.NoListen {
		var err error
		if host, port, err = splitListen(o.Listen); err != nil {
			return nil, err
		}
	}
	name := o.ServerName
	if name == "" {
		name = "gb-embedded"
	}
	opts := &server.Options{
		ServerName: name,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoLog:      !o.Log,
		NoSigs:     true, // the host process owns signal handling
		// Large enough for request bodies with inline media.
		MaxPayload: 8 << 20,
	}
	if o.NoListen {
		opts.DontListen = true
	}
	if o.Configure != nil {
		o.Configure(opts)
	}
	if !opts.DontListen && !isLoopback(opts.Host) && !hasAuth(opts) {
		return nil, fmt.Errorf("natsd: refusing to listen on %s without authentication: anyone on the network could read and write the bus; listen on 127.0.0.1 or configure users",
			net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)))
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsd: new server: %w", err)
	}
	if o.Log {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("natsd: server on %s not ready", net.JoinHostPort(host, strconv.Itoa(port)))
	}
	if !s.JetStreamEnabled() {
		s.Shutdown()
		return nil, errors.New("natsd: JetStream did not start")
	}
	srv := &Server{Server: s}
	if !opts.DontListen {
		srv.URL = s.ClientURL()
	}
	return srv, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hasAuth(o *server.Options) bool {
	return len(o.Users) > 0 || len(o.Nkeys) > 0 || o.Username != "" || o.Authorization != "" ||
		o.AuthCallout != nil || len(o.TrustedOperators) > 0 || len(o.TrustedKeys) > 0
}

// Shutdown stops the server and waits until it has flushed its store.
func (s *Server) Shutdown() {
	s.Server.Shutdown()
	s.Server.WaitForShutdown()
}

func splitListen(listen string) (string, int, error) {
	if listen == "" {
		return "127.0.0.1", server.RANDOM_PORT, nil
	}
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("natsd: listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("natsd: listen port %q: %w", p, err)
	}
	// nats-server treats port 0 as "the default port 4222"; we mean "any".
	if port <= 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}
