package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects log output from concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type fixture struct {
	svc   *Service
	clock *clock
	logs  *syncBuffer
	db    *store.DB
}

func newFixture(t *testing.T, db *store.DB, opts Options) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{t: time.Now()}, logs: &syncBuffer{}, db: db}
	opts.Now = f.clock.Now
	opts.Logger = slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := Open(context.Background(), db, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

func basicRequest(user, pw string) *http.Request {
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.SetBasicAuth(user, pw)
	return r
}

func TestLoginPasswordRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Options{})
		key, err := f.svc.CreateKey(ctx, "ci", []Grant{{ActionPush, "team/*"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(key.ID) != 20 || !strings.HasPrefix(key.ID, KeyIDPrefix) || len(key.Secret) != 40 {
			t.Fatalf("key id %q (%d) secret length %d: want 20 and 40 characters", key.ID, len(key.ID), len(key.Secret))
		}
		pw, exp, err := f.svc.LoginPassword(ctx, key.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := f.clock.Now().Add(DefaultTokenTTL); exp.Sub(want) > time.Second || want.Sub(exp) > time.Second {
			t.Errorf("expires %v, want 12 hours from now (%v)", exp, want)
		}
		if strings.Contains(pw, ":") {
			t.Fatalf("password %q contains ':'", pw)
		}
		// What the AWS CLI does with GetAuthorizationToken's answer:
		// b64decode, split on ':' into exactly two parts.
		dec, err := base64.StdEncoding.DecodeString(AuthorizationToken(pw))
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(string(dec), ":")
		if len(parts) != 2 || parts[0] != "AWS" || parts[1] != pw {
			t.Fatalf("authorization token decodes to %q", dec)
		}

		p, err := f.svc.Authorize(basicRequest("AWS", pw), "team/app/api", ActionPush)
		if err != nil {
			t.Fatalf("authorize push: %v", err)
		}
		if p.Name != "ci" || p.KeyID != key.ID || p.Anonymous {
			t.Errorf("principal %+v", p)
		}
		if _, err := f.svc.Authorize(basicRequest("AWS", pw), "team/app", ActionPull); err != nil {
			t.Errorf("push grant should imply pull: %v", err)
		}
		if _, err := f.svc.Authorize(basicRequest("AWS", pw), "other/app", ActionPush); !errors.Is(err, ErrDenied) {
			t.Errorf("push outside the grant: got %v, want ErrDenied", err)
		}
		if _, err := f.svc.Authorize(basicRequest("AWS", pw), "", ActionAdmin); !errors.Is(err, ErrDenied) {
			t.Errorf("admin without the grant: got %v, want ErrDenied", err)
		}

		// Another replica on the same store (a second Service) accepts it.
		other, err := Open(ctx, db, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Authorize(basicRequest("AWS", pw), "team/x", ActionPull); err != nil {
			t.Errorf("second service on the same store: %v", err)
		}
	})
}

func TestLoginPasswordRejected(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Options{})
		key, err := f.svc.CreateKey(ctx, "ci", []Grant{{ActionPull, "*"}})
		if err != nil {
			t.Fatal(err)
		}
		other, err := f.svc.CreateKey(ctx, "other", []Grant{{ActionPull, "*"}})
		if err != nil {
			t.Fatal(err)
		}
		pw, _, err := f.svc.LoginPassword(ctx, key.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Flip one bit in each byte position of the decoded password: every
		// change must be refused (key id, expiry, nonce or MAC).
		raw, _ := base64.RawURLEncoding.DecodeString(pw)
		for i := range raw {
			b := append([]byte(nil), raw...)
			b[i] ^= 0x01
			tampered := base64.RawURLEncoding.EncodeToString(b)
			if _, err := f.svc.Authorize(basicRequest("AWS", tampered), "x", ActionPull); !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("byte %d flipped: got %v, want ErrUnauthenticated", i, err)
			}
		}
		// Signed with another key's secret but naming this key.
		forged, err := NewLoginPassword(key.ID, other.Secret, f.clock.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		// Too long a lifetime, even when correctly signed.
		tooLong, err := NewLoginPassword(key.ID, key.Secret, f.clock.Now().Add(48*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for name, r := range map[string]*http.Request{
			"wrong secret":   basicRequest("AWS", forged),
			"too long":       basicRequest("AWS", tooLong),
			"wrong user":     basicRequest("admin", pw),
			"garbage":        basicRequest("AWS", "not-a-password"),
			"empty":          basicRequest("AWS", ""),
			"raw secret":     basicRequest(key.ID, key.Secret),
			"no credentials": httptest.NewRequest("GET", "/v2/", nil),
		} {
			if _, err := f.svc.Authorize(r, "x", ActionPull); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("%s: got %v, want ErrUnauthenticated", name, err)
			}
		}

		// Expiry: valid a second before, refused at the expiry.
		f.clock.Add(DefaultTokenTTL - time.Second)
		if _, err := f.svc.Authorize(basicRequest("AWS", pw), "x", ActionPull); err != nil {
			t.Errorf("one second before expiry: %v", err)
		}
		f.clock.Add(2 * time.Second)
		_, err = f.svc.Authorize(basicRequest("AWS", pw), "x", ActionPull)
		var ae *Error
		if !errors.As(err, &ae) || ae.Code != "ExpiredTokenException" {
			t.Errorf("after expiry: got %v, want ExpiredTokenException", err)
		}

		// Disabling the key revokes its passwords at once; enabling restores.
		pw, _, err = f.svc.LoginPassword(ctx, key.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.SetKeyDisabled(ctx, key.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authorize(basicRequest("AWS", pw), "x", ActionPull); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("disabled key: got %v, want ErrUnauthenticated", err)
		}
		if _, _, err := f.svc.LoginPassword(ctx, key.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("login password for a disabled key: got %v, want ErrNotFound", err)
		}
		if err := f.svc.SetKeyDisabled(ctx, key.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authorize(basicRequest("AWS", pw), "x", ActionPull); err != nil {
			t.Errorf("re-enabled key: %v", err)
		}
		if err := f.svc.DeleteKey(ctx, key.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authorize(basicRequest("AWS", pw), "x", ActionPull); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("deleted key: got %v, want ErrUnauthenticated", err)
		}
		if err := f.svc.DeleteKey(ctx, key.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting twice: got %v, want ErrNotFound", err)
		}
		if strings.Contains(f.logs.String(), key.Secret) || strings.Contains(f.logs.String(), pw) {
			t.Errorf("a secret or password reached the logs:\n%s", f.logs)
		}
	})
}

func TestPasswordsNeverHoldColon(t *testing.T) {
	for i := 0; i < 2000; i++ {
		pw, err := NewLoginPassword("DDAKABCDEFGHIJKLMNOP", "s", time.Unix(int64(i)*7919, 0))
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(pw, ":=+/ \n") {
			t.Fatalf("password %q holds a character outside base64url", pw)
		}
	}
}

func TestAnonymousPull(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, Options{AnonymousPull: true})
		anon := httptest.NewRequest("GET", "/v2/x/manifests/latest", nil)
		p, err := f.svc.Authorize(anon, "x", ActionPull)
		if err != nil || !p.Anonymous {
			t.Fatalf("anonymous pull: %+v, %v", p, err)
		}
		// Anything else asks for credentials (401), not 403.
		if _, err := f.svc.Authorize(anon, "x", ActionPush); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("anonymous push: got %v, want ErrUnauthenticated", err)
		}
		// Bad credentials never fall back to anonymous.
		if _, err := f.svc.Authorize(basicRequest("AWS", "bogus"), "x", ActionPull); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("bad credentials with anonymous pull on: got %v", err)
		}

		g := newFixture(t, db, Options{})
		if _, err := g.svc.Authorize(anon, "x", ActionPull); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("anonymous pull off: got %v, want ErrUnauthenticated", err)
		}
		if got := g.svc.Challenge(); got != `Basic realm="drydock"` {
			t.Errorf("challenge %q", got)
		}
	})
}

func TestBootstrap(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Options{})
		dir := filepath.Join(t.TempDir(), "data")
		file, created, err := f.svc.Bootstrap(ctx, dir)
		if err != nil || !created {
			t.Fatalf("first bootstrap: %q %v %v", file, created, err)
		}
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
		}
		if dst, _ := os.Stat(dir); dst.Mode().Perm() != 0o700 {
			t.Errorf("data dir mode %v, want 0700", dst.Mode().Perm())
		}
		kf, err := ReadKeyFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(f.logs.String(), kf.SecretAccessKey) {
			t.Errorf("the admin secret reached the logs:\n%s", f.logs)
		}
		if !strings.Contains(f.logs.String(), file) {
			t.Errorf("the logs do not say where the key file is:\n%s", f.logs)
		}
		pw, err := NewLoginPassword(kf.AccessKeyID, kf.SecretAccessKey, f.clock.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.svc.Authorize(basicRequest("AWS", pw), "", ActionAdmin)
		if err != nil || p.Name != AdminPrincipal {
			t.Fatalf("admin key from the file: %+v %v", p, err)
		}

		// Idempotent: a second start changes nothing.
		file2, created, err := f.svc.Bootstrap(ctx, dir)
		if err != nil || created || file2 != file {
			t.Fatalf("second bootstrap: %q %v %v", file2, created, err)
		}
		kf2, _ := ReadKeyFile(file)
		if kf2 != kf {
			t.Errorf("second bootstrap rewrote the key file")
		}
		keys, err := f.svc.ListKeys(ctx)
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys after two bootstraps: %+v %v", keys, err)
		}
		// A replica with another data directory does not make a second admin.
		file3, created, err := f.svc.Bootstrap(ctx, t.TempDir())
		if err != nil || created || file3 != "" {
			t.Errorf("bootstrap of a second replica: %q %v %v", file3, created, err)
		}
	})
}

func TestBootstrapConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Options{})
		var wg sync.WaitGroup
		results := make([]bool, 4)
		errs := make([]error, 4)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, results[i], errs[i] = f.svc.Bootstrap(ctx, t.TempDir())
			}()
		}
		wg.Wait()
		n := 0
		for i, c := range results {
			if errs[i] != nil {
				t.Errorf("bootstrap %d: %v", i, errs[i])
			}
			if c {
				n++
			}
		}
		keys, err := f.svc.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 || len(keys) != 1 {
			t.Errorf("%d bootstraps created an admin, %d keys exist; want exactly one", n, len(keys))
		}
	})
}

func TestPermissions(t *testing.T) {
	p := Principal{Name: "team", Grants: []Grant{
		{ActionPull, "base/*"}, {ActionPush, "team/*"}, {ActionReadFindings, "team/app"}, {ActionDelete, "team/tmp-*"},
	}}
	for _, c := range []struct {
		repo   string
		action Action
		want   bool
	}{
		{"base/debian", ActionPull, true},
		{"base/debian", ActionPush, false},
		{"team/app/api", ActionPush, true},
		{"team/app/api", ActionPull, true},
		{"team", ActionPull, false},
		{"teams/x", ActionPush, false},
		{"team/app", ActionReadFindings, true},
		{"team/app2", ActionReadFindings, false},
		{"team/tmp-1", ActionDelete, true},
		{"team/app", ActionDelete, false},
		{"", ActionCatalog, true},
		{"", ActionAdmin, false},
		{"", ActionPull, false},
	} {
		if got := p.Can(c.repo, c.action); got != c.want {
			t.Errorf("Can(%q, %s) = %v, want %v", c.repo, c.action, got, c.want)
		}
	}
	admin := Principal{Grants: []Grant{{ActionAdmin, "*"}}}
	if !admin.Can("", ActionAdmin) || !admin.Can("x/y", ActionDelete) {
		t.Error("admin grant does not allow everything")
	}
	if (Principal{}).Can("", ActionCatalog) {
		t.Error("a principal without grants may list the catalog")
	}
	for _, g := range []Grant{{"fly", "*"}, {ActionPull, ""}, {ActionPull, "UPPER"}, {ActionCatalog, "*"}} {
		if g.Validate() == nil {
			t.Errorf("grant %v validated", g)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"*", "a", true},
		{"*", "a/b/c", true},
		{"a", "a", true},
		{"a", "ab", false},
		{"a*", "ab", true},
		{"*b", "ab", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxcyyb", false},
		{"team/*/api", "team/x/y/api", true},
		{"**", "x", true},
		{"x", "", false},
	} {
		if got := matchPattern(c.pattern, c.name); got != c.want {
			t.Errorf("matchPattern(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

// TestDisableSeenByOtherReplicas: a key disabled through one Service is
// refused by that Service at once and by another Service on the same store
// (another replica) once its key cache entry expires.
func TestDisableSeenByOtherReplicas(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newFixture(t, db, Options{})
		b := newFixture(t, db, Options{})
		key, err := a.svc.CreateKey(ctx, "ci", []Grant{{ActionPull, "*"}})
		if err != nil {
			t.Fatal(err)
		}
		pw, _, err := a.svc.LoginPassword(ctx, key.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []*fixture{a, b} {
			if _, err := f.svc.Authorize(basicRequest("AWS", pw), "x", ActionPull); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.svc.SetKeyDisabled(ctx, key.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := a.svc.Authorize(basicRequest("AWS", pw), "x", ActionPull); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("the replica that disabled the key: %v", err)
		}
		b.clock.Add(DefaultKeyCacheTTL)
		if _, err := b.svc.Authorize(basicRequest("AWS", pw), "x", ActionPull); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("another replica after the cache TTL: %v", err)
		}
		// Grants added later reach the other replica the same way.
		if err := a.svc.SetKeyDisabled(ctx, key.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := a.svc.CreateKey(ctx, "ci", []Grant{{ActionPush, "team/*"}}); err != nil {
			t.Fatal(err)
		}
		b.clock.Add(DefaultKeyCacheTTL)
		if _, err := b.svc.Authorize(basicRequest("AWS", pw), "team/app", ActionPush); err != nil {
			t.Errorf("a grant added on another replica: %v", err)
		}
	})
}
