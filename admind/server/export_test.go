package server

import "time"

// SetBackendTimeoutsForTest shortens the keyd/logd call bounds until the
// returned function restores them. Set it before New.
func SetBackendTimeoutsForTest(d time.Duration) (restore func()) {
	oldB, oldV := backendTimeout, verifyTimeout
	backendTimeout, verifyTimeout = d, d
	return func() { backendTimeout, verifyTimeout = oldB, oldV }
}
