package stack

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// allInOne is the gemini-balance process of an AllInOne stack: its data
// under the stack's directory, its embedded NATS on a free loopback port,
// the fake as its upstream. Options.Env and ServiceEnv["allinone"] apply.
func (s *Stack) allInOne(fakeURL string) *proc {
	port, metrics := freePort(), freePort()
	keys, _ := json.Marshal(s.opts.Keys)
	tokens, _ := json.Marshal(s.opts.Tokens)
	env := map[string]string{
		"PORT": strconv.Itoa(port), "DATA_DIR": "{dir}/allinone", "NATS_LISTEN": fmt.Sprintf("127.0.0.1:%d", freePort()),
		"BASE_URL": fakeURL, "API_KEYS": string(keys), "ALLOWED_TOKENS": string(tokens),
		"AUTH_TOKEN": s.opts.AuthToken, "LOG_LEVEL": "debug", "REPLICA": "allinone",
		"METRICS_ADDR": fmt.Sprintf("127.0.0.1:%d", metrics),
	}
	for _, m := range []map[string]string{s.opts.Env, s.opts.ServiceEnv["allinone"]} {
		for k, v := range m {
			env[k] = strings.ReplaceAll(v, "{fake}", fakeURL)
		}
	}
	return &proc{name: "allinone", bin: s.build.Path("allinone"), port: port, metrics: metrics, env: envList(env),
		ready: httpReady(fmt.Sprintf("http://127.0.0.1:%d/health", port))}
}
