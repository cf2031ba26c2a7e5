package scan

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// Monitoring windows: Inspector's ECR re-scan duration (CONTRACT.md §10.6,
// §12.5). An enhanced image stays monitored (ACTIVE, re-scanned when the
// vulnerability data changes) while it was pushed within the push date
// duration or pulled within the pull date duration. Past both it goes to
// SCAN_ELIGIBILITY_EXPIRED and its findings close. A push of the same
// image, or a pull recorded after it expired, brings it back: it is
// scanned again and its findings reopen. Changing the durations never
// brings an expired image back by itself ("inactive images remain
// inactive, even if you push them within the new duration").

// Push date durations (Inspector EcrRescanDuration).
const (
	RescanLifetime = "LIFETIME"
	RescanDays14   = "DAYS_14"
	RescanDays30   = "DAYS_30"
	RescanDays60   = "DAYS_60"
	RescanDays90   = "DAYS_90"
	RescanDays180  = "DAYS_180"
)

// Pull date modes (Inspector EcrPullDateRescanMode). Drydock has no
// runtime data from clusters, so LAST_IN_USE_AT is measured by the last
// pull like LAST_PULL_DATE.
const (
	PullModeLastPullDate = "LAST_PULL_DATE"
	PullModeLastInUseAt  = "LAST_IN_USE_AT"
)

// DefaultPullDateRescanDuration applies while no pull date duration was
// set (Inspector's default for new accounts).
const DefaultPullDateRescanDuration = RescanDays14

// DescEligibilityExpired is the description of a SCAN_ELIGIBILITY_EXPIRED
// status (Inspector's text for the reason of the same name).
const DescEligibilityExpired = "The configured scan duration has lapsed for this image."

// windowDays are the durations the enums name.
var windowDays = map[string]int{
	RescanDays14: 14, RescanDays30: 30, RescanDays60: 60, RescanDays90: 90, RescanDays180: 180,
}

// Windows are the monitoring window settings.
type Windows struct {
	// RescanDuration is the push date duration: one of the DAYS_* values
	// or LIFETIME (never expires).
	RescanDuration string
	// PullDateRescanDuration is the pull date duration (a DAYS_* value);
	// "" when never set, and DefaultPullDateRescanDuration applies.
	PullDateRescanDuration string
	// PullDateRescanMode is LAST_PULL_DATE or LAST_IN_USE_AT (both
	// measured by the last recorded pull); "" when never set.
	PullDateRescanMode string
	// UpdatedAt is when the settings were last changed (zero if never).
	UpdatedAt time.Time
}

// DefaultWindows are the settings of an installation that never set any:
// images are monitored for their lifetime.
func DefaultWindows() Windows { return Windows{RescanDuration: RescanLifetime} }

// Validate reports an invalid setting as a *ValidationError.
func (w Windows) Validate() error {
	if _, ok := windowDays[w.RescanDuration]; !ok && w.RescanDuration != RescanLifetime {
		return invalid("ecrConfiguration.rescanDuration: %q is not one of LIFETIME, DAYS_14, DAYS_30, DAYS_60, DAYS_90, DAYS_180", w.RescanDuration)
	}
	if _, ok := windowDays[w.PullDateRescanDuration]; !ok && w.PullDateRescanDuration != "" {
		return invalid("ecrConfiguration.pullDateRescanDuration: %q is not one of DAYS_14, DAYS_30, DAYS_60, DAYS_90, DAYS_180", w.PullDateRescanDuration)
	}
	switch w.PullDateRescanMode {
	case "", PullModeLastPullDate, PullModeLastInUseAt:
	default:
		return invalid("ecrConfiguration.pullDateRescanMode: %q is not LAST_PULL_DATE or LAST_IN_USE_AT", w.PullDateRescanMode)
	}
	return nil
}

// PushWindow is how long after its push an image stays monitored; false
// for LIFETIME.
func (w Windows) PushWindow() (time.Duration, bool) {
	d, ok := windowDays[w.RescanDuration]
	return time.Duration(d) * 24 * time.Hour, ok
}

// PullWindow is how long after its last pull (its push when never pulled)
// an image stays monitored.
func (w Windows) PullWindow() time.Duration {
	d, ok := windowDays[w.PullDateRescanDuration]
	if !ok {
		d = windowDays[DefaultPullDateRescanDuration]
	}
	return time.Duration(d) * 24 * time.Hour
}

// Windows returns the monitoring window settings (DefaultWindows when
// never set).
func (s *Service) Windows(ctx context.Context) (Windows, error) {
	w := Windows{}
	var updated int64
	err := s.db.QueryRowContext(ctx, `SELECT rescan_duration, pull_date_rescan_duration, pull_date_rescan_mode, updated_at
		FROM scan_windows WHERE id = 1`).Scan(&w.RescanDuration, &w.PullDateRescanDuration, &w.PullDateRescanMode, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultWindows(), nil
	}
	if err != nil {
		return Windows{}, fmt.Errorf("scan: monitoring windows: %w", err)
	}
	w.UpdatedAt = fromMS(updated)
	return w, nil
}

// SetWindows validates and stores the monitoring window settings (all of
// them: a member left empty is stored empty) and returns them as stored.
// The next sweep applies them; images already expired stay expired.
func (s *Service) SetWindows(ctx context.Context, w Windows) (Windows, error) {
	if err := w.Validate(); err != nil {
		return Windows{}, err
	}
	w.UpdatedAt = fromMS(ms(s.opts.Now()))
	if _, err := s.db.ExecContext(ctx, `INSERT INTO scan_windows (id, rescan_duration, pull_date_rescan_duration, pull_date_rescan_mode, updated_at)
		VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET rescan_duration = excluded.rescan_duration,
		pull_date_rescan_duration = excluded.pull_date_rescan_duration, pull_date_rescan_mode = excluded.pull_date_rescan_mode,
		updated_at = excluded.updated_at`,
		w.RescanDuration, w.PullDateRescanDuration, w.PullDateRescanMode, ms(w.UpdatedAt)); err != nil {
		return Windows{}, fmt.Errorf("scan: store monitoring windows: %w", err)
	}
	return w, nil
}

// AdoptWindows stores settings kept elsewhere before (with their own
// UpdatedAt) unless settings were already stored here, and reports
// whether it stored them. It is how an older installation's settings move
// into the scan domain.
func (s *Service) AdoptWindows(ctx context.Context, w Windows) (bool, error) {
	if err := w.Validate(); err != nil {
		return false, err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO scan_windows (id, rescan_duration, pull_date_rescan_duration, pull_date_rescan_mode, updated_at)
		VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		w.RescanDuration, w.PullDateRescanDuration, w.PullDateRescanMode, ms(w.UpdatedAt))
	if err != nil {
		return false, fmt.Errorf("scan: adopt monitoring windows: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("scan: adopt monitoring windows: %w", err)
	}
	return n > 0, nil
}

// SweepResult counts what a sweep changed.
type SweepResult struct {
	// Expired images went to SCAN_ELIGIBILITY_EXPIRED.
	Expired int
	// Revived expired images were pulled since they expired and are
	// queued for a scan.
	Revived int
	// ClosedFindings is how many findings the expired images closed.
	ClosedFindings int
}

// sweepBatch is how many images one sweep transaction handles.
const sweepBatch = 200

// imageJoin joins an image's scan status to its manifest in the
// registry's tables, for its push and last pull times.
const imageJoin = `FROM scan_scans s
	JOIN registry_repositories r ON r.name = s.repository
	JOIN registry_manifests m ON m.repository_id = r.id AND m.digest = s.image_digest`

// SweepWindows enforces the monitoring windows at the service's clock
// (Run calls it every RunOptions.WindowSweep). Under enhanced scanning it
// moves the ACTIVE images outside both windows to
// SCAN_ELIGIBILITY_EXPIRED, closing their findings (reason
// ELIGIBILITY_EXPIRED, one Inspector2 Finding event each), and queues a
// scan of each expired image pulled since it expired.
//
// An image's push date is the later of its manifest's push and the last
// scan started by a push of it (a push of the same digest again leaves
// the manifest's push time alone); its pull date is the registry's last
// recorded pull, or its push date when never pulled.
func (s *Service) SweepWindows(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	cfg, err := s.RegistryScanningConfiguration(ctx)
	if err != nil {
		return res, err
	}
	if cfg.ScanType != Enhanced {
		// Enhanced scanning is off: nothing is monitored, nothing moves.
		return res, nil
	}
	w, err := s.Windows(ctx)
	if err != nil {
		return res, err
	}
	now := s.opts.Now()
	if push, ok := w.PushWindow(); ok {
		if err := s.expire(ctx, ms(now.Add(-push)), ms(now.Add(-w.PullWindow())), now, &res); err != nil {
			return res, err
		}
	}
	if err := s.revive(ctx, cfg, now, &res); err != nil {
		return res, err
	}
	if res.Revived > 0 {
		s.queue.Wake()
	}
	return res, nil
}

type imageRef struct{ repo, digest string }

// expire moves the ACTIVE enhanced images pushed before pushCut and
// pulled (or, never pulled, pushed) before pullCut to
// SCAN_ELIGIBILITY_EXPIRED, a batch per transaction.
func (s *Service) expire(ctx context.Context, pushCut, pullCut int64, now time.Time, res *SweepResult) error {
	after := imageRef{}
	for {
		var batch []imageRef
		expired, closed := 0, 0
		err := s.db.InTx(ctx, func(tx *store.Tx) error {
			batch, expired, closed = batch[:0], 0, 0
			rows, err := tx.QueryContext(ctx, `SELECT s.repository, s.image_digest `+imageJoin+`
				WHERE s.scan_type = ? AND s.status = ? AND (s.repository, s.image_digest) > (?, ?)
				AND m.pushed_at < ? AND s.started_at < ?
				AND ((m.last_pulled_at IS NOT NULL AND m.last_pulled_at < ?)
					OR (m.last_pulled_at IS NULL AND m.pushed_at < ? AND s.started_at < ?))
				ORDER BY s.repository, s.image_digest LIMIT ?`,
				string(Enhanced), StatusActive, after.repo, after.digest,
				pushCut, pushCut, pullCut, pullCut, pullCut, sweepBatch)
			if err != nil {
				return fmt.Errorf("scan: images out of their windows: %w", err)
			}
			batch, err = scanRefs(rows, batch)
			if err != nil {
				return fmt.Errorf("scan: images out of their windows: %w", err)
			}
			// One statement per repository of the batch (per-image
			// statements cost a round trip each on PostgreSQL).
			byRepo := map[string][]string{}
			var repos []string
			for _, im := range batch {
				if byRepo[im.repo] == nil {
					repos = append(repos, im.repo)
				}
				byRepo[im.repo] = append(byRepo[im.repo], im.digest)
			}
			for _, repo := range repos {
				// Another replica's sweep may have got to some first:
				// what this one expired is what the update returns.
				digests, err := expireTx(ctx, tx, repo, byRepo[repo], now)
				if err != nil {
					return err
				}
				byRepo[repo] = digests
				expired += len(digests)
			}
			for _, repo := range repos {
				if len(byRepo[repo]) == 0 {
					continue // closeFindingsTx would close the whole repository's
				}
				n, err := s.closeFindingsTx(ctx, tx, repo, byRepo[repo], ClosedEligibilityExpired, now)
				if err != nil {
					return err
				}
				closed += n
			}
			return nil
		})
		if err != nil {
			return err
		}
		res.Expired += expired
		res.ClosedFindings += closed
		if expired > 0 {
			s.log.Info("scan: images out of their monitoring windows", "images", expired, "findings_closed", closed)
		}
		if len(batch) < sweepBatch {
			return nil
		}
		after = batch[len(batch)-1]
	}
}

// expireTx moves the ACTIVE images among digests of repo to
// SCAN_ELIGIBILITY_EXPIRED, drops their queued re-scans (one would make
// the image ACTIVE again) and returns the digests it moved.
func expireTx(ctx context.Context, tx *store.Tx, repo string, digests []string, now time.Time) ([]string, error) {
	in := store.Placeholders(len(digests))
	args := []any{StatusEligibilityExp, DescEligibilityExpired, ms(now), repo}
	for _, d := range digests {
		args = append(args, d)
	}
	rows, err := tx.QueryContext(ctx, `UPDATE scan_scans SET status = ?, description = ?, expired_at = ?
		WHERE repository = ? AND image_digest IN (`+in+`) AND status = ? RETURNING image_digest`, append(args, StatusActive)...)
	if err != nil {
		return nil, fmt.Errorf("scan: expire images of %s: %w", repo, err)
	}
	var moved []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan: expire images of %s: %w", repo, err)
		}
		moved = append(moved, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan: expire images of %s: %w", repo, err)
	}
	if len(moved) == 0 {
		return nil, nil
	}
	args = []any{jobDone, ms(now), repo, kindScan, jobQueued}
	for _, d := range moved {
		args = append(args, d)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE scan_jobs SET state = ?, updated_at = ? WHERE repository = ? AND kind = ? AND state = ?
		AND image_digest IN (`+store.Placeholders(len(moved))+`)`, args...); err != nil {
		return nil, fmt.Errorf("scan: drop re-scans of %s: %w", repo, err)
	}
	return moved, nil
}

// revive queues a scan of each expired enhanced image pulled since it
// expired, in a repository still scanned. The image's push date is left
// alone: a pull keeps it monitored for the pull date duration only.
func (s *Service) revive(ctx context.Context, cfg Config, now time.Time, res *SweepResult) error {
	after := imageRef{}
	for {
		var batch []imageRef
		revived := 0
		err := s.db.InTx(ctx, func(tx *store.Tx) error {
			revived = 0
			rows, err := tx.QueryContext(ctx, `SELECT s.repository, s.image_digest `+imageJoin+`
				WHERE s.scan_type = ? AND s.status = ? AND (s.repository, s.image_digest) > (?, ?)
				AND m.last_pulled_at > s.expired_at
				ORDER BY s.repository, s.image_digest LIMIT ?`,
				string(Enhanced), StatusEligibilityExp, after.repo, after.digest, sweepBatch)
			if err != nil {
				return fmt.Errorf("scan: expired images pulled again: %w", err)
			}
			batch, err = scanRefs(rows, batch[:0])
			if err != nil {
				return fmt.Errorf("scan: expired images pulled again: %w", err)
			}
			for _, im := range batch {
				freq := cfg.Effective(im.repo, false).ScanFrequency
				if freq == Manual {
					continue
				}
				raw, err := json.Marshal(payload{ScanType: Enhanced, Frequency: freq, Trigger: "pull"})
				if err != nil {
					return err
				}
				r, err := tx.ExecContext(ctx, `UPDATE scan_scans SET status = ?, description = ?
					WHERE repository = ? AND image_digest = ? AND status = ?`,
					StatusPending, descPending, im.repo, im.digest, StatusEligibilityExp)
				if err != nil {
					return fmt.Errorf("scan: revive %s@%s: %w", im.repo, im.digest, err)
				}
				if n, _ := r.RowsAffected(); n == 0 {
					continue
				}
				if _, err := s.queue.EnqueueTx(ctx, tx, NewJob{Repository: im.repo, Digest: im.digest, Kind: kindScan, Payload: string(raw)}); err != nil {
					return err
				}
				revived++
			}
			return nil
		})
		if err != nil {
			return err
		}
		res.Revived += revived
		if revived > 0 {
			s.log.Info("scan: expired images pulled again; scanning them", "images", revived)
		}
		if len(batch) < sweepBatch {
			return nil
		}
		after = batch[len(batch)-1]
	}
}

func scanRefs(rows *sql.Rows, out []imageRef) ([]imageRef, error) {
	defer rows.Close()
	for rows.Next() {
		var im imageRef
		if err := rows.Scan(&im.repo, &im.digest); err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	return out, rows.Err()
}

// windowSweeper returns what Run calls on each round: a sweep when the
// last one is at least every ago (first call included), logging failures.
func (s *Service) windowSweeper(every time.Duration) func(context.Context) {
	if every <= 0 {
		every = time.Minute
	}
	var last time.Time
	return func(ctx context.Context) {
		if !last.IsZero() && time.Since(last) < every {
			return
		}
		last = time.Now()
		if _, err := s.SweepWindows(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("scan: enforce monitoring windows", "err", err)
		}
	}
}
