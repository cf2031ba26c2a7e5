package awsapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

type cursor struct {
	After string `json:"a"`
	Tag   string `json:"t,omitempty"`
}

func newTestTokens(t testing.TB) *Tokens {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	tk, err := NewTokens(key)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestTokens(t *testing.T) {
	tk := newTestTokens(t)
	in := cursor{After: "sha256:abc", Tag: "latest"}
	seen := map[string]bool{}
	for range 100 {
		tok, err := tk.Seal("ListImages\x00repo", in)
		if err != nil {
			t.Fatal(err)
		}
		if seen[tok] {
			t.Fatalf("token %s made twice", tok)
		}
		seen[tok] = true
		var out cursor
		if err := tk.Open("ListImages\x00repo", tok, &out); err != nil || out != in {
			t.Fatalf("round trip: %v %+v", err, out)
		}
		if bytes.Contains([]byte(tok), []byte("abc")) || bytes.Contains([]byte(tok), []byte("latest")) {
			t.Fatalf("token %s shows its cursor", tok)
		}
	}
	tok, _ := tk.Seal("ListImages\x00repo", in)
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	var out cursor
	for name, bad := range map[string]func() error{
		"other scope":   func() error { return tk.Open("ListImages\x00other", tok, &out) },
		"other key":     func() error { return newTestTokens(t).Open("ListImages\x00repo", tok, &out) },
		"empty":         func() error { return tk.Open("ListImages\x00repo", "", &out) },
		"not base64url": func() error { return tk.Open("ListImages\x00repo", tok+"=", &out) },
		"too long": func() error {
			return tk.Open("ListImages\x00repo", string(bytes.Repeat([]byte("A"), maxTokenLen+1)), &out)
		},
		"flipped bit": func() error {
			b := bytes.Clone(raw)
			b[len(b)/2] ^= 1
			return tk.Open("ListImages\x00repo", base64.RawURLEncoding.EncodeToString(b), &out)
		},
		"truncated": func() error {
			return tk.Open("ListImages\x00repo", base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]), &out)
		},
	} {
		if err := bad(); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: %v, want ErrBadToken", name, err)
		}
	}
	// Tokens expire after TokenTTL.
	now := time.Now()
	tk.now = func() time.Time { return now }
	tok, _ = tk.Seal("s", in)
	tk.now = func() time.Time { return now.Add(TokenTTL - time.Minute) }
	if err := tk.Open("s", tok, &out); err != nil {
		t.Errorf("a token before its expiry: %v", err)
	}
	tk.now = func() time.Time { return now.Add(TokenTTL + time.Second) }
	if err := tk.Open("s", tok, &out); !errors.Is(err, ErrBadToken) {
		t.Errorf("an expired token: %v", err)
	}
	if _, err := NewTokens(make([]byte, 16)); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}

func FuzzTokenOpen(f *testing.F) {
	tk := newTestTokens(f)
	for _, c := range []cursor{{After: "a"}, {After: "sha256:0123", Tag: "v1"}} {
		tok, err := tk.Seal("scope", c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		var out cursor
		if err := tk.Open("scope", tok, &out); err != nil && !errors.Is(err, ErrBadToken) {
			t.Fatalf("Open error %v is not ErrBadToken", err)
		}
	})
}

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// TestLoadAccount checks that the account is made once and then read
// back: the same id and a token key that opens earlier tokens.
func TestLoadAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a, err := LoadAccount(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if !RegistryIDPattern.MatchString(a.ID) {
			t.Fatalf("registry id %q", a.ID)
		}
		tok, err := a.Tokens().Seal("s", cursor{After: "x"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := LoadAccount(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		var out cursor
		if b.ID != a.ID || b.Tokens().Open("s", tok, &out) != nil || out.After != "x" {
			t.Fatalf("second load: id %s (first %s), token: %+v", b.ID, a.ID, out)
		}
	})
}
