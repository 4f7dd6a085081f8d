package boot

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gemini-balance-go/shared/config"
)

// HealthcheckArg is the subcommand every binary answers: the images are
// distroless (no shell, no curl), so a container engine's healthcheck runs the
// binary itself: `service healthcheck`.
const HealthcheckArg = "healthcheck"

// Healthcheck asks the running process on this container's PORT for /readyz
// and returns the exit code: 0 when it answers 200, 1 otherwise, with the
// reason on w. It reads only PORT, so it works with the service's own
// environment.
func Healthcheck(w io.Writer) int {
	infra, err := config.LoadInfra()
	if err != nil {
		fmt.Fprintln(w, "healthcheck:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := Probe(ctx, "http://127.0.0.1:"+strconv.Itoa(infra.Port)+"/readyz"); err != nil {
		fmt.Fprintln(w, "healthcheck:", err)
		return 1
	}
	return 0
}

// Probe GETs url and wants a 200.
func Probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("probe %s: %s %s", url, resp.Status, body)
	}
	return nil
}
