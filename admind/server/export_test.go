package server

import "time"

// SetBackendTimeoutsForTest shortens the keyd/logd call bounds until the
// returned function restores them. Set it before New.
func SetBackendTimeoutsForTest(d time.Duration) (restore func()) {
	oldB, oldV := backendTimeout, verifyTimeout
	backendTimeout, verifyTimeout = d, d
	return func() { backendTimeout, verifyTimeout = oldB, oldV }
}

// SetLiveLimitsForTest changes the live tail's per-client buffer, client
// limit and keepalive period until the returned function restores them.
func SetLiveLimitsForTest(buffer, clients int, keepalive time.Duration) (restore func()) {
	oldB, oldC, oldK := liveBuffer, liveMaxClients, liveKeepalive
	liveBuffer, liveMaxClients, liveKeepalive = buffer, clients, keepalive
	return func() { liveBuffer, liveMaxClients, liveKeepalive = oldB, oldC, oldK }
}

// LiveEventsSeen counts the request events the live hub took in from NATS.
func LiveEventsSeen(s *Server) int64 { return s.liveHub.seen.Load() }
