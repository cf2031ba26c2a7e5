package scan

import (
	"context"
	"fmt"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// ActionScanFrequencyChange is the action-type of `ECR Scan Resource
// Change` events (the only one AWS documents).
const ActionScanFrequencyChange = "SCAN_FREQUENCY_CHANGE"

// scopeBatch bounds the repositories listed in one `ECR Scan Resource
// Change` event, so an event stays far below EventBridge's 256 KB limit
// however many repositories a configuration change moves.
const scopeBatch = 100

// ScopeChange is one repository of an `ECR Scan Resource Change` event.
type ScopeChange struct {
	RepositoryName        string    `json:"repository-name"`
	RepositoryArn         string    `json:"repository-arn"`
	ScanFrequency         Frequency `json:"scan-frequency"`
	PreviousScanFrequency Frequency `json:"previous-scan-frequency"`
}

// scopeDetail is the detail of an `ECR Scan Resource Change` event
// (contract §11.3).
type scopeDetail struct {
	ActionType   string        `json:"action-type"`
	Repositories []ScopeChange `json:"repositories"`
	ResourceType string        `json:"resource-type"`
	ScanType     ScanType      `json:"scan-type"`
}

// scopeEventsTx writes the `ECR Scan Resource Change` events listing
// changes (scopeBatch repositories each) under scan type typ.
func (s *Service) scopeEventsTx(ctx context.Context, tx *store.Tx, typ ScanType, changes []ScopeChange, now time.Time) error {
	var events []event
	for start := 0; start < len(changes); start += scopeBatch {
		end := min(start+scopeBatch, len(changes))
		events = append(events, event{SourceECR, DetailECRScanResourceChange, scopeDetail{
			ActionType: ActionScanFrequencyChange, Repositories: changes[start:end], ResourceType: "REPOSITORY", ScanType: typ,
		}})
	}
	return insertEvents(ctx, tx, s.packer, events, now)
}

// scanOnPushSettings reads the repositories' deprecated per-repository
// scanOnPush settings (nil when the service has no such settings).
func (s *Service) scanOnPushSettings(ctx context.Context, repos []string) (map[string]bool, error) {
	if s.opts.RepositoryScanOnPush == nil {
		return nil, nil
	}
	out := make(map[string]bool, len(repos))
	for _, r := range repos {
		v, err := s.opts.RepositoryScanOnPush(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("scan: scanOnPush of %s: %w", r, err)
		}
		out[r] = v
	}
	return out, nil
}

// frequencies is each repository's effective scan frequency under c.
func frequencies(c Config, repos []string, onPush map[string]bool) map[string]Frequency {
	out := make(map[string]Frequency, len(repos))
	for _, r := range repos {
		out[r] = c.Effective(r, onPush[r]).ScanFrequency
	}
	return out
}

// scopeChangeTx writes the `ECR Scan Resource Change` events of a move
// from configuration old to c (see scopeChanges).
func (s *Service) scopeChangeTx(ctx context.Context, tx *store.Tx, old, c Config, repos []string, onPush map[string]bool, now time.Time) error {
	changes := s.scopeChanges(old, c, repos, frequencies(old, repos, onPush), frequencies(c, repos, onPush))
	return s.scopeEventsTx(ctx, tx, c.ScanType, changes, now)
}

// scopeChanges lists the repositories whose scanning changes from old to
// c (before and after hold their effective frequencies): when either is
// ENHANCED, every repository whose frequency changes, and on a change of
// scan type every repository scanned under either (one that is MANUAL
// under both is scanned under neither).
func (s *Service) scopeChanges(old, c Config, repos []string, before, after map[string]Frequency) []ScopeChange {
	if c.ScanType != Enhanced && old.ScanType != Enhanced {
		return nil
	}
	var out []ScopeChange
	for _, r := range repos {
		b, a := before[r], after[r]
		if b == a && (old.ScanType == c.ScanType || a == Manual) {
			continue
		}
		out = append(out, ScopeChange{RepositoryName: r, RepositoryArn: s.repositoryArn(r), ScanFrequency: a, PreviousScanFrequency: b})
	}
	return out
}

// repositoryScopeTx writes the `ECR Scan Resource Change` of a repository
// created (or deleted) under enhanced scanning that a rule covers: it
// moves from (to) MANUAL, the frequency of a repository that is not
// scanned. Repositories no rule covers, and any under BASIC, give none.
func (s *Service) repositoryScopeTx(ctx context.Context, tx *store.Tx, cfg Config, repo string, created bool, now time.Time) error {
	if cfg.ScanType != Enhanced {
		return nil
	}
	f := cfg.Effective(repo, false).ScanFrequency
	if f == Manual {
		return nil
	}
	ch := ScopeChange{RepositoryName: repo, RepositoryArn: s.repositoryArn(repo), ScanFrequency: f, PreviousScanFrequency: Manual}
	if !created {
		ch.ScanFrequency, ch.PreviousScanFrequency = Manual, f
	}
	return s.scopeEventsTx(ctx, tx, cfg.ScanType, []ScopeChange{ch}, now)
}
