package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/gemini-balance-go/deployments/e2e/stack"
	"github.com/gemini-balance-go/testkit/fakegemini"
)

// The admin's REST view of keys, logs and statistics, across the real
// processes under the deployment NATS users: keys pasted into admind reach
// keyd and serve traffic; admind lists them masked; requests through edge
// show up in the request logs, the overview, the error logs and the
// attention keys; a key disabled over REST is listed as disabled; only the
// reveal route answers a full key.
func TestAdminRESTManagesKeysAndShowsTheirLogsAndStatistics(t *testing.T) {
	keys := []string{
		"AIzaSyH11-admin-rest-key-00000000000001",
		"AIzaSyH11-admin-rest-key-00000000000002",
		"AIzaSyH11-admin-rest-key-00000000000003",
		"AIzaSyH11-admin-rest-key-00000000000004",
	}
	limited := keys[3]
	s := stack.Start(t, stack.Options{
		Edges: 1, Keys: keys, NATSConfig: "../nats/nats.conf",
		// keyd starts with the first key only; the others arrive over REST.
		// One attempt per request, so the rate-limited key's 429 reaches the
		// client and the logs as the request's answer.
		Env: map[string]string{"API_KEYS": `["` + keys[0] + `"]`, "MAX_RETRIES": "1"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := s.Fake().SetKeys(ctx, map[string]fakegemini.Behaviour{limited: {Status: fakegemini.RateLimited, RetryDelay: fakegemini.Duration(10 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	// Every answer but reveal's is scanned for full keys.
	call := func(method, path, body string, want int, out any) string {
		t.Helper()
		code, data, hdr := adminDo(t, s, method, path, body)
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, code, data, want)
		}
		if !strings.HasSuffix(path, "/reveal") {
			for _, k := range keys {
				if strings.Contains(data, k) {
					t.Fatalf("%s %s answers a full key: %s", method, path, data)
				}
			}
		} else if hdr.Get("Cache-Control") != "no-store" {
			t.Errorf("reveal may be cached: Cache-Control %q", hdr.Get("Cache-Control"))
		}
		if out != nil {
			if err := json.Unmarshal([]byte(data), out); err != nil {
				t.Fatalf("%s %s: %v in %s", method, path, err, data)
			}
		}
		return data
	}

	// Bulk add from pasted text: three new, one already there, one junk.
	var added struct {
		AddedCount     int `json:"added_count"`
		DuplicateCount int `json:"duplicate_count"`
		InvalidCount   int `json:"invalid_count"`
	}
	pasted := fmt.Sprintf("%s\n%s, %s\n%s\nnot-a-key-at-all-xyz\n", keys[1], keys[2], keys[3], keys[0])
	body, _ := json.Marshal(map[string]string{"text": pasted})
	call("POST", "/api/keys", string(body), http.StatusOK, &added)
	if added.AddedCount != 3 || added.DuplicateCount != 1 || added.InvalidCount != 1 {
		t.Fatalf("bulk add: added %d duplicate %d invalid %d, want 3/1/1", added.AddedCount, added.DuplicateCount, added.InvalidCount)
	}

	type key struct {
		ID, Hint, Status string
		Failures         int
	}
	var page struct {
		Keys       []key
		TotalItems int `json:"total_items"`
	}
	call("GET", "/api/keys?limit=100", "", http.StatusOK, &page)
	if page.TotalItems != 4 || len(page.Keys) != 4 {
		t.Fatalf("key list: %d keys (total %d), want 4", len(page.Keys), page.TotalItems)
	}
	idOf := map[string]string{} // last four characters → id
	for _, k := range page.Keys {
		for _, full := range keys {
			if strings.HasSuffix(k.Hint, full[len(full)-4:]) {
				idOf[full] = k.ID
			}
		}
	}
	if len(idOf) != 4 {
		t.Fatalf("cannot tell the keys apart by hint: %+v", page.Keys)
	}

	// Traffic through edge: the rate-limited key answers one request with
	// 429 (then cools down); the others succeed.
	c := s.Gemini(t, 0)
	sent, limitedSeen := 0, false
	for i := 0; (i < 8 || !limitedSeen) && ctx.Err() == nil; i++ {
		_, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text(fmt.Sprintf("admin rest %d", i)), nil)
		sent++
		var apiErr genai.APIError
		switch {
		case err == nil:
		case errors.As(err, &apiErr) && apiErr.Code == http.StatusTooManyRequests:
			limitedSeen = true
		default:
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if !limitedSeen {
		t.Fatal("no request met the rate-limited key")
	}

	// The request logs and the overview catch up with what was sent.
	var logs struct {
		Logs []struct {
			KeyID  string `json:"key_id"`
			Status int    `json:"status"`
		}
		Total int
	}
	eventually(t, ctx, fmt.Sprintf("%d request logs", sent), func() (bool, string) {
		data := call("GET", "/api/logs/requests?limit=100&model=gemini-2.5-flash", "", http.StatusOK, &logs)
		return logs.Total == sent, data
	})
	used := map[string]bool{}
	for _, l := range logs.Logs {
		used[l.KeyID] = true
	}
	for _, full := range keys {
		if !used[idOf[full]] {
			t.Errorf("no request log names key %s (id %s): the added keys did not serve traffic", full[len(full)-4:], idOf[full])
		}
	}
	var limitedOnly struct{ Total int }
	call("GET", "/api/logs/requests?status=429&key="+idOf[limited], "", http.StatusOK, &limitedOnly)
	if limitedOnly.Total != 1 {
		t.Errorf("request logs with status 429 on the limited key: %d, want 1", limitedOnly.Total)
	}
	var ov struct {
		Day struct{ Requests, Successes, Failures int }
	}
	eventually(t, ctx, "the overview counts every request", func() (bool, string) {
		data := call("GET", "/api/stats/overview", "", http.StatusOK, &ov)
		return ov.Day.Requests == sent && ov.Day.Failures == 1 && ov.Day.Successes == sent-1, data
	})

	// The 429 is an error log and makes the key worth attention.
	var errs struct {
		Logs []struct {
			ID      string `json:"id"`
			KeyID   string `json:"key_id"`
			KeyHint string `json:"key_hint"`
		}
		Total int
	}
	eventually(t, ctx, "the 429 in the error logs", func() (bool, string) {
		data := call("GET", "/api/logs/errors?error_code_search=429", "", http.StatusOK, &errs)
		return errs.Total >= 1, data
	})
	if errs.Logs[0].KeyID != idOf[limited] {
		t.Errorf("error log names key %s, want the limited key %s", errs.Logs[0].KeyID, idOf[limited])
	}
	var details struct {
		Code int `json:"error_code"`
	}
	call("GET", "/api/logs/errors/"+errs.Logs[0].ID+"/details", "", http.StatusOK, &details)
	if details.Code != 429 {
		t.Errorf("error details code %d, want 429", details.Code)
	}
	var att struct {
		Keys []struct {
			KeyID string `json:"key_id"`
			Hint  string
			Count int
		}
	}
	eventually(t, ctx, "the limited key among the attention keys", func() (bool, string) {
		data := call("GET", "/api/stats/attention-keys?status_code=429&limit=20", "", http.StatusOK, &att)
		return len(att.Keys) == 1 && att.Keys[0].KeyID == idOf[limited] && att.Keys[0].Count == 1 &&
			strings.HasSuffix(att.Keys[0].Hint, limited[len(limited)-4:]), data
	})
	var usage struct {
		Models map[string]struct{ Requests int }
	}
	call("GET", "/api/key-usage-details/"+idOf[keys[0]], "", http.StatusOK, &usage)
	if usage.Models["gemini-2.5-flash"].Requests < 1 {
		t.Errorf("key usage of the first key: %+v", usage.Models)
	}
	var series struct {
		Points []struct{ Requests int }
	}
	call("GET", "/api/stats/series", "", http.StatusOK, &series)
	total := 0
	for _, p := range series.Points {
		total += p.Requests
	}
	if len(series.Points) != 24 || total != sent {
		t.Errorf("series: %d points with %d requests, want 24 hours with %d", len(series.Points), total, sent)
	}

	// Disable a key by hand: it is listed as disabled (and invalid).
	victim := idOf[keys[1]]
	call("POST", "/api/keys/disable", `{"ids":["`+victim+`"],"reason":"e2e"}`, http.StatusOK, nil)
	var one key
	call("GET", "/api/keys/"+victim, "", http.StatusOK, &one)
	if one.Status != "disabled" {
		t.Errorf("disabled key shows status %q", one.Status)
	}
	call("GET", "/api/keys?status=invalid", "", http.StatusOK, &page)
	if len(page.Keys) != 1 || page.Keys[0].ID != victim {
		t.Errorf("invalid keys %+v, want only the disabled one", page.Keys)
	}

	// A live verify of a good key answers ok.
	var verify struct {
		Results []struct {
			ID string
			OK bool
		}
	}
	call("POST", "/api/keys/verify", `{"ids":["`+idOf[keys[0]]+`"]}`, http.StatusOK, &verify)
	if len(verify.Results) != 1 || !verify.Results[0].OK {
		t.Errorf("verify of a good key: %+v", verify.Results)
	}

	// Reveal is the one answer with the key in full.
	var rev struct{ ID, Key string }
	call("GET", "/api/keys/"+idOf[keys[2]]+"/reveal", "", http.StatusOK, &rev)
	if rev.Key != keys[2] {
		t.Errorf("reveal answered %q, want the full key", rev.Key)
	}

	// Without the admin password, nothing.
	req, _ := http.NewRequest("GET", s.AdminURL()+"/api/keys/"+idOf[keys[2]]+"/reveal", nil)
	req.Header.Set("Authorization", "Bearer "+s.Tokens()[0])
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("reveal with a client token: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}

	for name, log := range s.Logs() {
		if name == "fake" {
			continue
		}
		for _, k := range keys {
			if strings.Contains(log, k) {
				t.Errorf("log of %s carries a full key (%s…)", name, k[len(k)-4:])
			}
		}
	}
}

// adminDo calls admind with the admin password and returns status, body and headers.
func adminDo(t *testing.T, s *stack.Stack, method, path, body string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, s.AdminURL()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.AuthToken())
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp.Header
}
