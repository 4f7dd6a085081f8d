package app

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"os"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/gemini-balance-go/shared/bus"
)

// Files in DATA_DIR with the embedded NATS server's generated credentials,
// as nats:// URLs for `nats --server "$(cat …)"`.
const (
	TapURLFile      = "nats-tap.url"
	OperatorURLFile = "nats-operator.url"
)

const (
	busServicesUser = "gemini-balance"
	busTapUser      = "tap"
	busOperatorUser = "operator"
)

// busCreds are one start's random passwords of the embedded server's users.
type busCreds struct{ services, tap, operator string }

func newBusCreds() busCreds {
	return busCreds{services: rand.Text(), tap: rand.Text(), operator: rand.Text()}
}

// configure gives the server its users: the in-process services and the
// operator may do anything; the tap reads events and nothing else (no
// replies, no admin subjects, which carry pasted keys, no KV).
func (c busCreds) configure(o *server.Options) {
	o.Users = []*server.User{
		{Username: busServicesUser, Password: c.services},
		{Username: busOperatorUser, Password: c.operator},
		{Username: busTapUser, Password: c.tap, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Deny: []string{">"}},
			Subscribe: &server.SubjectPermission{Allow: []string{bus.SubjectEventsAll}},
		}},
	}
}

// url puts a user's credentials into the server's client URL.
func (busCreds) url(serverURL, user, password string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		return serverURL
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// privateDir creates dir (and parents) for the owner only, and takes group
// and other access away from a dir an older version created wider.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("make %s private (mode %v): %w", dir, fi.Mode().Perm(), err)
		}
	}
	// Subdirectories of an older version (nats, store) get the same.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if info, err := e.Info(); err == nil && info.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(dir+string(os.PathSeparator)+e.Name(), 0o700); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("make %s private: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// writePrivate replaces name with data, readable by the owner only.
func writePrivate(name, data string) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
