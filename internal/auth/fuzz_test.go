package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/drydockhq/drydock/internal/store/storetest"
)

func FuzzParseSigV4Authorization(f *testing.F) {
	for _, c := range capturedRequests(f) {
		if h := c.header("Authorization"); h != "" {
			f.Add(h)
		}
	}
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e")
	f.Add("AWS4-HMAC-SHA256 ,,,=")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseSigV4Authorization(h)
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("error %v does not match ErrUnauthenticated", err)
			}
			return
		}
		// What parsed must print back to a header that parses the same.
		again := sigV4Algorithm + " Credential=" + strings.Join([]string{a.keyID, a.date, a.region, a.service, "aws4_request"}, "/") +
			", SignedHeaders=" + strings.Join(a.signedHeaders, ";") + ", Signature=" + a.signature
		b, err := parseSigV4Authorization(again)
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("%q parsed as %+v; printed back %q parses as %+v, %v", h, a, again, b, err)
		}
	})
}

func FuzzParsePassword(f *testing.F) {
	pw, _ := NewLoginPassword("DDAKABCDEFGHIJKLMNOP", "secret", time.Unix(1798761600, 0))
	f.Add(pw)
	f.Add("eyJwYXlsb2FkIjoiZHVtbXkifQ==") // the password of the contract's captured ECR reply
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePassword(s)
		if err != nil {
			return
		}
		if got := base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), p.signed...), p.mac...)); got != s {
			t.Fatalf("%q parsed, but its parts encode to %q", s, got)
		}
		if p.keyID == "" || len(p.keyID) > maxKeyIDLen {
			t.Fatalf("key id %q", p.keyID)
		}
	})
}

// FuzzAuthenticate throws arbitrary Authorization headers at a service
// with one real key. Nothing may panic, every failure must be an
// authentication error, and only the one real password may succeed.
func FuzzAuthenticate(f *testing.F) {
	ctx := context.Background()
	db := storetest.SQLite(f)
	// The clock stands at the day of the captured requests, so their
	// credential dates match and their signatures get computed.
	at := time.Date(2026, 11, 27, 2, 10, 0, 0, time.UTC)
	svc, err := Open(ctx, db, Options{Now: func() time.Time { return at }})
	if err != nil {
		f.Fatal(err)
	}
	key, err := svc.CreateKey(ctx, "ci", []Grant{{ActionPull, "*"}})
	if err != nil {
		f.Fatal(err)
	}
	good, _, err := svc.LoginPassword(ctx, key.ID)
	if err != nil {
		f.Fatal(err)
	}
	// The captured SigV4 headers name the key "test"; with it in the store
	// they reach the signature computation (and fail on the body and date).
	if _, err := db.ExecContext(ctx, `INSERT INTO auth_principals (name, created_at) VALUES ('capture', 0)`); err != nil {
		f.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO auth_keys (id, principal, secret, disabled, created_at) VALUES ('test', 'capture', 'test', 0, 0)`); err != nil {
		f.Fatal(err)
	}
	goodHeader := "Basic " + base64.StdEncoding.EncodeToString([]byte("AWS:"+good))
	f.Add(goodHeader)
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("AWS:")))
	f.Add("Basic !!!")
	f.Add("Bearer abc")
	for _, c := range capturedRequests(f) {
		if h := c.header("Authorization"); h != "" {
			f.Add(h)
		}
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest("POST", "/", strings.NewReader("{}"))
		r.Header.Set("Authorization", h)
		r.Header.Set("X-Amz-Date", at.Format(amzDateFormat))
		p, err := svc.Authenticate(r)
		if err == nil {
			if h != goodHeader && !strings.EqualFold(h[:5], "basic") {
				t.Fatalf("%q authenticated as %+v", h, p)
			}
			if p.KeyID != key.ID {
				t.Fatalf("%q authenticated as %+v", h, p)
			}
			return
		}
		if !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("%q: error %v is not an authentication error", h, err)
		}
	})
}

// FuzzMatchPattern checks the wildcard matcher against the regular
// expression the pattern stands for.
func FuzzMatchPattern(f *testing.F) {
	for _, s := range [][2]string{{"team/*", "team/app/api"}, {"a*b*c", "axxbyyc"}, {"*", "x"}, {"**a", "ba"}, {"a*", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 64 || len(name) > 256 || !utf8.ValidString(name) || !utf8.ValidString(pattern) {
			return // the regexp works on runes, the matcher on bytes
		}
		parts := strings.Split(pattern, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re := regexp.MustCompile(`^(?s:` + strings.Join(parts, ".*") + `)$`)
		want := name != "" && re.MatchString(name)
		if got := matchPattern(pattern, name); got != want {
			t.Fatalf("matchPattern(%q, %q) = %v, the regexp says %v", pattern, name, got, want)
		}
	})
}
