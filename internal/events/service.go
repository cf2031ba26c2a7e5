package events

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configure a Service. Zero values take the defaults shown.
type Options struct {
	Store *store.DB
	// Account and Region fill the envelopes (Region default us-east-1).
	Account string
	Region  string
	// MaxAttempts is how many times a delivery is tried before it is
	// recorded as a dead letter (default 8).
	MaxAttempts int
	// Timeout bounds one POST (default 10 s).
	Timeout time.Duration
	// BaseBackoff and MaxBackoff shape the exponential backoff between
	// tries (defaults 1 s and 10 min); each wait is drawn from
	// [d/2, d] to spread retries of many deliveries.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// GapWait is how long a hole in an outbox's ids is waited for before
	// it is skipped (a transaction that took the id may still commit;
	// default 10 s).
	GapWait time.Duration
	// Client sends the deliveries (default: a client that does not follow
	// redirects).
	Client *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
	// Exploitability, when set, adds the EPSS score and the KEV date to
	// Inspector2 Finding events (pass the scan service's Exploitability).
	Exploitability func(*scan.Finding) scan.Exploitability
}

// Service reads the outboxes and delivers events to targets.
type Service struct {
	db      *store.DB
	opts    Options
	builder Builder
	log     *slog.Logger
}

// New applies the events migrations (and those of the outboxes it reads)
// and returns a Service.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Store == nil {
		return nil, fmt.Errorf("events: no store")
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Minute
	}
	if o.GapWait <= 0 {
		o.GapWait = 10 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := o.Store.MigrateRegistry(ctx); err != nil {
		return nil, err
	}
	if err := scan.Migrate(ctx, o.Store); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if err := o.Store.Migrate(ctx, "events", sub); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return &Service{db: o.Store, opts: o, builder: Builder{Account: o.Account, Region: o.Region, Exploitability: o.Exploitability}, log: o.Log}, nil
}

func (s *Service) now() time.Time { return s.opts.Now() }

// Builder returns the envelope builder of this service.
func (s *Service) Builder() Builder { return s.builder }

// registryRows reads registry outbox rows after id.
func (s *Service) registryRows(ctx context.Context, after int64, limit int) ([]row, error) {
	evs, err := s.db.Registry().Outbox(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]row, 0, len(evs))
	for _, e := range evs {
		envs, err := s.builder.FromRegistry(e)
		if err != nil {
			s.log.Warn("events: unreadable registry outbox row", "id", e.ID, "err", err)
		}
		out = append(out, row{id: e.ID, created: e.CreatedAt, events: envs})
	}
	return out, nil
}

// scanRows reads scan outbox rows after id.
func (s *Service) scanRows(ctx context.Context, after int64, limit int) ([]row, error) {
	stored, err := scan.ReadOutbox(ctx, s.db, after, limit)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	// Finding events carry the image's current tags and push time, read
	// after the outbox rows (one query at a time on the store).
	imgs := &images{db: s.db, cache: map[imageKey]*Image{}}
	var out []row
	for _, se := range stored {
		e := ScanEvent{ID: se.ID, Index: se.Index, CreatedAt: se.CreatedAt.UTC(), Source: se.Source, DetailType: se.DetailType, Detail: se.Detail}
		if e.DetailType == scan.DetailInspector2Finding {
			if f, ok := storedFinding(e.Detail); ok {
				img, err := imgs.get(ctx, f.Repository, f.Digest)
				if err != nil {
					return nil, err
				}
				e.Image = img
			}
		}
		// The events of one outbox row go to one row.
		if len(out) == 0 || out[len(out)-1].id != e.ID {
			out = append(out, row{id: e.ID, created: e.CreatedAt})
		}
		env, err := s.builder.FromScan(e)
		if err != nil {
			s.log.Warn("events: unreadable scan outbox event", "id", e.ID, "index", e.Index, "err", err)
			continue
		}
		out[len(out)-1].events = append(out[len(out)-1].events, env)
	}
	return out, nil
}

// row is one outbox row and the events it gives.
type row struct {
	id      int64
	created time.Time
	events  []Envelope
}

func (s *Service) read(ctx context.Context, outbox string, after int64, limit int) ([]row, error) {
	if outbox == RegistryOutbox {
		return s.registryRows(ctx, after, limit)
	}
	return s.scanRows(ctx, after, limit)
}

// Position is a place in both outboxes: the last row id read of each.
type Position struct {
	Registry int64 `json:"registry"`
	Scan     int64 `json:"scan"`
}

// End returns the position after the last rows written so far.
func (s *Service) End(ctx context.Context) (Position, error) {
	var p Position
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM registry_outbox`).Scan(&p.Registry); err != nil {
		return p, fmt.Errorf("events: outbox end: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM scan_outbox`).Scan(&p.Scan); err != nil {
		return p, fmt.Errorf("events: outbox end: %w", err)
	}
	return p, nil
}

// Read returns the events written after position from, at most about
// limit rows of each outbox, and the position after them. It is what
// `drydock events tail` prints.
func (s *Service) Read(ctx context.Context, from Position, limit int) ([]Envelope, Position, error) {
	var out []Envelope
	rr, err := s.read(ctx, RegistryOutbox, from.Registry, limit)
	if err != nil {
		return nil, from, err
	}
	for _, r := range rr {
		out = append(out, r.events...)
		from.Registry = r.id
	}
	sr, err := s.read(ctx, ScanOutbox, from.Scan, limit)
	if err != nil {
		return nil, from, err
	}
	for _, r := range sr {
		out = append(out, r.events...)
		from.Scan = r.id
	}
	// Times have one format, so they sort as text.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time < out[j].Time })
	return out, from, nil
}
