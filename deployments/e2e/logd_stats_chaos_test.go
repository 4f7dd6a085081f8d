package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/shared/bus"
	"github.com/gemini-balance-go/shared/logapi"
	"github.com/gemini-balance-go/shared/redact"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// Issue 15: the statistics stay exact while logd replicas die. Two logd
// replicas share the event stream; a fixed mixed load (successes with token
// usage, a client's 400, an upstream 503 retried over every key, streams and
// not, two client tokens) runs while a random replica is killed with SIGKILL
// at random moments, several times. After the backlog drains, for every
// hour, key, model and token, every rollup counter equals a count over the
// stored rows, and both equal what the load sent.
func TestLogdReplicasKilledAtRandomKeepStatisticsExact(t *testing.T) {
	statsUnderChaos(t, func(s *stack.Stack, rnd *rand.Rand, progress func() float64, wait func(float64)) {
		// Kills do not wait for the restarts: the load is over in seconds.
		var restarts sync.WaitGroup
		var mu sync.Mutex
		down := map[string]bool{}
		for i := range 4 {
			wait(float64(i+1)/6 + rnd.Float64()/12)
			var up []string
			for len(up) == 0 { // both may be restarting
				mu.Lock()
				for _, name := range []string{"logd", "logd-1"} {
					if !down[name] {
						up = append(up, name)
					}
				}
				mu.Unlock()
				if len(up) == 0 {
					time.Sleep(20 * time.Millisecond)
				}
			}
			victim := up[rnd.IntN(len(up))]
			mu.Lock()
			down[victim] = true
			mu.Unlock()
			t.Logf("kill -9 %s at %.0f%% of the load", victim, 100*progress())
			s.Kill(victim)
			pause := time.Duration(50+rnd.IntN(500)) * time.Millisecond
			restarts.Add(1)
			go func() {
				defer restarts.Done()
				time.Sleep(pause)
				if err := s.Launch(victim); err != nil {
					t.Errorf("restart %s: %v", victim, err)
				}
				mu.Lock()
				down[victim] = false
				mu.Unlock()
			}()
		}
		restarts.Wait()
	})
}

// The same check when the store is killed mid-load and comes back, with a
// logd replica killed while it is down.
func TestStoreRestartedMidLoadKeepsStatisticsExact(t *testing.T) {
	statsUnderChaos(t, func(s *stack.Stack, rnd *rand.Rand, progress func() float64, wait func(float64)) {
		wait(0.3 + rnd.Float64()/10)
		t.Logf("kill -9 store at %.0f%% of the load", 100*progress())
		s.Kill("store")
		wait(0.45)
		victim := []string{"logd", "logd-1"}[rnd.IntN(2)]
		t.Logf("kill -9 %s at %.0f%% of the load, the store still down", victim, 100*progress())
		s.Kill(victim)
		wait(0.6)
		t.Logf("store and %s back at %.0f%% of the load", victim, 100*progress())
		if err := s.Launch("store"); err != nil {
			t.Errorf("restart store: %v", err)
		}
		if err := s.Launch(victim); err != nil {
			t.Errorf("restart %s: %v", victim, err)
		}
	})
}

// outcome is what the load saw for one model and token.
type outcome struct{ requests, ok, fail int64 }

func statsUnderChaos(t *testing.T, chaos func(s *stack.Stack, rnd *rand.Rand, progress func() float64, wait func(float64))) {
	const total, workers = 1500, 12
	tokens := []string{"sk-e2e-chaos-token-one-0123456789abcdef", "sk-e2e-chaos-token-two-0123456789abcdef"}
	s := stack.Start(t, stack.Options{Edges: 2, Logds: 2, Tokens: tokens, Without: []string{"admind", "schedulerd"},
		// 503s must not disable keys: every request should reach the fake.
		// What a killed logd held goes to the other one after 5 s, not 60.
		Env: map[string]string{"MAX_FAILURES": "1000000", "LOGD_ACK_WAIT": "5"}})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	seed := time.Now().UnixNano()
	t.Logf("chaos seed %d", seed)
	rnd := rand.New(rand.NewPCG(uint64(seed), 15))

	fake := s.Fake()
	usage := &fakegemini.UsageMetadata{PromptTokenCount: 5, CandidatesTokenCount: 7, TotalTokenCount: 12}
	for model, r := range map[string]fakegemini.Reply{
		"gemini-2.5-flash": {Parts: []fakegemini.Part{{Text: "ok"}}, Usage: usage},
		"gemini-2.5-pro":   {Fail: fakegemini.BadRequest},
		"gemini-2.0-flash": {Fail: fakegemini.Unavailable},
	} {
		if err := fake.Always(ctx, model, r); err != nil {
			t.Fatal(err)
		}
	}

	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var sent atomic.Int64
	var mu sync.Mutex
	sentBy := map[string]*outcome{} // model|token id
	progress := func() float64 { return float64(sent.Load()) / total }
	wait := func(p float64) {
		for progress() < p && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
	chaosDone := make(chan struct{})
	go func() { defer close(chaosDone); chaos(s, rnd, progress, wait) }()

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(sent.Add(1))
				if n > total {
					return
				}
				model := []string{"gemini-2.5-flash", "gemini-2.5-flash", "gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash"}[n%5]
				token := tokens[n%2]
				method := "generateContent"
				if n%3 == 0 {
					method = "streamGenerateContent?alt=sse"
				}
				body := fmt.Sprintf(`{"contents":[{"role":"user","parts":[{"text":"request %d"}]}]}`, n)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.EdgeURL(w%2)+"/v1beta/models/"+model+":"+method, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("x-goog-api-key", token)
				resp, err := hc.Do(req)
				if err != nil {
					t.Errorf("request %d: %v", n, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				o := sentBy[model+"|"+redact.ID(token)]
				if o == nil {
					o = &outcome{}
					sentBy[model+"|"+redact.ID(token)] = o
				}
				o.requests++
				if resp.StatusCode == 200 {
					o.ok++
				} else {
					o.fail++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	<-chaosDone
	if t.Failed() {
		t.FailNow()
	}
	for _, name := range []string{"store", "logd", "logd-1"} {
		if !s.Running(name) {
			s.Start(name)
		}
	}

	t.Logf("load and chaos done after %s", time.Since(start).Round(time.Millisecond))
	db := s.Mongo(t)
	nc := s.NATS(t)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	drained := func() bool {
		for _, c := range []string{"logd-request", "logd-error"} {
			info, err := js.ConsumerInfo("GB_EVENTS", c, nats.Context(ctx))
			if err != nil || info.NumPending+uint64(info.NumAckPending) != 0 {
				return false
			}
		}
		n, err := countRequestLogs(ctx, db, nil)
		return err == nil && n == total
	}
	for !drained() {
		if ctx.Err() != nil {
			n, _ := countRequestLogs(context.Background(), db, nil)
			t.Fatalf("backlog never drained: the store holds %d request logs for %d requests", n, total)
		}
		time.Sleep(250 * time.Millisecond)
	}

	t.Logf("backlog drained after %s", time.Since(start).Round(time.Millisecond))
	rows := rowRollups(t, ctx, db)
	// What logd answers right away (folded rollups plus parts not yet
	// folded) per token, then the folded rollups themselves, level by level.
	var tu logapi.TokenUsageReply
	logdCall(t, nc, bus.SubjectLogTokenUsage, logapi.TokenUsageQuery{}, &tu)
	for _, tok := range tokens {
		id := redact.ID(tok)
		want := rows.byToken(id)
		if got := tu.Tokens[id]; got.Requests30d != want.req || got.Tokens30d != want.tok {
			t.Errorf("token usage of %s = %d requests, %d tokens; rows say %d, %d", id, got.Requests30d, got.Tokens30d, want.req, want.tok)
		}
	}
	for {
		n, err := db.Collection("rollup_parts").CountDocuments(ctx, bson.M{"_id": bson.M{"$ne": "~fold"}})
		if err == nil && n == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("rollup parts never folded: %d left (%v)", n, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("parts folded after %s", time.Since(start).Round(time.Millisecond))
	docs := storedRollups(t, ctx, db)
	var ids []string
	for id := range rows {
		ids = append(ids, id)
	}
	for id := range docs {
		if _, ok := rows[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		if got, want := docs[id], rows[id]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("rollup %s = %v; stored rows say %v", id, got, want)
		}
	}
	// And both equal what the load sent, per model and token.
	for mt, o := range sentBy {
		model, token, _ := strings.Cut(mt, "|")
		var fromRows, fromRollups counts
		for id, c := range rows {
			f := strings.Split(id, "|")
			if f[1] != "*" && f[2] == model && f[3] == token {
				fromRows.add(c)
				fromRollups.add(docs[id])
			}
		}
		for what, c := range map[string]counts{"rows": fromRows, "rollups": fromRollups} {
			if c.req != o.requests || c.ok != o.ok || c.fail != o.fail {
				t.Errorf("%s of %s = %d requests, %d ok, %d failed; the load sent %d and saw %d ok, %d failed",
					what, mt, c.req, c.ok, c.fail, o.requests, o.ok, o.fail)
			}
		}
	}
	if t.Failed() {
		for id, c := range rows {
			if f := strings.Split(id, "|"); f[2] == "*" && f[3] == "*" {
				t.Logf("rows of %s: %v", id, c)
			}
		}
	}
	if len(docs) == 0 || len(sentBy) != 6 {
		t.Fatalf("%d rollups, %d model/token pairs sent: the load did not run as planned", len(docs), len(sentBy))
	}
}

// counts are the rollup counters the check compares.
type counts struct {
	req, ok, fail, f4xx, f5xx, tok int64
	codes, acodes                  map[string]int64
}

func (c *counts) add(o counts) {
	c.req, c.ok, c.fail, c.f4xx, c.f5xx, c.tok = c.req+o.req, c.ok+o.ok, c.fail+o.fail, c.f4xx+o.f4xx, c.f5xx+o.f5xx, c.tok+o.tok
}

func (c counts) String() string {
	return fmt.Sprintf("req=%d ok=%d fail=%d f4xx=%d f5xx=%d tok=%d codes=%v acodes=%v", c.req, c.ok, c.fail, c.f4xx, c.f5xx, c.tok, sorted(c.codes), sorted(c.acodes))
}

func sorted(m map[string]int64) string {
	var ks []string
	for k, v := range m {
		if v != 0 {
			ks = append(ks, fmt.Sprintf("%s:%d", k, v))
		}
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

type rollupSet map[string]counts

func (r rollupSet) byToken(token string) counts {
	var c counts
	for id, v := range r {
		if f := strings.Split(id, "|"); f[1] == "*" && f[2] == "*" && f[3] == token {
			c.add(v)
		}
	}
	return c
}

// rowRollups counts the stored rows into every rollup level logd keeps
// (hour|key|model|token, overall, per key, per model, per token), with the
// failed upstream attempts (error logs) per key and overall.
func rowRollups(t *testing.T, ctx context.Context, db *mongo.Database) rollupSet {
	t.Helper()
	out := rollupSet{}
	bump := func(id string, f func(c *counts)) {
		c := out[id]
		f(&c)
		out[id] = c
	}
	dim := func(s string) string {
		s = strings.ReplaceAll(s, "|", "/")
		if s == "" || s == "*" {
			return "-"
		}
		return s
	}
	reqs, err := requestLogs(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		k, m, tk := dim(r.KeyID), dim(r.Model), dim(r.TokenID)
		for _, lvl := range [][3]string{{k, m, tk}, {"*", "*", "*"}, {k, "*", "*"}, {"*", m, "*"}, {"*", "*", tk}} {
			bump(r.Hour+"|"+lvl[0]+"|"+lvl[1]+"|"+lvl[2], func(c *counts) {
				c.req++
				c.tok += int64(r.Tokens)
				if r.Success {
					c.ok++
					return
				}
				c.fail++
				switch {
				case r.Status >= 400 && r.Status < 500:
					c.f4xx++
				case r.Status >= 500 && r.Status < 600:
					c.f5xx++
				}
				if c.codes == nil {
					c.codes = map[string]int64{}
				}
				c.codes[fmt.Sprint(r.Status)]++
			})
		}
	}
	cur, err := db.Collection("error_logs").Find(ctx, bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	var errs []struct {
		Time time.Time `bson:"t"`
		Key  string    `bson:"key_id"`
		Code int       `bson:"code"`
	}
	if err := cur.All(ctx, &errs); err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		if e.Key == "" || e.Code == 0 {
			continue
		}
		h := e.Time.UTC().Format("2006-01-02T15")
		for _, k := range []string{e.Key, "*"} {
			bump(h+"|"+k+"|*|*", func(c *counts) {
				if c.acodes == nil {
					c.acodes = map[string]int64{}
				}
				c.acodes[fmt.Sprint(e.Code)]++
			})
		}
	}
	return out
}

// storedRollups reads every hourly rollup document.
func storedRollups(t *testing.T, ctx context.Context, db *mongo.Database) rollupSet {
	t.Helper()
	cur, err := db.Collection("rollups_hourly").Find(ctx, bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		ID     string           `bson:"_id"`
		Req    int64            `bson:"req"`
		OK     int64            `bson:"ok"`
		Fail   int64            `bson:"fail"`
		F4xx   int64            `bson:"f4xx"`
		F5xx   int64            `bson:"f5xx"`
		Tok    int64            `bson:"tok"`
		Codes  map[string]int64 `bson:"codes"`
		ACodes map[string]int64 `bson:"acodes"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	out := rollupSet{}
	for _, d := range docs {
		out[d.ID] = counts{req: d.Req, ok: d.OK, fail: d.Fail, f4xx: d.F4xx, f5xx: d.F5xx, tok: d.Tok, codes: d.Codes, acodes: d.ACodes}
	}
	return out
}

// logdCall asks any logd replica over NATS.
func logdCall(t *testing.T, nc *nats.Conn, subject string, in, out any) {
	t.Helper()
	data, _ := json.Marshal(in)
	msg, err := nc.Request(subject, data, 30*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		t.Fatalf("%s: %v: %s", subject, err, msg.Data)
	}
}
