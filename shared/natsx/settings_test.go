package natsx

import (
	"sync"
	"testing"

	"github.com/gemini-balance-go/shared/config"
)

// Services register callbacks after the KV watch may already be applying
// updates; neither side may race or lose the order of updates.
func TestOnChangeMayBeRegisteredWhileUpdatesArrive(t *testing.T) {
	s := NewSettings(config.Defaults())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= 200; i++ {
			next := config.Defaults()
			next.MaxRetries = i
			s.Set(next)
		}
	}()
	var mu sync.Mutex
	last := 0
	s.OnChange(func(c config.Settings) {
		mu.Lock()
		defer mu.Unlock()
		if c.MaxRetries < last {
			t.Errorf("update %d arrived after %d", c.MaxRetries, last)
		}
		last = c.MaxRetries
	})
	wg.Wait()
	if got := s.Get().MaxRetries; got != 200 {
		t.Fatalf("current MaxRetries %d, want 200", got)
	}
}
