package app

import (
	"fmt"
	"os"
	"syscall"
)

// dropCleanTextPages drops this process's mappings of its own executable's
// read-only segments that hold no private page.
func dropCleanTextPages() error {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("find the executable: %w", err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return fmt.Errorf("read the mappings: %w", err)
	}
	for _, m := range cleanReadOnlyMappings(smaps, exe) {
		if err := dropPages(m.start, m.end); err != nil {
			return fmt.Errorf("drop %x-%x: %w", m.start, m.end, err)
		}
	}
	return nil
}

// dropPages unmaps [start, end) from the page tables; the next touch maps
// the page cache's copy back.
func dropPages(start, end uintptr) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, start, end-start, syscall.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
