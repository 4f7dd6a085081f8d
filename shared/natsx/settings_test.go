package natsx

import (
	"sync"
	"testing"

	"github.com/gemini-balance-go/shared/config"
	"github.com/gemini-balance-go/shared/seal"
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

func TestSealedProxiesOpenWithTheBoxAndAreLeftOutWithout(t *testing.T) {
	const proxy = "http://u:proxy-secret@p.example:3128"
	sealed, err := seal.New("passphrase").SealProxies([]string{proxy, "http://open.example:1"})
	if err != nil {
		t.Fatal(err)
	}
	next := config.Defaults()
	next.Proxies = sealed

	with := NewSettings(config.Defaults())
	with.UseBox(seal.New("passphrase"), nil)
	with.Set(next)
	if p := with.Get().Proxies; len(p) != 2 || p[0] != proxy {
		t.Fatalf("with ENCRYPTION_KEY: %v", p)
	}
	without := NewSettings(config.Defaults())
	without.Set(next)
	if p := without.Get().Proxies; len(p) != 1 || p[0] != "http://open.example:1" {
		t.Fatalf("without ENCRYPTION_KEY: %v, want only the proxy without credentials", p)
	}
}
