package scan

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// DetailInspector2Coverage is the detail-type of coverage events.
const DetailInspector2Coverage = "Inspector2 Coverage"

// CoverageStatus is Inspector's scanStatus of a covered resource.
type CoverageStatus struct {
	Reason          string `json:"reason"`
	StatusCodeValue string `json:"statusCodeValue"`
}

// CoverageDetail is the detail of an `Inspector2 Coverage` event
// (contract §11.6), as the scan outbox stores it.
type CoverageDetail struct {
	ScanStatus        CoverageStatus `json:"scanStatus"`
	ScanType          string         `json:"scanType"`
	Provider          string         `json:"provider"`
	ProviderAccountID string         `json:"providerAccountId"`
	ProviderRegion    string         `json:"providerRegion"`
	EventTimestamp    string         `json:"eventTimestamp"`
	Version           string         `json:"version"`
	// ResourceID is the image ARN. It is not part of AWS's detail: the
	// event delivery moves it to the envelope's resources and drops it
	// from the detail.
	ResourceID string `json:"drydockResourceId,omitempty"`
}

// Coverage maps an ECR scan status to Inspector's coverage status of the
// image (what ListCoverage reports).
func Coverage(status string) CoverageStatus {
	switch status {
	case StatusComplete, StatusActive:
		return CoverageStatus{"SUCCESSFUL", "ACTIVE"}
	case StatusPending:
		return CoverageStatus{"PENDING_INITIAL_SCAN", "ACTIVE"}
	case StatusInProgress:
		return CoverageStatus{"SCAN_IN_PROGRESS", "ACTIVE"}
	case StatusUnsupportedImage:
		return CoverageStatus{"UNSUPPORTED_OS", "INACTIVE"}
	case StatusEligibilityExp:
		return CoverageStatus{"SCAN_ELIGIBILITY_EXPIRED", "INACTIVE"}
	}
	// FAILED, FINDINGS_UNAVAILABLE, LIMIT_EXCEEDED.
	return CoverageStatus{"INTERNAL_ERROR", "INACTIVE"}
}

// deletedCoverage is the coverage status announced for a deleted image.
var deletedCoverage = CoverageStatus{"RESOURCE_TERMINATED", "INACTIVE"}

// announced reports whether a scan status is one whose reaching (or
// leaving) is announced: covered (ACTIVE, COMPLETE), expired, unsupported.
// PENDING and IN_PROGRESS are passing states and are never announced.
func announced(status string) bool {
	switch status {
	case StatusActive, StatusComplete, StatusEligibilityExp, StatusUnsupportedImage:
		return true
	}
	return false
}

func (s *Service) imageArn(repo, dg string) string {
	return s.repositoryArn(repo) + "/" + dg
}

func (s *Service) coverageEvent(repo, dg string, st CoverageStatus, now time.Time) event {
	return event{SourceInspector2, DetailInspector2Coverage, CoverageDetail{
		ScanStatus: st, ScanType: "PACKAGE", Provider: "AWS", ProviderAccountID: s.opts.AccountID,
		ProviderRegion: s.opts.Region, EventTimestamp: now.UTC().Format("2006-01-02T15:04:05.000000Z"), Version: "1.0",
		ResourceID: s.imageArn(repo, dg),
	}}
}

//go:embed migrations/coverage/*.sql
var coverageMigrations embed.FS

// migrateCoverage applies the coverage tracker's table (its own domain,
// "scan_coverage", so its numbering is independent of the scan domain's).
func migrateCoverage(ctx context.Context, db *store.DB) error {
	sub, err := fs.Sub(coverageMigrations, "migrations/coverage")
	if err != nil {
		return err
	}
	if err := db.Migrate(ctx, "scan_coverage", sub); err != nil {
		return fmt.Errorf("scan: migrate coverage: %w", err)
	}
	return nil
}

// coverageCursor names the scan_cursors row that serialises coverage
// announcers across replicas; its position is when the next pass is due
// (Unix milliseconds).
const coverageCursor = "coverage"

// CoverageSweep is the shortest interval between two coverage passes of
// the poller (AnnounceCoverage). A pass reads every enhanced image's
// status, so the interval also grows with the time a pass takes: at
// least coverageLoad times that time, to bound the share of the store's
// time the passes use (about 2%) however many images there are.
const CoverageSweep = 2 * time.Second

const coverageLoad = 50

// announceCoverageIfDue runs AnnounceCoverage when the next pass is due
// (for all replicas: they share the schedule). A failed pass is logged
// and tried again at the next poll: it must not hold up the pushes the
// poller handles next. Only the end of ctx is returned.
func (s *Service) announceCoverageIfDue(ctx context.Context) error {
	var due int64
	err := s.db.QueryRowContext(ctx, `SELECT position FROM scan_cursors WHERE name = ?`, coverageCursor).Scan(&due)
	if err == nil || errors.Is(err, sql.ErrNoRows) {
		if s.opts.Now().Before(fromMS(due)) {
			return nil
		}
		_, err = s.announceCoverage(ctx, due)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Error("scan: coverage events", "err", err)
	}
	return nil
}

// AnnounceCoverage writes an `Inspector2 Coverage` event for each image
// under enhanced scanning whose coverage changed since it was last
// announced: when it becomes covered (its first scan stored), and when its
// scan status moves to or from ACTIVE, SCAN_ELIGIBILITY_EXPIRED or
// UNSUPPORTED_IMAGE. It compares scan_scans with the statuses it saw last
// (scan_coverage), so a change made by any code path, in any replica, is
// announced once, in the transaction that records it as announced. The
// push poller calls it when due (CoverageSweep). It returns how many
// events it wrote.
func (s *Service) AnnounceCoverage(ctx context.Context) (int, error) {
	return s.announceCoverage(ctx, -1)
}

// announceCoverage is AnnounceCoverage; with seen >= 0 it does nothing
// when another replica ran a pass since the schedule said seen.
func (s *Service) announceCoverage(ctx context.Context, seen int64) (int, error) {
	now := s.opts.Now()
	n := 0
	began := time.Now()
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		n = 0
		// One announcer at a time (SQLite serialises writers already).
		if _, err := tx.ExecContext(ctx, `INSERT INTO scan_cursors (name, position) VALUES (?, 0) ON CONFLICT (name) DO NOTHING`, coverageCursor); err != nil {
			return fmt.Errorf("scan: coverage lock: %w", err)
		}
		lock := ""
		if tx.Dialect() == store.Postgres {
			lock = " FOR UPDATE"
		}
		var pos int64
		if err := tx.QueryRowContext(ctx, `SELECT position FROM scan_cursors WHERE name = ?`+lock, coverageCursor).Scan(&pos); err != nil {
			return fmt.Errorf("scan: coverage lock: %w", err)
		}
		if seen >= 0 && pos != seen {
			return nil // another replica just ran a pass
		}
		rows, err := tx.QueryContext(ctx, `SELECT s.repository, s.image_digest, s.status, COALESCE(c.scan_status, ''), COALESCE(c.announced, '')
			FROM scan_scans s LEFT JOIN scan_coverage c ON c.repository = s.repository AND c.image_digest = s.image_digest
			WHERE s.scan_type = 'ENHANCED' AND (c.scan_status IS NULL OR c.scan_status <> s.status)`)
		if err != nil {
			return fmt.Errorf("scan: coverage changes: %w", err)
		}
		type change struct{ repo, digest, status, announced string }
		var changes []change
		for rows.Next() {
			var c change
			var seen string
			if err := rows.Scan(&c.repo, &c.digest, &c.status, &seen, &c.announced); err != nil {
				rows.Close()
				return fmt.Errorf("scan: coverage changes: %w", err)
			}
			changes = append(changes, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("scan: coverage changes: %w", err)
		}
		var events []event
		for _, c := range changes {
			last := c.announced
			if announced(c.status) || (last != "" && !transient(c.status)) {
				if cov := Coverage(c.status); last != coverageKey(cov) {
					events = append(events, s.coverageEvent(c.repo, c.digest, cov, now))
					last = coverageKey(cov)
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO scan_coverage (repository, image_digest, scan_status, announced, updated_at)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (repository, image_digest) DO UPDATE SET
				scan_status = excluded.scan_status, announced = excluded.announced, updated_at = excluded.updated_at`,
				c.repo, c.digest, c.status, last, ms(now)); err != nil {
				return fmt.Errorf("scan: record coverage: %w", err)
			}
		}
		n = len(events)
		if err := insertEvents(ctx, tx, s.packer, events, now); err != nil {
			return err
		}
		next := now.Add(max(CoverageSweep, coverageLoad*time.Since(began)))
		if _, err := tx.ExecContext(ctx, `UPDATE scan_cursors SET position = ? WHERE name = ?`, ms(next), coverageCursor); err != nil {
			return fmt.Errorf("scan: coverage cursor: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// transient reports the passing statuses of a scan under way.
func transient(status string) bool { return status == StatusPending || status == StatusInProgress }

// coverageKey is how an announced coverage status is remembered.
func coverageKey(c CoverageStatus) string { return c.StatusCodeValue + "/" + c.Reason }

// coverageDeletedTx announces the deletion of images of repo (all of
// them when digests is empty) that were under enhanced scanning, and
// forgets their coverage. Call it before their scan_scans rows go.
func (s *Service) coverageDeletedTx(ctx context.Context, tx *store.Tx, repo string, digests []string, now time.Time) error {
	where, args := `repository = ?`, []any{repo}
	if len(digests) > 0 {
		where += ` AND image_digest IN (` + store.Placeholders(len(digests)) + `)`
		for _, d := range digests {
			args = append(args, d)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT image_digest FROM scan_scans WHERE scan_type = 'ENHANCED' AND `+where+` ORDER BY image_digest`, args...)
	if err != nil {
		return fmt.Errorf("scan: coverage of deleted images: %w", err)
	}
	var events []event
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return fmt.Errorf("scan: coverage of deleted images: %w", err)
		}
		events = append(events, s.coverageEvent(repo, d, deletedCoverage, now))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scan: coverage of deleted images: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM scan_coverage WHERE `+where, args...); err != nil {
		return fmt.Errorf("scan: forget coverage: %w", err)
	}
	return insertEvents(ctx, tx, s.packer, events, now)
}
