//go:build !linux

package app

// dropCleanTextPages has nothing to do where /proc/self/smaps is not.
func dropCleanTextPages() error { return nil }
