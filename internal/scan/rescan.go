package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/drydockhq/drydock/internal/store"
)

// RescanContinuous queues a re-scan of every image under continuous
// scanning (enhanced, ACTIVE, in a repository whose effective frequency is
// CONTINUOUS_SCAN). A re-scan matches the whole stored inventory against
// the current database: no layer is read again. Re-evaluation falls back
// to it when a generation's change sets are gone. It returns how many
// re-scans it queued.
func (s *Service) RescanContinuous(ctx context.Context) (int, error) {
	return s.rescanContinuous(ctx, math.MaxInt64)
}

// rescanContinuous queues a re-scan of the images under continuous
// scanning whose last evaluation used a generation before gen.
func (s *Service) rescanContinuous(ctx context.Context, gen int64) (int, error) {
	cfg, err := s.RegistryScanningConfiguration(ctx)
	if err != nil {
		return 0, err
	}
	if cfg.ScanType != Enhanced {
		return 0, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT repository, image_digest FROM scan_scans
		WHERE scan_type = 'ENHANCED' AND status = ? AND generation < ?`, StatusActive, gen)
	if err != nil {
		return 0, fmt.Errorf("scan: images under continuous scanning: %w", err)
	}
	type image struct{ repo, digest string }
	var images []image
	for rows.Next() {
		var im image
		if err := rows.Scan(&im.repo, &im.digest); err != nil {
			rows.Close()
			return 0, fmt.Errorf("scan: images under continuous scanning: %w", err)
		}
		images = append(images, im)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	raw, err := json.Marshal(payload{ScanType: Enhanced, Frequency: ContinuousScan, Trigger: "rescan"})
	if err != nil {
		return 0, err
	}
	var jobs []NewJob
	for _, im := range images {
		if cfg.Effective(im.repo, false).ScanFrequency == ContinuousScan {
			jobs = append(jobs, NewJob{Repository: im.repo, Digest: im.digest, Kind: kindScan, Payload: string(raw)})
		}
	}
	return s.enqueueScans(ctx, jobs)
}

// enqueueScans queues the jobs in one transaction, wakes the workers when
// any was added, and returns how many were (a job already queued for the
// same image is not added again).
func (s *Service) enqueueScans(ctx context.Context, jobs []NewJob) (int, error) {
	if len(jobs) == 0 {
		return 0, nil
	}
	queued := 0
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		queued = 0
		for _, j := range jobs {
			added, err := s.queue.EnqueueTx(ctx, tx, j)
			if err != nil {
				return err
			}
			if added {
				queued++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if queued > 0 {
		s.queue.Wake()
	}
	return queued, nil
}
