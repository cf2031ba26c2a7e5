package events

import (
	"context"
	"testing"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// BenchmarkDeliver measures outbox row to acknowledged webhook POST: each
// iteration reads one image push from the outbox (written untimed),
// enqueues its delivery, sends it to a receiver on 127.0.0.1 and records
// the outcome, 64 rows per outbox read and 16 deliveries per claim.
func BenchmarkDeliver(b *testing.B) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(backend.name, func(b *testing.B) {
			db := backend.open(b)
			c := newClock()
			r := newReceiver(b, "k", nil)
			s, err := New(context.Background(), Options{Store: db, Account: "123456789012", Now: c.now})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.AddTarget(context.Background(), Target{Name: "hook", URL: r.srv.URL, Secret: "k", Enabled: true}); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i += 64 {
				b.StopTimer()
				for j := i; j < min(i+64, b.N); j++ {
					pushRow(b, db, c, "repo", "sha256:x", "t")
				}
				b.StartTimer()
				if _, err := s.Poll(ctx); err != nil {
					b.Fatal(err)
				}
				for {
					n, err := s.DeliverDue(ctx, 16)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 {
						break
					}
				}
			}
			b.StopTimer()
			if got := len(r.requests()); got != b.N {
				b.Fatalf("%d deliveries for %d events", got, b.N)
			}
		})
	}
}
