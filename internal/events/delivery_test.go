package events

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// received is one POST a receiver got.
type received struct {
	id, attempt string
	sigOK       bool
	env         Envelope
}

// receiver is a webhook endpoint on 127.0.0.1 that checks signatures on
// its own (crypto/hmac over "t.body") and answers with status(n) for its
// n-th request (0-based).
type receiver struct {
	t      testing.TB
	secret string
	status func(n int) int
	mu     sync.Mutex
	got    []received
	srv    *httptest.Server
}

func newReceiver(t testing.TB, secret string, status func(n int) int) *receiver {
	r := &receiver{t: t, secret: secret, status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var rec received
	rec.id, rec.attempt = req.Header.Get("X-Drydock-Event-Id"), req.Header.Get("X-Drydock-Delivery-Attempt")
	var ts, sig string
	for _, part := range strings.Split(req.Header.Get("X-Drydock-Signature"), ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	mac := hmac.New(sha256.New, []byte(r.secret))
	mac.Write([]byte(ts + "." + string(body)))
	given, err := hex.DecodeString(sig)
	rec.sigOK = err == nil && ts != "" && hmac.Equal(given, mac.Sum(nil)) && req.Header.Get("Content-Type") == "application/json"
	if err := json.Unmarshal(body, &rec.env); err != nil {
		r.t.Errorf("receiver: body is not an envelope: %v", err)
	}
	r.mu.Lock()
	n := len(r.got)
	r.got = append(r.got, rec)
	r.mu.Unlock()
	code := http.StatusOK
	if r.status != nil {
		code = r.status(n)
	}
	w.WriteHeader(code)
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func newService(t *testing.T, db *store.DB, c *clock, o Options) *Service {
	t.Helper()
	o.Store, o.Account, o.Region = db, "123456789012", "eu-west-1"
	if c != nil {
		o.Now = c.now
	}
	if o.BaseBackoff == 0 {
		o.BaseBackoff = time.Second
	}
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func addTarget(t *testing.T, s *Service, name, url, secret, pattern string) {
	t.Helper()
	if err := s.AddTarget(context.Background(), Target{Name: name, URL: url, Secret: secret, Pattern: pattern, Enabled: true}); err != nil {
		t.Fatal(err)
	}
}

// pushRow writes a registry outbox row the way the registry does.
func pushRow(t testing.TB, db *store.DB, c *clock, repo, digest string, tags ...string) {
	t.Helper()
	p, _ := json.Marshal(store.ImagePushed{Repository: repo, Digest: digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 1, Tags: tags, PushedAt: c.now().Format(time.RFC3339Nano)})
	if _, err := db.ExecContext(context.Background(), `INSERT INTO registry_outbox (created_at, kind, payload) VALUES (?, ?, ?)`,
		c.now().UnixMilli(), store.OutboxImagePushed, string(p)); err != nil {
		t.Fatal(err)
	}
}

// scanRow writes a scan outbox row the way the scanning service does.
func scanRow(t *testing.T, db *store.DB, c *clock, source, detailType, detail string) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), `INSERT INTO scan_outbox (created_at, source, detail_type, detail) VALUES (?, ?, ?, ?)`,
		c.now().UnixMilli(), source, detailType, detail); err != nil {
		t.Fatal(err)
	}
}

// drain reads the outboxes and sends every due delivery.
func drain(t *testing.T, s *Service) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		n, err := s.DeliverDue(ctx, 4)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func TestDeliverSignedAndFiltered(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newClock()
		s := newService(t, db, c, Options{})
		all := newReceiver(t, "s3cret-all", nil)
		pushes := newReceiver(t, "s3cret-push", nil)
		prod := newReceiver(t, "s3cret-prod", nil)
		addTarget(t, s, "all", all.srv.URL, "s3cret-all", "")
		addTarget(t, s, "pushes", pushes.srv.URL, "s3cret-push", `{"source":["aws.ecr"],"detail-type":["ECR Image Action"],"detail":{"action-type":["PUSH"]}}`)
		addTarget(t, s, "prod", prod.srv.URL, "s3cret-prod", `{"detail":{"repository-name":[{"prefix":"prod/"}],"image-tag":[{"anything-but":"latest"}]}}`)
		if err := s.AddTarget(context.Background(), Target{Name: "off", URL: all.srv.URL, Secret: "x", Enabled: false}); err != nil {
			t.Fatal(err)
		}

		pushRow(t, db, c, "prod/app", "sha256:aa", "v1", "latest")
		pushRow(t, db, c, "test/app", "sha256:bb", "v2")
		scanRow(t, db, c, "aws.ecr", "ECR Image Scan", `{"scan-status":"COMPLETE","repository-name":"prod/app","finding-severity-counts":{},"image-digest":"sha256:aa","image-tags":["v1"]}`)
		drain(t, s)

		got := all.requests()
		if len(got) != 4 {
			t.Fatalf("catch-all target got %d events, want 4 (3 tag pushes, 1 scan)", len(got))
		}
		ids := map[string]bool{}
		for _, r := range got {
			if !r.sigOK {
				t.Errorf("bad signature on %s", r.id)
			}
			if r.id != r.env.ID || r.attempt != "1" || r.env.Account != "123456789012" || r.env.Region != "eu-west-1" {
				t.Errorf("delivery %+v", r)
			}
			ids[r.id] = true
		}
		if len(ids) != 4 {
			t.Errorf("event ids not distinct: %v", ids)
		}
		if n := len(pushes.requests()); n != 3 {
			t.Errorf("push target got %d events, want 3", n)
		}
		pr := prod.requests()
		// The scan event has image-tags, not image-tag: anything-but needs
		// the field, so only the v1 push matches.
		if len(pr) != 1 || pr[0].env.DetailType != "ECR Image Action" || !strings.Contains(string(pr[0].env.Detail), `"image-tag":"v1"`) {
			t.Fatalf("prod target got %+v, want the v1 push alone", pr)
		}
		for _, r := range pr {
			if !r.sigOK {
				t.Error("bad signature on the prod target")
			}
		}
		// Nothing more is sent on the next round.
		drain(t, s)
		if n := len(all.requests()); n != 4 {
			t.Errorf("catch-all target got %d events after a second round", n)
		}
	})
}

func TestRetryThenDeliver(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newClock()
		s := newService(t, db, c, Options{MaxAttempts: 5})
		// 500, 429, connection-level success after two failures.
		r := newReceiver(t, "k", func(n int) int {
			return []int{http.StatusInternalServerError, http.StatusTooManyRequests, http.StatusNoContent}[min(n, 2)]
		})
		addTarget(t, s, "flaky", r.srv.URL, "k", "")
		pushRow(t, db, c, "repo", "sha256:cc", "t")
		drain(t, s)
		if n := len(r.requests()); n != 1 {
			t.Fatalf("%d requests before the backoff passed, want 1", n)
		}
		// The retry is not due before its backoff.
		drain(t, s)
		if n := len(r.requests()); n != 1 {
			t.Fatalf("retried before the backoff: %d requests", n)
		}
		for range 2 {
			c.advance(time.Minute)
			drain(t, s)
		}
		got := r.requests()
		if len(got) != 3 {
			t.Fatalf("%d requests, want 3", len(got))
		}
		for i, g := range got {
			if g.id != got[0].id || g.attempt != []string{"1", "2", "3"}[i] || !g.sigOK {
				t.Errorf("try %d: %+v", i, g)
			}
		}
		ds, err := s.Deliveries(context.Background(), "flaky")
		if err != nil || len(ds) != 1 || ds[0].Status != "delivered" || ds[0].Attempts != 3 {
			t.Fatalf("delivery record %+v, %v", ds, err)
		}
		c.advance(time.Hour)
		drain(t, s)
		if n := len(r.requests()); n != 3 {
			t.Errorf("delivered event sent again: %d requests", n)
		}
	})
}

func TestDeadLetter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newClock()
		s := newService(t, db, c, Options{MaxAttempts: 3})
		down := newReceiver(t, "k", func(int) int { return http.StatusServiceUnavailable })
		refuses := newReceiver(t, "k", func(int) int { return http.StatusBadRequest })
		addTarget(t, s, "down", down.srv.URL, "k", "")
		addTarget(t, s, "refuses", refuses.srv.URL, "k", "")
		pushRow(t, db, c, "repo", "sha256:dd", "t")
		for range 6 {
			drain(t, s)
			c.advance(time.Hour)
		}
		if n := len(down.requests()); n != 3 {
			t.Errorf("failing target got %d tries, want MaxAttempts = 3", n)
		}
		if n := len(refuses.requests()); n != 1 {
			t.Errorf("a 400 was retried: %d tries", n)
		}
		dead, err := s.DeadLetters(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) != 2 {
			t.Fatalf("%d dead letters, want 2", len(dead))
		}
		for _, d := range dead {
			want := map[string]struct {
				attempts int
				err      string
			}{"down": {3, "HTTP 503"}, "refuses": {1, "HTTP 400"}}[d.Target]
			if d.Attempts != want.attempts || !strings.Contains(d.LastError, want.err) || d.DetailType != "ECR Image Action" {
				t.Errorf("dead letter %+v", d)
			}
			var env Envelope
			if err := json.Unmarshal(d.Body, &env); err != nil || env.ID != d.EventID {
				t.Errorf("dead letter body: %v", err)
			}
		}
	})
}

func TestRestartContinuesFromCursor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newClock()
		r := newReceiver(t, "k", nil)
		s1 := newService(t, db, c, Options{})
		addTarget(t, s1, "hook", r.srv.URL, "k", "")
		for i := range 3 {
			pushRow(t, db, c, "repo", "sha256:0"+string(rune('0'+i)), "t")
		}
		drain(t, s1)

		// A crash after the POST, before the outcome is recorded: the
		// next service re-sends the same event once the lease expires.
		pushRow(t, db, c, "repo", "sha256:crash", "t")
		if _, err := s1.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		cs, err := s1.claim(context.Background(), 10)
		if err != nil || len(cs) != 1 {
			t.Fatalf("claim: %d, %v", len(cs), err)
		}
		tg, _ := s1.target(context.Background(), "hook")
		if err := s1.send(context.Background(), tg, cs[0]); err != nil {
			t.Fatal(err)
		}
		pushRow(t, db, c, "repo", "sha256:after", "t")

		s2 := newService(t, db, c, Options{})
		drain(t, s2)
		if n := len(r.requests()); n != 5 {
			t.Fatalf("%d requests after restart, want 5 (the leased one waits)", n)
		}
		c.advance(time.Minute)
		drain(t, s2)
		got := r.requests()
		if len(got) != 6 {
			t.Fatalf("%d requests, want 6", len(got))
		}
		seen := map[string]int{}
		for _, g := range got {
			seen[g.id]++
		}
		if len(seen) != 5 || seen[cs[0].eventID] != 2 || got[5].id != cs[0].eventID || got[5].attempt != "2" {
			t.Errorf("ids %v; only the crashed delivery may repeat, with the same id", seen)
		}
	})
}

func TestReplicasDoNotDoubleDeliver(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := newClock()
		r := newReceiver(t, "k", nil)
		a := newService(t, db, c, Options{})
		b := newService(t, db, c, Options{})
		addTarget(t, a, "hook", r.srv.URL, "k", "")
		const n = 40
		for i := range n {
			pushRow(t, db, c, "repo", "sha256:"+strings.Repeat("a", i+1), "t")
		}
		var wg sync.WaitGroup
		for _, s := range []*Service{a, b, a, b} {
			wg.Go(func() {
				ctx := context.Background()
				if _, err := s.Poll(ctx); err != nil {
					t.Error(err)
					return
				}
				for {
					k, err := s.DeliverDue(ctx, 3)
					if err != nil {
						t.Error(err)
						return
					}
					if k == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		drain(t, a)
		got := r.requests()
		seen := map[string]int{}
		for _, g := range got {
			seen[g.id]++
		}
		if len(got) != n || len(seen) != n {
			t.Errorf("%d requests for %d distinct events, want %d each", len(got), len(seen), n)
		}
	})
}

func TestTargets(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db, nil, Options{})
		addTarget(t, s, "a", "http://127.0.0.1:1/hook", "k", `{"source":["aws.ecr"]}`)
		for _, bad := range []Target{
			{Name: "a", URL: "http://127.0.0.1:1/", Secret: "k"},
			{Name: "bad name", URL: "http://127.0.0.1:1/", Secret: "k"},
			{Name: "b", URL: "ftp://x/", Secret: "k"},
			{Name: "b", URL: "http://127.0.0.1:1/", Secret: ""},
			{Name: "b", URL: "http://127.0.0.1:1/", Secret: "k", Pattern: `{"source":"aws.ecr"}`},
		} {
			if err := s.AddTarget(ctx, bad); err == nil {
				t.Errorf("AddTarget(%+v) accepted", bad)
			}
		}
		ts, err := s.Targets(ctx)
		if err != nil || len(ts) != 1 || ts[0].Pattern != `{"source":["aws.ecr"]}` || ts[0].Secret != "k" || !ts[0].Enabled {
			t.Fatalf("targets %+v, %v", ts, err)
		}
		if err := s.SetEnabled(ctx, "a", false); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveTarget(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveTarget(ctx, "a"); err == nil {
			t.Error("removed a missing target")
		}
	})
}

func TestGapWaitAndPrune(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := newClock()
		r := newReceiver(t, "k", nil)
		s := newService(t, db, c, Options{GapWait: 10 * time.Second})
		addTarget(t, s, "hook", r.srv.URL, "k", "")
		// Rows 1 and 3 committed; 2 belongs to a transaction still open
		// (or rolled back): 3 waits until the gap is GapWait old.
		for _, id := range []int{1, 3} {
			p, _ := json.Marshal(store.ImagePushed{Repository: "repo", Digest: "sha256:x", Tags: []string{"t"}})
			if _, err := db.ExecContext(ctx, `INSERT INTO registry_outbox (id, created_at, kind, payload) VALUES (?, ?, ?, ?)`,
				id, c.now().UnixMilli(), store.OutboxImagePushed, string(p)); err != nil {
				t.Fatal(err)
			}
		}
		drain(t, s)
		if n := len(r.requests()); n != 1 {
			t.Fatalf("%d events delivered across a fresh gap, want 1", n)
		}
		c.advance(11 * time.Second)
		drain(t, s)
		if n := len(r.requests()); n != 2 {
			t.Fatalf("%d events delivered after the gap aged, want 2", n)
		}

		if n, err := s.Prune(ctx, c.now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("pruned %d fresh records, %v", n, err)
		}
		c.advance(2 * time.Hour)
		if n, err := s.Prune(ctx, c.now().Add(-time.Hour)); err != nil || n != 2 {
			t.Fatalf("pruned %d records, want 2 (%v)", n, err)
		}
	})
}
