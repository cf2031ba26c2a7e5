package scan

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// Re-indexing: when the running indexer's cataloger set is newer than the
// one a stored inventory was made with (a cataloger's version went up, a
// cataloger was added, or the index format changed), the image is
// re-scanned in the background: its scan job re-indexes it because the
// sets differ, and the new inventory's findings are stored like any scan's
// (opened, updated, closed, each with its event). The work is bounded to a
// rate of images per minute shared by every process on the store.

// triggerReindex is the trigger of a scan job queued by the re-indexer.
const triggerReindex = "reindex"

// DefaultReindexRate is how many images per minute the re-indexer queues
// when RunOptions.ReindexRate is zero: modest, so that a new release does
// not re-read every layer of a large registry at once.
const DefaultReindexRate = 10

// reindexEvery is how often Run looks for inventories to re-index.
const reindexEvery = 15 * time.Second

// reindexCursor names the scan_cursors row that holds the re-indexer's
// rate limit: the theoretical arrival time (Unix ms) of the generic cell
// rate algorithm, shared by the replicas and kept across restarts.
const reindexCursor = "reindex_tat"

// reindexWindow is the burst the rate allows: up to a minute's worth of
// images at once after a quiet minute.
const reindexWindow = time.Minute

// startReindexer runs the re-indexer beside Run's loop until ctx ends and
// returns a function that waits for it to stop. A negative rate disables
// it; zero means DefaultReindexRate.
func (s *Service) startReindexer(ctx context.Context, o RunOptions) (wait func()) {
	rate := o.ReindexRate
	if rate == 0 {
		rate = DefaultReindexRate
	}
	if rate < 0 {
		return func() {}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(reindexEvery)
		defer t.Stop()
		for {
			n, err := s.ReindexStale(ctx, rate)
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Error("scan: re-index images made by older catalogers", "err", err)
			case n > 0:
				s.log.Info("scan: re-indexing images made by older catalogers", "images", n, "rate_per_minute", rate)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return wg.Wait
}

// ReindexStale queues a re-scan (trigger "reindex") of each image whose
// stored inventory was made by an older cataloger set than the running
// indexer's, in every repository where the image is scanned under the
// current scan type: with that type and the repository's effective
// frequency. It takes at most ratePerMinute images per minute across all
// processes sharing the store (a burst of up to ratePerMinute after a
// quiet minute), by the service's clock, and returns how many images it
// queued. Images with a scan already queued or running wait for the next
// call.
func (s *Service) ReindexStale(ctx context.Context, ratePerMinute int) (int, error) {
	if ratePerMinute <= 0 {
		return 0, fmt.Errorf("scan: re-index rate %d: must be positive", ratePerMinute)
	}
	stale, err := s.staleCatalogerSets(ctx)
	if err != nil || len(stale) == 0 {
		return 0, err
	}
	interval := max(reindexWindow.Milliseconds()/int64(ratePerMinute), 1)
	now := ms(s.opts.Now())
	tat, err := s.reindexTAT(ctx, s.db)
	if err != nil {
		return 0, err
	}
	budget := reindexBudget(now, tat, interval)
	if budget == 0 {
		return 0, nil
	}
	cands, err := s.reindexCandidates(ctx, stale, budget)
	if err != nil || len(cands) == 0 {
		return 0, err
	}
	queued := 0
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		queued = 0
		if _, err := tx.ExecContext(ctx, `INSERT INTO scan_cursors (name, position) VALUES (?, 0) ON CONFLICT (name) DO NOTHING`, reindexCursor); err != nil {
			return err
		}
		// Replicas share the budget: hold the row while spending it.
		tat, err := s.reindexTAT(ctx, tx)
		if err != nil {
			return err
		}
		n := min(reindexBudget(now, tat, interval), len(cands))
		for _, c := range cands[:n] {
			added := false
			for _, j := range c.jobs {
				ok, err := s.queue.EnqueueTx(ctx, tx, j)
				if err != nil {
					return err
				}
				added = added || ok
			}
			if added {
				queued++
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE scan_cursors SET position = ? WHERE name = ?`,
			max(tat, now)+int64(queued)*interval, reindexCursor)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("scan: queue re-index scans: %w", err)
	}
	if queued > 0 {
		s.queue.Wake()
	}
	return queued, nil
}

// reindexBudget is how many images the rate allows at now (Unix ms) given
// the theoretical arrival time tat and the interval between images.
func reindexBudget(now, tat, interval int64) int {
	tat = max(tat, now)
	n := (now + reindexWindow.Milliseconds() - tat) / interval
	return int(max(n, 0))
}

// reindexTAT reads the rate limit's state (0 when never set); inside a
// transaction on PostgreSQL it locks the row until the commit.
func (s *Service) reindexTAT(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, error) {
	lock := ""
	if tx, ok := q.(*store.Tx); ok && tx.Dialect() == store.Postgres {
		lock = " FOR UPDATE"
	}
	var tat int64
	err := q.QueryRowContext(ctx, `SELECT position FROM scan_cursors WHERE name = ?`+lock, reindexCursor).Scan(&tat)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("scan: re-index rate: %w", err)
	}
	return tat, nil
}

// staleCatalogerSets returns the stored inventories' cataloger sets older
// than the running indexer's.
func (s *Service) staleCatalogerSets(ctx context.Context) ([]string, error) {
	cur := s.indexer.CatalogerSet()
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT catalogers FROM scan_inventories WHERE catalogers <> ?`, cur)
	if err != nil {
		return nil, fmt.Errorf("scan: cataloger sets of stored inventories: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var set string
		if err := rows.Scan(&set); err != nil {
			return nil, fmt.Errorf("scan: cataloger sets of stored inventories: %w", err)
		}
		if olderCatalogerSet(cur, set) {
			out = append(out, set)
		}
	}
	return out, rows.Err()
}

// olderCatalogerSet reports whether an inventory made with the cataloger
// set stored should be re-indexed by an indexer whose set is current
// (index.Indexer.CatalogerSet: "index:F,name:V,..."). It is, unless the
// two are equal or stored names a cataloger current does not have or a
// version above current's: an inventory made by a newer Drydock (during a
// rolling upgrade) is left alone, so replicas of two versions do not undo
// each other's work. Entries without a version are ignored.
func olderCatalogerSet(current, stored string) bool {
	if current == stored {
		return false
	}
	cur := parseCatalogerSet(current)
	for name, v := range parseCatalogerSet(stored) {
		cv, ok := cur[name]
		if !ok || v > cv {
			return false
		}
	}
	return true
}

func parseCatalogerSet(set string) map[string]int {
	out := map[string]int{}
	for _, part := range strings.Split(set, ",") {
		name, v, ok := strings.Cut(part, ":")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			continue
		}
		out[name] = n
	}
	return out
}

// reindexCandidate is one image to re-index and the scan jobs that do it
// (one per repository holding it).
type reindexCandidate struct {
	digest string
	jobs   []NewJob
}

// reindexCandidates returns up to limit images with an inventory made by
// one of the stale cataloger sets, oldest inventories first, each with the
// re-scan jobs of the repositories where it is scanned under the current
// configuration. Images with a scan queued or running are left out.
func (s *Service) reindexCandidates(ctx context.Context, stale []string, limit int) ([]reindexCandidate, error) {
	cfg, err := s.RegistryScanningConfiguration(ctx)
	if err != nil {
		return nil, err
	}
	args := make([]any, 0, len(stale)+4)
	for _, set := range stale {
		args = append(args, set)
	}
	args = append(args, string(cfg.ScanType), StatusActive, StatusComplete, StatusUnsupportedImage)
	// An image under a status other than these is waiting for a scan
	// (which re-indexes it anyway), failed, or out of its monitoring window.
	rows, err := s.db.QueryContext(ctx, `SELECT i.image_digest, c.repository FROM scan_inventories i
		JOIN scan_scans c ON c.image_digest = i.image_digest
		WHERE i.catalogers IN (`+store.Placeholders(len(stale))+`)
			AND c.scan_type = ? AND c.status IN (?, ?, ?)
			AND NOT EXISTS (SELECT 1 FROM scan_jobs j WHERE j.repository = c.repository AND j.image_digest = c.image_digest
				AND j.kind = 'scan' AND j.state IN ('queued', 'running'))
		ORDER BY i.created_at, i.image_digest, c.repository`, args...)
	if err != nil {
		return nil, fmt.Errorf("scan: images to re-index: %w", err)
	}
	// Keep the in-scope (image, repository) pairs of the first limit
	// images that have any; whether a repository is in scope does not
	// depend on other tables, so out-of-scope images, however many sort
	// first, are skipped while reading.
	type pair struct{ digest, repo string }
	var pairs []pair
	digests := 0
	for rows.Next() {
		var p pair
		if err := rows.Scan(&p.digest, &p.repo); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan: images to re-index: %w", err)
		}
		if cfg.ScanType == Enhanced && cfg.Effective(p.repo, false).ScanFrequency == Manual {
			continue // no longer scanned under enhanced scanning
		}
		if len(pairs) == 0 || pairs[len(pairs)-1].digest != p.digest {
			if digests == limit {
				break
			}
			digests++
		}
		pairs = append(pairs, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan: images to re-index: %w", err)
	}
	var out []reindexCandidate
	onPush := map[string]bool{}
	for _, p := range pairs {
		push, ok := onPush[p.repo]
		if !ok {
			if push, err = s.repoScanOnPush(ctx, cfg, p.repo); err != nil {
				return nil, err
			}
			onPush[p.repo] = push
		}
		eff := cfg.Effective(p.repo, push)
		raw, err := json.Marshal(payload{ScanType: cfg.ScanType, Frequency: eff.ScanFrequency, Trigger: triggerReindex})
		if err != nil {
			return nil, err
		}
		j := NewJob{Repository: p.repo, Digest: p.digest, Kind: kindScan, Payload: string(raw)}
		if len(out) > 0 && out[len(out)-1].digest == p.digest {
			out[len(out)-1].jobs = append(out[len(out)-1].jobs, j)
			continue
		}
		out = append(out, reindexCandidate{digest: p.digest, jobs: []NewJob{j}})
	}
	return out, nil
}
