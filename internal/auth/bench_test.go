package auth

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// BenchmarkAuthorizeBasic measures what authentication adds to every
// registry request: parse a login password, look up the key and its
// grants (in the key cache, or with one query), one HMAC.
func BenchmarkAuthorizeBasic(b *testing.B) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		for _, cache := range []struct {
			name string
			ttl  time.Duration
		}{{"cached", 0}, {"uncached", -1}} {
			b.Run(backend.name+"/"+cache.name, func(b *testing.B) {
				ctx := context.Background()
				svc, err := Open(ctx, backend.open(b), Options{KeyCacheTTL: cache.ttl, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				k, err := svc.CreateKey(ctx, "ci", []Grant{{ActionPush, "team/*"}})
				if err != nil {
					b.Fatal(err)
				}
				pw, _, err := svc.LoginPassword(ctx, k.ID)
				if err != nil {
					b.Fatal(err)
				}
				r := basicRequest("AWS", pw)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := svc.Authorize(r, "team/app", ActionPush); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
