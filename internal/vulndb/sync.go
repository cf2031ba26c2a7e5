package vulndb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// SourceFeed is a configured source: its feed, and how status describes
// it.
type SourceFeed struct {
	Feed Feed
	Kind string
	URL  string
}

// Syncer fetches the configured sources and applies them as a new
// generation, by hand (drydock db update) or on a schedule (Run, inside
// drydock serve).
type Syncer struct {
	DB      *DB
	Sources []SourceFeed
	// Index, when set, is refreshed after each sync that makes a
	// generation.
	Index *Index
	Log   *slog.Logger
	// Parallel bounds how many feeds are fetched at once (default 2).
	Parallel int
}

// SyncOptions adjust one sync.
type SyncOptions struct {
	// Only names the sources to sync; all of the Syncer's when empty.
	Only []string
	// AllowShrink applies feeds that shrank by more than half.
	AllowShrink bool
	// Force fetches whole feeds even when upstream says they did not
	// change (no ETag, Last-Modified or checksum sent).
	Force bool
}

// Sync fetches the sources and applies what they hold now as one
// generation. A source that fails keeps what the database had from it; the
// result lists each source's outcome. The error is for a sync that could
// not be applied at all (the store failed).
func (s *Syncer) Sync(ctx context.Context, opts SyncOptions) (*ApplyResult, error) {
	log := s.logger()
	feeds := s.Sources
	if len(opts.Only) > 0 {
		feeds = nil
		for _, name := range opts.Only {
			i := slices.IndexFunc(s.Sources, func(f SourceFeed) bool { return f.Feed.Name() == name })
			if i < 0 {
				return nil, fmt.Errorf("vulndb: sync: no source named %q", name)
			}
			feeds = append(feeds, s.Sources[i])
		}
	}
	if len(feeds) == 0 {
		return nil, errors.New("vulndb: sync: no sources configured")
	}
	statuses, err := s.DB.Sources(ctx)
	if err != nil {
		return nil, err
	}
	prev := map[string]FetchState{}
	for _, st := range statuses {
		prev[st.Name] = st.State
	}
	updates := s.fetchAll(ctx, feeds, prev, opts)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := s.DB.Apply(ctx, updates)
	if err != nil {
		return nil, err
	}
	// A feed that skipped unchanged records the database turns out not to
	// hold is fetched again in full.
	var again []SourceFeed
	for i, sr := range res.Sources {
		if errors.Is(sr.Err, ErrUnknownUnchanged) {
			log.Warn("vulndb: source out of step with the database; fetching it in full", "source", sr.Name, "err", sr.Err)
			again = append(again, feeds[i])
		}
	}
	if len(again) > 0 {
		res2, err := s.DB.Apply(ctx, s.fetchAll(ctx, again, nil, opts))
		if err != nil {
			return nil, err
		}
		for _, sr := range res2.Sources {
			i := slices.IndexFunc(res.Sources, func(x SourceResult) bool { return x.Name == sr.Name })
			res.Sources[i] = sr
		}
		if res2.Generation > 0 {
			res.Generation, res.ChangeSet = res2.Generation, res2.ChangeSet
		}
	}
	for _, sr := range res.Sources {
		for i, re := range sr.Rejected {
			if i == 20 {
				log.Warn("vulndb: more records rejected", "source", sr.Name, "count", len(sr.Rejected)-i)
				break
			}
			log.Warn("vulndb: record rejected", "source", sr.Name, "record", re.Record, "err", re.Err)
		}
		if sr.Outcome == OutcomeRefused {
			log.Error("vulndb: source refused; keeping its advisories", "source", sr.Name, "err", sr.Err)
		}
	}
	if res.Generation > 0 {
		c := res.ChangeSet.Counts()
		log.Info("vulndb: new generation", "generation", res.Generation, "added", c.Added, "modified", c.Modified,
			"withdrawn", c.Withdrawn, "removed", c.Removed, "enrichment_changed", c.EnrichmentChanged, "keys", len(res.ChangeSet.Keys))
		if s.Index != nil {
			if _, err := s.Index.Refresh(ctx); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// fetchAll fetches the feeds, a few at a time, each with its previous
// state from prev (none when prev is nil or opts.Force).
func (s *Syncer) fetchAll(ctx context.Context, feeds []SourceFeed, prev map[string]FetchState, opts SyncOptions) []SourceUpdate {
	log := s.logger()
	updates := make([]SourceUpdate, len(feeds))
	par := s.Parallel
	if par <= 0 {
		par = 2
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, sf := range feeds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			name := sf.Feed.Name()
			var state FetchState
			if !opts.Force {
				state = prev[name]
			}
			start := time.Now()
			u := SourceUpdate{Name: name, Kind: sf.Kind, URL: sf.URL, AllowShrink: opts.AllowShrink}
			data, newState, err := sf.Feed.Fetch(ctx, state)
			switch {
			case errors.Is(err, ErrNotModified):
				u.NotModified, u.State = true, newState
				log.Info("vulndb: source unchanged upstream", "source", name, "took", time.Since(start).Round(time.Millisecond))
			case err != nil:
				u.Err = err
				log.Warn("vulndb: source failed; keeping its advisories", "source", name, "err", err)
			case data == nil:
				u.Err = errors.New("feed returned no data")
			default:
				u.Data, u.State = data, newState
				log.Info("vulndb: source fetched", "source", name, "advisories", len(data.Advisories), "unchanged", len(data.Unchanged),
					"enrichment", len(data.Enrichment), "rejected", len(data.Rejected), "took", time.Since(start).Round(time.Millisecond))
			}
			updates[i] = u
		}()
	}
	wg.Wait()
	return updates
}

func (s *Syncer) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Run syncs on a schedule until ctx ends: at once when the database is
// older than interval (or empty), then every interval. A failed sync is
// logged and recorded in the sources' status; the database keeps its last
// good generation and the next attempt comes at the next tick. onSync, if
// set, is called after each attempt (metrics, re-evaluation).
func (s *Syncer) Run(ctx context.Context, interval time.Duration, onSync func(*ApplyResult, error)) error {
	if interval <= 0 {
		return fmt.Errorf("vulndb: sync interval %v", interval)
	}
	log := s.logger()
	wait, err := s.firstWait(ctx, interval)
	if err != nil {
		log.Warn("vulndb: cannot read sync status; syncing now", "err", err)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		res, err := s.Sync(ctx, SyncOptions{})
		if err != nil && ctx.Err() == nil {
			log.Error("vulndb: scheduled sync failed; serving the last good generation", "err", err)
		}
		if onSync != nil {
			onSync(res, err)
		}
		t.Reset(interval)
	}
}

// firstWait is how long Run waits before its first sync: none when some
// source never succeeded or last succeeded longer than interval ago.
func (s *Syncer) firstWait(ctx context.Context, interval time.Duration) (time.Duration, error) {
	statuses, err := s.DB.Sources(ctx)
	if err != nil {
		return 0, err
	}
	last := map[string]time.Time{}
	for _, st := range statuses {
		last[st.Name] = st.LastSuccess
	}
	oldest := time.Time{}
	for i, sf := range s.Sources {
		t := last[sf.Feed.Name()]
		if t.IsZero() {
			return 0, nil
		}
		if i == 0 || t.Before(oldest) {
			oldest = t
		}
	}
	return max(0, interval-s.DB.now().Sub(oldest)), nil
}
