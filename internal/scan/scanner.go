package scan

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/source"
	"github.com/drydockhq/drydock/internal/match"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// Scan statuses (ECR ScanStatus).
const (
	StatusInProgress       = "IN_PROGRESS"
	StatusComplete         = "COMPLETE"
	StatusFailed           = "FAILED"
	StatusUnsupportedImage = "UNSUPPORTED_IMAGE"
	StatusActive           = "ACTIVE"
	StatusPending          = "PENDING"
	StatusEligibilityExp   = "SCAN_ELIGIBILITY_EXPIRED"
	StatusFindingsUnavail  = "FINDINGS_UNAVAILABLE"
	StatusLimitExceeded    = "LIMIT_EXCEEDED"
)

// Status descriptions.
const (
	descComplete    = "The scan was completed successfully."
	descInProgress  = "The scan is in progress."
	descPending     = "The image is waiting for its first scan."
	descContinuous  = "Continuous scan is selected for image."
	descOnPush      = "Scan on push is selected for image."
	descUnsupported = "UnsupportedImageError: The operating system and/or package manager are not supported."
	descQuota       = "The registry's basic scan quota of 100000 scans per 24 hours is exceeded."
	descNoDatabase  = "Findings are unavailable: the vulnerability database holds no advisories yet (drydock db update or db import)."
)

// LimitExceededMessage is ECR's message for ErrLimitExceeded.
const LimitExceededMessage = "The scan quota per image has been exceeded. Wait and try again."

// Job kind of a scan.
const kindScan = "scan"

// Basic scanning limits.
const (
	ImageScanWindow = 24 * time.Hour
	RegistryQuota   = 100_000
)

// Errors of the API.
var (
	// ErrLimitExceeded: the image was scanned in the last 24 hours, or the
	// registry used its daily quota (ECR LimitExceededException).
	ErrLimitExceeded = errors.New("scan: the scan quota per image has been exceeded")
	// ErrScanNotFound: the image was never scanned (ScanNotFoundException).
	ErrScanNotFound = errors.New("scan: no scan found for the image")
	// ErrImageNotFound: no such image in the repository.
	ErrImageNotFound = errors.New("scan: image not found")
	// ErrUnsupportedImage: not an image that can be scanned (an index or an
	// artifact); UnsupportedImageTypeException.
	ErrUnsupportedImage = errors.New("scan: the image type is not supported for scanning")
)

// payload is a scan job's parameters.
type payload struct {
	ScanType  ScanType  `json:"scanType"`
	Frequency Frequency `json:"frequency"`
	Trigger   string    `json:"trigger"`
	Tags      []string  `json:"tags,omitempty"`
	// Replaces are the images the push moved tags away from.
	Replaces []string `json:"replaces,omitempty"`
}

// Status is an image's scan status.
type Status struct {
	Repository  string
	Digest      string
	ScanType    ScanType
	Status      string
	Description string
	StartedAt   time.Time
	CompletedAt time.Time
	// VulnerabilitySourceUpdatedAt is when the vulnerability database the
	// scan used was generated.
	VulnerabilitySourceUpdatedAt time.Time
	Platform                     string
}

var imageManifestTypes = map[string]bool{
	"application/vnd.oci.image.manifest.v1+json":                true,
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.v1+prettyjws": false,
}

var imageConfigTypes = map[string]bool{
	"application/vnd.oci.image.config.v1+json":       true,
	"application/vnd.docker.container.image.v1+json": true,
	"": true, // docker manifests record no artifact type
}

// scannable reports whether a pushed manifest is an image to scan:
// platform images are; indexes are not (their platform manifests are
// pushed, and scanned, on their own), nor are artifacts.
func scannable(mediaType, artifactType string) bool {
	return imageManifestTypes[mediaType] && imageConfigTypes[artifactType]
}

// startTx records that a scan of (repo, digest) starts and queues its job,
// inside tx. It returns ErrLimitExceeded for a basic scan inside the
// image's 24-hour window or past the registry's quota.
func (s *Service) startTx(ctx context.Context, tx *store.Tx, repo, dg string, p payload, now time.Time) error {
	var started int64
	var typ string
	err := tx.QueryRowContext(ctx, `SELECT started_at, scan_type FROM scan_scans WHERE repository = ? AND image_digest = ?`, repo, dg).Scan(&started, &typ)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("scan: status of %s@%s: %w", repo, dg, err)
	case ScanType(typ) == p.ScanType && now.Sub(fromMS(started)) < ImageScanWindow:
		return ErrLimitExceeded
	}
	status, desc := StatusInProgress, descInProgress
	if p.ScanType == Basic {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM scan_starts WHERE started_at > ?`, ms(now.Add(-ImageScanWindow))).Scan(&n); err != nil {
			return fmt.Errorf("scan: registry quota: %w", err)
		}
		if n >= RegistryQuota {
			if p.Trigger == "push" {
				// Nobody is there to be told: the image shows why it
				// was not scanned.
				if err := s.recordStatusTx(ctx, tx, repo, dg, p.ScanType, StatusLimitExceeded, descQuota, now); err != nil {
					return err
				}
			}
			return ErrLimitExceeded
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO scan_starts (repository, image_digest, started_at) VALUES (?, ?, ?)`, repo, dg, ms(now)); err != nil {
			return fmt.Errorf("scan: record scan start: %w", err)
		}
	} else {
		status, desc = StatusPending, descPending
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO scan_scans (repository, image_digest, scan_type, status, description, started_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (repository, image_digest) DO UPDATE SET
		scan_type = excluded.scan_type, status = excluded.status, description = excluded.description, started_at = excluded.started_at`,
		repo, dg, string(p.ScanType), status, desc, ms(now)); err != nil {
		return fmt.Errorf("scan: record scan of %s@%s: %w", repo, dg, err)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = s.queue.EnqueueTx(ctx, tx, NewJob{Repository: repo, Digest: dg, Kind: kindScan, Payload: string(raw)})
	return err
}

// recordStatusTx records a scan status without a scan (a push the quota
// refused, findings that cannot be made).
func (s *Service) recordStatusTx(ctx context.Context, tx *store.Tx, repo, dg string, typ ScanType, status, desc string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO scan_scans (repository, image_digest, scan_type, status, description, started_at, completed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository, image_digest) DO UPDATE SET
		scan_type = excluded.scan_type, status = excluded.status, description = excluded.description,
		started_at = excluded.started_at, completed_at = excluded.completed_at`,
		repo, dg, string(typ), status, desc, ms(now), ms(now)); err != nil {
		return fmt.Errorf("scan: record status of %s@%s: %w", repo, dg, err)
	}
	return nil
}

// StartImageScan starts a basic scan of an image (ECR StartImageScan). It
// returns ErrNotSupported under enhanced scanning, ErrLimitExceeded inside
// the image's 24-hour window (an answer that repeats unchanged when the
// client retries it), ErrImageNotFound and ErrUnsupportedImage.
func (s *Service) StartImageScan(ctx context.Context, repo, dg string) (Status, error) {
	cfg, err := s.RegistryScanningConfiguration(ctx)
	if err != nil {
		return Status{}, err
	}
	if cfg.ScanType != Basic {
		return Status{}, ErrNotSupported
	}
	m, err := s.reg.Manifest(ctx, repo, dg, false, false)
	if errors.Is(err, store.ErrManifestNotFound) || errors.Is(err, store.ErrRepositoryNotFound) {
		return Status{}, ErrImageNotFound
	}
	if err != nil {
		return Status{}, fmt.Errorf("scan: image %s@%s: %w", repo, dg, err)
	}
	if !imageManifestTypes[m.MediaType] {
		return Status{}, ErrUnsupportedImage
	}
	now := s.opts.Now()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		return s.startTx(ctx, tx, repo, dg, payload{ScanType: Basic, Frequency: Manual, Trigger: "manual"}, now)
	})
	if err != nil {
		return Status{}, err
	}
	s.queue.Wake()
	return Status{Repository: repo, Digest: dg, ScanType: Basic, Status: StatusInProgress, Description: descInProgress, StartedAt: fromMS(ms(now))}, nil
}

// ScanStatus returns the status of an image's last scan, or
// ErrScanNotFound.
func (s *Service) ScanStatus(ctx context.Context, repo, dg string) (Status, error) {
	st := Status{Repository: repo, Digest: dg}
	var typ string
	var started, completed, vsu int64
	err := s.db.QueryRowContext(ctx, `SELECT scan_type, status, description, started_at, completed_at, vuln_source_updated_at, platform
		FROM scan_scans WHERE repository = ? AND image_digest = ?`, repo, dg).Scan(&typ, &st.Status, &st.Description, &started, &completed, &vsu, &st.Platform)
	if errors.Is(err, sql.ErrNoRows) {
		return Status{}, ErrScanNotFound
	}
	if err != nil {
		return Status{}, fmt.Errorf("scan: status of %s@%s: %w", repo, dg, err)
	}
	st.ScanType, st.StartedAt, st.CompletedAt, st.VulnerabilitySourceUpdatedAt = ScanType(typ), fromMS(started), fromMS(completed), fromMS(vsu)
	return st, nil
}

// blobs reads an image's blobs: layers and configs from the blob store,
// manifests from the registry's metadata where they are kept.
func (s *Service) blobs(repo string) source.BlobFunc {
	return func(ctx context.Context, d string) (io.ReadCloser, error) {
		dg, err := digest.Parse(d)
		if err != nil {
			return nil, fmt.Errorf("blob digest %q: %w", d, err)
		}
		if s.opts.Blobs != nil {
			r, err := s.opts.Blobs.Open(ctx, dg)
			if err == nil {
				return r, nil
			}
			if !errors.Is(err, blob.ErrNotFound) {
				return nil, err
			}
		}
		m, err := s.reg.Manifest(ctx, repo, d, false, true)
		if err != nil {
			return nil, fmt.Errorf("%s@%s: %w", repo, d, err)
		}
		return io.NopCloser(strings.NewReader(string(m.Content))), nil
	}
}

// inventory returns the image's inventory, from the store when it was made
// before with the same catalogers, else by indexing its layers.
func (s *Service) inventory(ctx context.Context, repo, dg string) (*index.Inventory, error) {
	set := s.indexer.CatalogerSet()
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT inventory FROM scan_inventories WHERE image_digest = ? AND catalogers = ?`, dg, set).Scan(&raw)
	if err == nil {
		var inv index.Inventory
		if err := json.Unmarshal([]byte(raw), &inv); err == nil {
			return &inv, nil
		}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("scan: stored inventory: %w", err)
	}
	images, err := source.FromBlobs(ctx, repo+"@"+dg, s.blobs(repo), dg, source.Options{})
	if err != nil {
		return nil, &permanentError{fmt.Errorf("read image %s@%s: %w", repo, dg, err)}
	}
	if len(images) != 1 {
		return nil, &permanentError{fmt.Errorf("%s@%s holds %d platform images; each is scanned by its own digest", repo, dg, len(images))}
	}
	inv, err := s.indexer.Index(ctx, images[0])
	if err != nil {
		return nil, fmt.Errorf("index %s@%s: %w", repo, dg, err)
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		return storeInventoryTx(ctx, tx, dg, set, inv, s.opts.Now())
	})
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// permanentError is a failure no retry can fix (an image that cannot be
// read as one).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// matcherCache keeps one matcher per database generation, with the time
// the generation was made.
type matcherCache struct {
	mu      sync.Mutex
	gen     int64
	m       *match.Matcher
	created time.Time
}

func (c *matcherCache) get(snap *vulndb.Snapshot) *match.Matcher {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.m == nil || c.gen > snap.Generation():
		c.m, c.gen, c.created = match.New(snap), snap.Generation(), time.Time{}
	case c.gen < snap.Generation():
		// Keeps the parsed entries of the keys the new generation left
		// alone: re-evaluation after an update parses only what changed.
		c.m, c.gen, c.created = c.m.Next(snap), snap.Generation(), time.Time{}
	}
	return c.m
}

// sourceUpdatedAt is when the snapshot's generation was made (read once
// per generation).
func (s *Service) sourceUpdatedAt(ctx context.Context, snap *vulndb.Snapshot) time.Time {
	c := &s.matchers
	c.mu.Lock()
	if c.gen == snap.Generation() && !c.created.IsZero() {
		t := c.created
		c.mu.Unlock()
		return t
	}
	c.mu.Unlock()
	var created int64
	if err := s.db.QueryRowContext(ctx, `SELECT created_at FROM vulndb_generations WHERE id = ?`, snap.Generation()).Scan(&created); err != nil {
		return s.opts.Now()
	}
	t := fromMS(created)
	c.mu.Lock()
	if c.gen == snap.Generation() {
		c.created = t
	}
	c.mu.Unlock()
	return t
}

// handle runs one scan job.
func (s *Service) handle(ctx context.Context, j *Job) error {
	if j.Kind == kindReeval {
		return s.runReevaluation(ctx, j)
	}
	if j.Kind != kindScan {
		return &permanentError{fmt.Errorf("unknown job kind %q", j.Kind)}
	}
	var p payload
	if err := json.Unmarshal([]byte(j.Payload), &p); err != nil {
		return &permanentError{fmt.Errorf("job payload: %w", err)}
	}
	err := s.scan(ctx, j, p)
	if err != nil && ctx.Err() != nil {
		// Shutting down or the lease was lost: not the scan's fault.
		return err
	}
	var perm *permanentError
	if err != nil && (errors.As(err, &perm) || j.Attempts >= j.MaxAttempts) {
		// Last word: record the failure with the job, so the image shows
		// FAILED instead of staying in progress.
		ferr := s.finish(ctx, j, StatusFailed, "Scan failed: "+err.Error())
		if ferr == nil {
			s.log.Warn("scan failed", "repository", j.Repository, "digest", j.Digest, "err", err)
			return nil
		}
		return errors.Join(err, ferr)
	}
	return err
}

// jobDied records FAILED for an image whose scan job died because its
// worker vanished on every attempt.
func (s *Service) jobDied(ctx context.Context, j Job) {
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		return s.setStatus(ctx, tx, j.Repository, j.Digest, StatusFailed,
			fmt.Sprintf("Scan failed: the scan did not finish in %d attempts", j.Attempts))
	})
	if err != nil && ctx.Err() == nil {
		s.log.Error("scan: record failed scan", "repository", j.Repository, "digest", j.Digest, "err", err)
	}
}

// finish records a status for the job's image and completes the job, in
// one transaction: the scan ends without findings to store.
func (s *Service) finish(ctx context.Context, j *Job, status, desc string) error {
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := s.setStatus(ctx, tx, j.Repository, j.Digest, status, desc); err != nil {
			return err
		}
		return s.queue.CompleteTx(ctx, tx, j)
	})
	if err == nil {
		j.MarkFinished()
	}
	return err
}

func (s *Service) setStatus(ctx context.Context, tx *store.Tx, repo, dg, status, desc string) error {
	_, err := tx.ExecContext(ctx, `UPDATE scan_scans SET status = ?, description = ?, completed_at = ? WHERE repository = ? AND image_digest = ?`,
		status, desc, ms(s.opts.Now()), repo, dg)
	if err != nil {
		return fmt.Errorf("scan: set status of %s@%s: %w", repo, dg, err)
	}
	return nil
}

// scan indexes (or loads the inventory of) the image, matches it against
// the current database and stores the scan, its findings and its events
// with the job's completion in one transaction.
func (s *Service) scan(ctx context.Context, j *Job, p payload) error {
	repo, dg := j.Repository, j.Digest
	inv, err := s.inventory(ctx, repo, dg)
	if err != nil {
		return err
	}
	enhanced := p.ScanType == Enhanced
	pkgs := inv.Packages
	if !enhanced {
		pkgs = make([]index.Package, 0, len(inv.Packages))
		for _, pk := range inv.Packages {
			if pk.Type.IsOS() {
				pkgs = append(pkgs, pk)
			}
		}
	}
	now := s.opts.Now()
	if inv.OS == nil && (!enhanced || len(pkgs) == 0) {
		return s.finish(ctx, j, StatusUnsupportedImage, descUnsupported)
	}
	if s.opts.Vulns == nil || s.opts.Vulns.Snapshot().Generation() == 0 {
		// No advisory was ever loaded: an empty result would read as
		// "no vulnerabilities". The image waits for the database (a new
		// generation re-evaluates continuous images; others are scanned
		// again on push or on request).
		return s.finish(ctx, j, StatusFindingsUnavail, descNoDatabase)
	}
	snap := s.opts.Vulns.Snapshot()
	res, err := s.matchers.get(snap).Match(ctx, pkgs)
	if err != nil {
		return fmt.Errorf("match %s@%s: %w", repo, dg, err)
	}
	findings := make([]Finding, 0, len(res.Findings))
	seen := map[string]bool{}
	for i := range res.Findings {
		f := s.buildFinding(snap, repo, dg, inv, &res.Findings[i], enhanced)
		if seen[f.key] {
			continue
		}
		seen[f.key] = true
		findings = append(findings, f)
	}
	vsu := s.sourceUpdatedAt(ctx, snap)
	status, desc := StatusComplete, descComplete
	if enhanced {
		status, desc = StatusActive, descContinuous
		if p.Frequency == ScanOnPush {
			desc = descOnPush
		}
	}
	platform := ""
	if inv.OS != nil {
		platform = platformName(inv)
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE scan_scans SET status = ?, description = ?, completed_at = ?, vuln_source_updated_at = ?,
			generation = ?, platform = ? WHERE repository = ? AND image_digest = ?`,
			status, desc, ms(now), ms(vsu), snap.Generation(), platform, repo, dg)
		if err != nil {
			return fmt.Errorf("scan: store scan: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// The status row went away (repository deleted): nothing to store.
			return s.queue.CompleteTx(ctx, tx, j)
		}
		created, closed, err := storeFindings(ctx, tx, repo, dg, findings, now)
		if err != nil {
			return err
		}
		// After storeFindings: the findings it closed were last observed
		// at the evaluation before this one.
		if _, err := tx.ExecContext(ctx, `UPDATE scan_scans SET evaluated_at = ? WHERE repository = ? AND image_digest = ?`, ms(now), repo, dg); err != nil {
			return fmt.Errorf("scan: store scan: %w", err)
		}
		if err := s.supersedeTx(ctx, tx, repo, p, findings, now); err != nil {
			return err
		}
		if err := s.scanEvents(ctx, tx, repo, dg, p, findings, created, closed, now); err != nil {
			return err
		}
		if err := s.meterScanTx(ctx, tx, repo, p, now); err != nil {
			return err
		}
		return s.queue.CompleteTx(ctx, tx, j)
	})
	if err != nil {
		return err
	}
	j.MarkFinished()
	if enhanced && p.Frequency == ContinuousScan && s.opts.Vulns.Snapshot().Generation() > snap.Generation() {
		// A generation landed while this scan matched: re-evaluation may
		// have passed this image by (it was not ACTIVE yet), so match it
		// again.
		raw, err := json.Marshal(payload{ScanType: Enhanced, Frequency: p.Frequency, Trigger: "rescan", Tags: p.Tags})
		if err == nil {
			_, err = s.queue.Enqueue(ctx, NewJob{Repository: repo, Digest: dg, Kind: kindScan, Payload: string(raw)})
		}
		if err != nil {
			s.log.Warn("scan: queue re-scan after a database update", "repository", repo, "digest", dg, "err", err)
		}
	}
	return nil
}

// storeFindings upserts the scan's findings (keeping firstObservedAt and a
// SUPPRESSED status, reopening CLOSED ones), closes the image's findings
// this scan did not see, and returns the keys of findings new to the image
// and the findings it closed.
func storeFindings(ctx context.Context, tx *store.Tx, repo, dg string, fs []Finding, now time.Time) (created map[string]bool, closed []Finding, err error) {
	// existing: the image's findings this scan does not open (a closed one
	// it sees again reopens, and is announced like a new one).
	existing := map[string]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT finding_key FROM scan_findings WHERE repository = ? AND image_digest = ?
		AND NOT `+reopens, repo, dg)
	if err != nil {
		return nil, nil, fmt.Errorf("scan: existing findings: %w", err)
	}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("scan: existing findings: %w", err)
		}
		existing[k] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("scan: existing findings: %w", err)
	}
	created = map[string]bool{}
	for i := range fs {
		if !existing[fs[i].key] {
			created[fs[i].key] = true
		}
	}
	if err := upsertFindingsTx(ctx, tx, fs, nil, now, "", nil); err != nil {
		return nil, nil, err
	}
	t := ms(now)
	closed, err = changeFindingsTx(ctx, tx, FindingClosed, ClosedNotObserved, now, `UPDATE scan_findings SET status = 'CLOSED', updated_at = ?, closed_at = ?, closed_reason = ?,
		last_observed_at = `+lastObservedSQL+`
		WHERE repository = ? AND image_digest = ? AND status <> 'CLOSED' AND last_observed_at < ?
		RETURNING finding, first_observed_at, last_observed_at`, t, t, string(ClosedNotObserved), repo, dg, t)
	if err != nil {
		return nil, nil, fmt.Errorf("scan: close findings: %w", err)
	}
	return created, closed, nil
}
