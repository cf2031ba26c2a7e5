package scan

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// Continuous re-evaluation applies each vulnerability-database generation
// to the stored findings of the images it touches. A generation's change
// set names the (ecosystem, package) keys its advisories were and are
// about; the inverted package index (scan_package_keys) resolves them to
// the images whose inventories hold such a package, and only those
// packages of only those images are matched again, from the stored
// inventory: no layer is read, and the images the change does not touch
// are never loaded. Findings of the re-matched packages are opened,
// updated or closed against what is stored, each change with an
// Inspector2 Finding event.
//
// The work runs as one durable job (kind reeval) from the scan queue: a
// process killed midway leaves its lease to expire and the job runs again.
// Each batch of images commits on its own and the re-evaluation is a diff
// against the stored findings, so a second run of a batch changes nothing
// and announces nothing twice. The cursor (the last generation applied)
// moves when every batch is done.

const (
	kindReeval   = "reeval"
	reevalCursor = "reeval_generation"
	// reevalBatch is how many (repository, image) pairs one transaction
	// re-evaluates.
	reevalBatch = 512
	// keyBatch is how many keys one index lookup names (2 parameters each).
	keyBatch = 250
)

// ReevalStats describe one re-evaluation.
type ReevalStats struct {
	// From and To are the generations applied: those after From up to To.
	From, To int64
	// Changes counts the advisory changes in those generations, Keys the
	// package keys they touch (enrichment changes included).
	Changes, Keys int
	// Images counts the images whose inventories hold a touched key;
	// Evaluated the (repository, image) pairs among them in continuous
	// scope, which were re-matched.
	Images, Evaluated int
	// Opened, Updated and Closed count the finding changes.
	Opened, Updated, Closed int
	// Candidates counts the stored findings the changes may have changed
	// (per image, each changed advisory of a touched package's keys with
	// the package); LookedUp those looked up, of the advisories that
	// findings were ever stored for.
	Candidates, LookedUp int
	// Rescans counts the full re-scans queued instead: images whose last
	// evaluation predates the change sets (or all of them, when the change
	// sets are gone).
	Rescans  int
	Duration time.Duration
}

// QueueReevaluation queues the re-evaluation job unless one is already
// queued or running.
func (s *Service) QueueReevaluation(ctx context.Context) error {
	added, err := s.queue.Enqueue(ctx, NewJob{Kind: kindReeval})
	if err != nil {
		return fmt.Errorf("scan: queue re-evaluation: %w", err)
	}
	if added {
		s.log.Debug("scan: re-evaluation queued")
	}
	return nil
}

// ReevaluationCursor returns the last database generation re-evaluation
// applied (false when it never ran).
func (s *Service) ReevaluationCursor(ctx context.Context) (int64, bool, error) {
	var pos int64
	err := s.db.QueryRowContext(ctx, `SELECT position FROM scan_cursors WHERE name = ?`, reevalCursor).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("scan: re-evaluation cursor: %w", err)
	}
	return pos, true, nil
}

func setCursorTx(ctx context.Context, tx *store.Tx, name string, pos int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO scan_cursors (name, position) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position`, name, pos)
	if err != nil {
		return fmt.Errorf("scan: cursor %s: %w", name, err)
	}
	return nil
}

// reevalTarget is one (repository, image) pair to re-match and what the
// change touches in the image.
type reevalTarget struct {
	repo, digest string
	touchedImage
}

// touchedImage is what a change touches in one image: the packages to
// match again, and the keys of the findings they may have changed, each
// changed advisory of a package's lookup keys with the package identity.
// A finding of an advisory the change left alone (its data and its CVE's
// enrichment unchanged) matches again as it is stored, so re-evaluation
// neither reads nor compares it.
type touchedImage struct {
	pkgs []index.Package
	keys []string
}

// Reevaluate applies every generation of the vulnerability index beyond
// the cursor to the stored findings of the images in continuous scope,
// and moves the cursor. The job runs it; tests and tools may call it
// directly. It does not refresh the index: the caller does.
func (s *Service) Reevaluate(ctx context.Context) (ReevalStats, error) {
	start := time.Now()
	var st ReevalStats
	if s.opts.Vulns == nil {
		return st, nil
	}
	snap := s.opts.Vulns.Snapshot()
	target := snap.Generation()
	if target > 0 {
		n, err := s.scanUnavailable(ctx)
		if err != nil {
			return st, err
		}
		st.Rescans += n
	}
	cursor, ok, err := s.ReevaluationCursor(ctx)
	if err != nil {
		return st, err
	}
	st.From, st.To = cursor, target
	if !ok {
		// First run: findings were made by scans, each at its own
		// generation; those behind get a full re-scan.
		n, err := s.rescanContinuous(ctx, target)
		if err != nil {
			return st, err
		}
		st.From, st.Rescans = target, st.Rescans+n
		err = s.db.InTx(ctx, func(tx *store.Tx) error { return setCursorTx(ctx, tx, reevalCursor, target) })
		st.Duration = time.Since(start)
		return st, err
	}
	if cursor >= target {
		return st, nil
	}
	if _, err := s.backfillPackageIndex(ctx); err != nil {
		return st, err
	}
	sets, err := s.opts.Vulns.DB().ChangeSetsSince(ctx, cursor)
	if err != nil {
		return st, fmt.Errorf("scan: change sets since %d: %w", cursor, err)
	}
	sets = slices.DeleteFunc(sets, func(cs *vulndb.ChangeSet) bool { return cs.Generation > target })
	if len(sets) == 0 || sets[0].Generation != cursor+1 || sets[len(sets)-1].Generation != target {
		// The change sets are gone (pruned, or the database was replaced):
		// re-scan every image in continuous scope from its inventory.
		n, err := s.RescanContinuous(ctx)
		if err != nil {
			return st, err
		}
		st.Rescans += n
		err = s.db.InTx(ctx, func(tx *store.Tx) error { return setCursorTx(ctx, tx, reevalCursor, target) })
		st.Duration = time.Since(start)
		return st, err
	}
	keys, advisories, reasons := changedKeys(snap, sets)
	for _, cs := range sets {
		st.Changes += len(cs.Changes)
	}
	st.Keys = len(keys)
	cfg, err := s.RegistryScanningConfiguration(ctx)
	if err != nil {
		return st, err
	}
	if cfg.ScanType == Enhanced && len(keys) > 0 {
		if err := s.reevaluateKeys(ctx, snap, cfg, keys, advisories, reasons, &st); err != nil {
			return st, err
		}
	}
	// Every image in continuous scope is now evaluated against target:
	// the ones the change set touched were re-matched, the others have no
	// package it could change. Images behind the cursor (a scan that
	// matched an older generation and finished after the last run) get a
	// full re-scan.
	n, err := s.rescanContinuous(ctx, cursor)
	if err != nil {
		return st, err
	}
	st.Rescans += n
	repos, err := s.continuousRepositories(ctx, cfg)
	if err != nil {
		return st, err
	}
	vsu := s.sourceUpdatedAt(ctx, snap)
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		for start := 0; start < len(repos); start += keyBatch {
			rs := repos[start:min(start+keyBatch, len(repos))]
			args := []any{target, ms(vsu), StatusActive, cursor, target}
			for _, r := range rs {
				args = append(args, r)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE scan_scans SET generation = ?, vuln_source_updated_at = ?
				WHERE scan_type = 'ENHANCED' AND status = ? AND generation >= ? AND generation < ?
				AND repository IN (`+store.Placeholders(len(rs))+`)`, args...); err != nil {
				return fmt.Errorf("scan: record re-evaluated generation: %w", err)
			}
		}
		return setCursorTx(ctx, tx, reevalCursor, target)
	})
	st.Duration = time.Since(start)
	return st, err
}

// changedKeys returns the package keys the change sets touch (the keys of
// advisories whose enrichment changed included), per key the ids of the
// changed advisories that name it, and, per advisory id, why a finding of
// it that no longer matches closes.
func changedKeys(snap *vulndb.Snapshot, sets []*vulndb.ChangeSet) ([]vulndb.Key, map[vulndb.Key][]string, map[string]CloseReason) {
	advisories := map[vulndb.Key][]string{}
	var keys []vulndb.Key
	add := func(k vulndb.Key, id string) {
		ids, seen := advisories[k]
		if !seen {
			keys = append(keys, k)
		}
		if !slices.Contains(ids, id) {
			advisories[k] = append(ids, id)
		}
	}
	reasons := map[string]CloseReason{}
	var cves []string
	for _, cs := range sets {
		for _, ch := range cs.Changes {
			for _, k := range ch.Keys {
				add(k, ch.ID)
			}
			switch ch.Kind {
			case vulndb.Withdrawn, vulndb.Removed:
				reasons[ch.ID] = ClosedAdvisoryWithdrawn
			default:
				delete(reasons, ch.ID) // reinstated or changed again
			}
		}
		cves = append(cves, cs.CVEs...)
	}
	for _, a := range snap.AdvisoriesAbout(cves) {
		for _, k := range a.Keys() {
			add(k, a.ID)
		}
	}
	return keys, advisories, reasons
}

// reevaluateKeys re-matches, in batches, the packages under keys of the
// images in continuous scope that hold them.
func (s *Service) reevaluateKeys(ctx context.Context, snap *vulndb.Snapshot, cfg Config, keys []vulndb.Key, advisories map[vulndb.Key][]string, reasons map[string]CloseReason, st *ReevalStats) error {
	touched, err := s.touchedPackages(ctx, keys, advisories)
	if err != nil {
		return err
	}
	st.Images = len(touched)
	digests := make([]string, 0, len(touched))
	for d := range touched {
		digests = append(digests, d)
	}
	slices.Sort(digests)
	// The first batches ramp up to full size, so that writing starts
	// after matching a quarter batch rather than a whole one: each is
	// matched while the one before, half its size, is written.
	size, next := reevalBatch, reevalBatch/4
	if s.reevalBatch > 0 {
		size, next = s.reevalBatch, s.reevalBatch
	}
	// A producer prepares batch after batch (scope, facts, matching: reads
	// and CPU) while this goroutine writes the previous one: the writes
	// are serial, the rest overlaps them.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan preparedBatch, 1)
	go func() {
		defer close(batches)
		for startIdx, n := 0, next; startIdx < len(digests); startIdx, n = startIdx+n, min(2*n, size) {
			batch := digests[startIdx:min(startIdx+n, len(digests))]
			pb := s.prepareBatch(ctx, snap, cfg, batch, touched)
			select {
			case batches <- pb:
			case <-ctx.Done():
				return
			}
			if pb.err != nil {
				return
			}
		}
	}()
	// The run's name in scan_finding_advisories: stored findings of an
	// advisory only this run stored findings of are all of images of its
	// earlier batches, and need no lookup in later ones.
	run := "reeval:" + rand.Text()
	// The writes take one connection for all batches (see store.Conn). Its
	// commits need not wait for the disk: a batch a crash undoes is done
	// again by the job's next run, and the cursor moves, durably, only
	// after the last batch.
	wc, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer wc.Close()
	if err := wc.RelaxDurability(ctx); err != nil {
		return err
	}
	n := 0
	for pb := range batches {
		if pb.err != nil {
			return pb.err
		}
		if len(pb.targets) == 0 {
			continue
		}
		st.Evaluated += len(pb.targets)
		if err := s.applyBatch(ctx, wc, snap, pb, reasons, run, st); err != nil {
			return err
		}
		n++
		if s.reevalHook != nil {
			if err := s.reevalHook(n); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// preparedBatch is one batch of re-evaluation ready to write: the pairs in
// scope and their re-matched findings.
type preparedBatch struct {
	targets []reevalTarget
	results []evaluated
	// now is the time the batch's changes are recorded at.
	now time.Time
	err error
}

// prepareBatch selects the pairs in continuous scope among the batch's
// digests and re-matches their touched packages.
func (s *Service) prepareBatch(ctx context.Context, snap *vulndb.Snapshot, cfg Config, batch []string, touched map[string]*touchedImage) preparedBatch {
	pairs, err := s.continuousPairs(ctx, cfg, batch)
	if err != nil {
		return preparedBatch{err: err}
	}
	pb := preparedBatch{now: s.opts.Now()}
	for _, p := range pairs {
		pb.targets = append(pb.targets, reevalTarget{repo: p.repo, digest: p.digest, touchedImage: *touched[p.digest]})
	}
	if len(pb.targets) == 0 {
		return pb
	}
	facts, err := s.storedFacts(ctx, pb.targets)
	if err != nil {
		return preparedBatch{err: err}
	}
	pb.results, pb.err = s.rematch(ctx, snap, pb.targets, facts, pb.now)
	return pb
}

// touchedPackages resolves keys through the inverted package index: the
// packages of each image that carry one of the keys, without duplicates,
// and the keys of the findings the keys' changed advisories may have
// given them.
func (s *Service) touchedPackages(ctx context.Context, keys []vulndb.Key, advisories map[vulndb.Key][]string) (map[string]*touchedImage, error) {
	out := map[string]*touchedImage{}
	// Per digest, the package identities and the finding keys taken.
	seenPkg, seenKey := map[string]map[string]bool{}, map[string]map[string]bool{}
	for start := 0; start < len(keys); start += keyBatch {
		ks := keys[start:min(start+keyBatch, len(keys))]
		cond := strings.TrimSuffix(strings.Repeat("(ecosystem = ? AND package = ?) OR ", len(ks)), " OR ")
		args := make([]any, 0, 2*len(ks))
		for _, k := range ks {
			args = append(args, k.Ecosystem, k.Package)
		}
		rows, err := s.db.QueryContext(ctx, `SELECT ecosystem, package, image_digest, packages FROM scan_package_keys WHERE `+cond, args...)
		if err != nil {
			return nil, fmt.Errorf("scan: images holding changed packages: %w", err)
		}
		for rows.Next() {
			var k vulndb.Key
			var dg, raw string
			if err := rows.Scan(&k.Ecosystem, &k.Package, &dg, &raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan: images holding changed packages: %w", err)
			}
			var pkgs []index.Package
			if err := json.Unmarshal([]byte(raw), &pkgs); err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan: indexed packages of %s: %w", dg, err)
			}
			ti := out[dg]
			if ti == nil {
				ti = &touchedImage{}
				out[dg], seenPkg[dg], seenKey[dg] = ti, map[string]bool{}, map[string]bool{}
			}
			for _, p := range pkgs {
				id := packageIdentity(&p)
				if !seenPkg[dg][id] {
					seenPkg[dg][id] = true
					ti.pkgs = append(ti.pkgs, p)
				}
				for _, a := range advisories[k] {
					if key := findingKey(a, &p); !seenKey[dg][key] {
						seenKey[dg][key] = true
						ti.keys = append(ti.keys, key)
					}
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("scan: images holding changed packages: %w", err)
		}
	}
	return out, nil
}

// continuousPairs returns the (repository, digest) pairs among digests
// whose image is under continuous enhanced scanning: ACTIVE, in a
// repository whose effective frequency is CONTINUOUS_SCAN.
func (s *Service) continuousPairs(ctx context.Context, cfg Config, digests []string) ([]pair, error) {
	args := make([]any, 0, len(digests)+1)
	args = append(args, StatusActive)
	for _, d := range digests {
		args = append(args, d)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT repository, image_digest FROM `+s.scansByDigest()+`
		WHERE scan_type = 'ENHANCED' AND status = ? AND image_digest IN (`+store.Placeholders(len(digests))+`)
		ORDER BY repository, image_digest`, args...)
	if err != nil {
		return nil, fmt.Errorf("scan: images in continuous scope: %w", err)
	}
	defer rows.Close()
	var out []pair
	for rows.Next() {
		var p pair
		if err := rows.Scan(&p.repo, &p.digest); err != nil {
			return nil, fmt.Errorf("scan: images in continuous scope: %w", err)
		}
		if cfg.Effective(p.repo, false).ScanFrequency == ContinuousScan {
			out = append(out, p)
		}
	}
	return out, rows.Err()
}

// continuousRepositories returns the repositories with enhanced scans
// whose effective frequency is CONTINUOUS_SCAN.
func (s *Service) continuousRepositories(ctx context.Context, cfg Config) ([]string, error) {
	if cfg.ScanType != Enhanced {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT repository FROM scan_scans WHERE scan_type = 'ENHANCED' ORDER BY repository`)
	if err != nil {
		return nil, fmt.Errorf("scan: repositories under continuous scanning: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, fmt.Errorf("scan: repositories under continuous scanning: %w", err)
		}
		if cfg.Effective(r, false).ScanFrequency == ContinuousScan {
			out = append(out, r)
		}
	}
	return out, rows.Err()
}

// storedFinding is what re-evaluation compares of a stored finding.
type storedFinding struct {
	status, body, reason string
}

// findingRef names one stored finding by its primary key.
type findingRef struct{ repo, digest, key string }

// pair is a (repository, image digest) pair.
type pair struct{ repo, digest string }

// evaluated is one target's re-matched findings of changed advisories,
// encoded as stored and as the event announcing each if it turns out new.
type evaluated struct {
	findings []Finding
	bodies   []string
	opened   [][]byte
}

// applyBatch applies a prepared batch's difference to the stored findings
// in one transaction, as the re-evaluation run named run.
func (s *Service) applyBatch(ctx context.Context, wc *store.Conn, snap *vulndb.Snapshot, pb preparedBatch, reasons map[string]CloseReason, run string, st *ReevalStats) error {
	targets, results, now := pb.targets, pb.results, pb.now
	vsu := s.sourceUpdatedAt(ctx, snap)
	return wc.InTx(ctx, func(tx *store.Tx) error {
		refs, candidates, writers, err := maybeStoredTx(ctx, tx, targets, run)
		if err != nil {
			return err
		}
		stored, err := storedFindingsTx(ctx, tx, refs, len(targets))
		if err != nil {
			return err
		}
		// Findings are large structs: size the lists once and copy each
		// finding only into the list that writes it.
		total := 0
		for i := range results {
			total += len(results[i].findings)
		}
		var updated []Finding
		write := make([]Finding, 0, total)
		bodies := make([]string, 0, total)
		openedEvents := make([][]byte, 0, total)
		gone := map[CloseReason][]findingRef{}
		for i, t := range targets {
			have := stored[pair{t.repo, t.digest}]
			fresh := make(map[string]bool, len(results[i].findings))
			for j := range results[i].findings {
				f := &results[i].findings[j]
				fresh[f.key] = true
				old, ok := have[f.key]
				switch {
				case ok && old.status == FindingClosed && CloseReason(old.reason) == ClosedFixedByNewImage:
					continue // remediated by a newer image: stays closed
				case !ok || old.status == FindingClosed:
					openedEvents = append(openedEvents, results[i].opened[j])
				case old.body != results[i].bodies[j]:
					g := *f
					g.Status, g.LastObservedAt, g.UpdatedAt = old.status, now, now
					updated = append(updated, g)
				default:
					continue // unchanged: observed now through scan_scans.evaluated_at
				}
				write = append(write, *f)
				bodies = append(bodies, results[i].bodies[j])
			}
			for key, old := range have {
				if fresh[key] || old.status == FindingClosed {
					continue
				}
				reason, ok := reasons[keyAdvisory(key)]
				if !ok {
					reason = ClosedAdvisoryChanged
				}
				gone[reason] = append(gone[reason], findingRef{t.repo, t.digest, key})
			}
		}
		// The opened findings' events are packed beside the writes.
		type packed struct {
			rows []outboxRow
			err  error
		}
		pc := make(chan packed, 1)
		go func() {
			evs := make([]event, len(openedEvents))
			for i, raw := range openedEvents {
				evs[i] = event{SourceInspector2, DetailInspector2Finding, json.RawMessage(raw)}
			}
			rows, err := outboxRows(s.packer, evs)
			pc <- packed{rows, err}
		}()
		var closed []Finding
		for _, reason := range []CloseReason{ClosedAdvisoryWithdrawn, ClosedAdvisoryChanged} {
			cl, err := closeByKeyTx(ctx, tx, gone[reason], reason, now)
			if err != nil {
				return err
			}
			closed = append(closed, cl...)
		}
		if err := upsertFindingsTx(ctx, tx, write, bodies, now, run, writers); err != nil {
			return err
		}
		counts, err := recordReevaluationTx(ctx, tx, targets, now, vsu, snap.Generation())
		if err != nil {
			return err
		}
		for _, repo := range slices.Sorted(maps.Keys(counts)) {
			if err := s.meterTx(ctx, tx, repo, UsageRescan, counts[repo], now); err != nil {
				return err
			}
		}
		p := <-pc
		if p.err != nil {
			return p.err
		}
		if err := insertOutboxRowsTx(ctx, tx, p.rows, now); err != nil {
			return err
		}
		if err := s.findingEventsTx(ctx, tx, now, updated, closed); err != nil {
			return err
		}
		st.Opened, st.Updated, st.Closed = st.Opened+len(openedEvents), st.Updated+len(updated), st.Closed+len(closed)
		st.Candidates, st.LookedUp = st.Candidates+candidates, st.LookedUp+len(refs)
		return nil
	})
}

// rematch matches the targets' packages and builds and encodes their
// findings, on as many goroutines as there are CPUs. Each finding is
// encoded twice: as stored, and as the event that announces it opened at
// now, the common case, which the serial write stage then need not encode.
func (s *Service) rematch(ctx context.Context, snap *vulndb.Snapshot, targets []reevalTarget, facts map[string]*index.Inventory, now time.Time) ([]evaluated, error) {
	m := s.matchers.get(snap)
	enc, err := newOpenedEncoder(now)
	if err != nil {
		return nil, err
	}
	results := make([]evaluated, len(targets))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range targets {
		g.Go(func() error {
			t := &targets[i]
			inv := facts[t.digest]
			if inv == nil {
				inv = &index.Inventory{}
			}
			res, err := m.Match(ctx, t.pkgs)
			if err != nil {
				return fmt.Errorf("match %s@%s: %w", t.repo, t.digest, err)
			}
			r := &results[i]
			n := len(res.Findings)
			r.findings, r.bodies, r.opened = make([]Finding, 0, n), make([]string, 0, n), make([][]byte, 0, n)
			// The findings a change may have made: a key names each; the
			// value turns true once one is built (a package may match an
			// advisory twice).
			want := make(map[string]bool, len(t.keys))
			for _, k := range t.keys {
				want[k] = false
			}
			for j := range res.Findings {
				if built, ok := want[findingKey(res.Findings[j].Advisory.ID, res.Findings[j].Package)]; !ok || built {
					continue
				}
				r.findings = append(r.findings, s.buildFinding(snap, t.repo, t.digest, inv, &res.Findings[j], true))
				f := &r.findings[len(r.findings)-1]
				want[f.key] = true
				body, err := json.Marshal(f)
				if err != nil {
					return fmt.Errorf("scan: encode finding: %w", err)
				}
				detail, err := enc.encode(f, body)
				if err != nil {
					return err
				}
				r.bodies = append(r.bodies, string(body))
				r.opened = append(r.opened, detail)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// factsSource is the table expression storedFacts reads facts from: the
// covering index (digest, facts). Through the primary key's index, the
// SQLite planner's choice, reading facts from the table row walks the
// overflow pages of the whole inventory stored before it: 16 ms per batch
// of 512 images, against 3 ms through the index.
func (s *Service) factsSource() string {
	return s.db.Indexed("scan_inventories", "scan_inventories_facts")
}

// scansByDigest is the table expression continuousPairs reads scans from:
// by digest. The SQLite planner's choice, the (type, status) index, reads
// every enhanced scan for every batch.
func (s *Service) scansByDigest() string {
	return s.db.Indexed("scan_scans", "scan_scans_digest")
}

// storedFacts reads the stored facts (OS, platform) of the targets'
// images.
func (s *Service) storedFacts(ctx context.Context, targets []reevalTarget) (map[string]*index.Inventory, error) {
	var digests []any
	seen := map[string]bool{}
	for _, t := range targets {
		if !seen[t.digest] {
			seen[t.digest] = true
			digests = append(digests, t.digest)
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT image_digest, facts FROM `+s.factsSource()+` WHERE image_digest IN (`+store.Placeholders(len(digests))+`)`, digests...)
	if err != nil {
		return nil, fmt.Errorf("scan: inventory facts: %w", err)
	}
	defer rows.Close()
	out := map[string]*index.Inventory{}
	for rows.Next() {
		var dg, raw string
		if err := rows.Scan(&dg, &raw); err != nil {
			return nil, fmt.Errorf("scan: inventory facts: %w", err)
		}
		var inv index.Inventory
		if err := json.Unmarshal([]byte(raw), &inv); err != nil {
			return nil, fmt.Errorf("scan: inventory facts of %s: %w", dg, err)
		}
		out[dg] = &inv
	}
	return out, rows.Err()
}

// maybeStoredTx returns the findings the targets' changes may have changed
// that may be stored, how many candidates there were, and the writers of
// their advisories (advisoryWritersTx). The ones that may be stored are
// those of the advisories that findings were ever stored for
// (scan_finding_advisories), except the ones only this run stored findings
// of (all in batches before this one, of other images). Most advisories a
// change set adds are new: none of their candidates is looked up.
func maybeStoredTx(ctx context.Context, tx *store.Tx, targets []reevalTarget, run string) ([]findingRef, int, map[string]string, error) {
	set := map[string]bool{}
	n := 0
	for _, t := range targets {
		n += len(t.keys)
		for _, k := range t.keys {
			set[keyAdvisory(k)] = true
		}
	}
	writers, err := advisoryWritersTx(ctx, tx, slices.Sorted(maps.Keys(set)))
	if err != nil {
		return nil, 0, nil, err
	}
	var refs []findingRef
	for _, t := range targets {
		for _, k := range t.keys {
			if w, ok := writers[keyAdvisory(k)]; ok && w != run {
				refs = append(refs, findingRef{t.repo, t.digest, k})
			}
		}
	}
	return refs, n, writers, nil
}

// storedFindingsTx returns the stored findings of refs, by pair and
// finding key, each looked up by primary key; pairs sizes the result.
func storedFindingsTx(ctx context.Context, tx *store.Tx, refs []findingRef, pairs int) (map[pair]map[string]storedFinding, error) {
	out := make(map[pair]map[string]storedFinding, pairs)
	for start := 0; start < len(refs); start += refChunk {
		cond, args := refsIn(refs[start:min(start+refChunk, len(refs))])
		rows, err := tx.QueryContext(ctx, `SELECT repository, image_digest, finding_key, status, finding, closed_reason FROM scan_findings WHERE `+cond, args...)
		if err != nil {
			return nil, fmt.Errorf("scan: stored findings: %w", err)
		}
		for rows.Next() {
			var p pair
			var key string
			var f storedFinding
			if err := rows.Scan(&p.repo, &p.digest, &key, &f.status, &f.body, &f.reason); err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan: stored findings: %w", err)
			}
			if out[p] == nil {
				out[p] = map[string]storedFinding{}
			}
			out[p][key] = f
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("scan: stored findings: %w", err)
		}
	}
	return out, nil
}

// refChunk is how many findings one statement names (3 parameters each).
const refChunk = 300

// refsIn returns the condition and arguments naming findings by their
// primary key.
func refsIn(refs []findingRef) (string, []any) {
	args := make([]any, 0, 3*len(refs))
	for _, r := range refs {
		args = append(args, r.repo, r.digest, r.key)
	}
	return `(repository, image_digest, finding_key) IN (VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?, ?),", len(refs)), ",") + `)`, args
}

// closeByKeyTx closes the open findings named for the reason and returns
// them as closed.
func closeByKeyTx(ctx context.Context, tx *store.Tx, refs []findingRef, reason CloseReason, now time.Time) ([]Finding, error) {
	var out []Finding
	t := ms(now)
	for start := 0; start < len(refs); start += refChunk {
		cond, args := refsIn(refs[start:min(start+refChunk, len(refs))])
		closed, err := changeFindingsTx(ctx, tx, FindingClosed, reason, now, `UPDATE scan_findings SET status = 'CLOSED', updated_at = ?, closed_at = ?, closed_reason = ?,
			last_observed_at = `+lastObservedSQL+`
			WHERE `+cond+` AND status <> 'CLOSED'
			RETURNING finding, first_observed_at, last_observed_at`, append([]any{t, t, string(reason)}, args...)...)
		if err != nil {
			return nil, fmt.Errorf("scan: close findings: %w", err)
		}
		out = append(out, closed...)
	}
	return out, nil
}

// recordReevaluationTx moves the targets' scans to the generation: last
// scanned now, vulnerability source updated at vsu. It returns, per
// repository, how many scans it moved: a batch run again after an
// interruption finds them moved already, so each re-scan is metered once.
func recordReevaluationTx(ctx context.Context, tx *store.Tx, targets []reevalTarget, now, vsu time.Time, gen int64) (map[string]int, error) {
	counts := map[string]int{}
	byRepo := map[string][]any{}
	var repos []string
	for _, t := range targets {
		if byRepo[t.repo] == nil {
			repos = append(repos, t.repo)
		}
		byRepo[t.repo] = append(byRepo[t.repo], t.digest)
	}
	for _, repo := range repos {
		ds := byRepo[repo]
		for start := 0; start < len(ds); start += refChunk {
			chunk := ds[start:min(start+refChunk, len(ds))]
			args := append([]any{ms(now), ms(now), ms(vsu), gen, repo, gen}, chunk...)
			res, err := tx.ExecContext(ctx, `UPDATE scan_scans SET completed_at = ?, evaluated_at = ?, vuln_source_updated_at = ?, generation = ?
				WHERE repository = ? AND generation < ? AND image_digest IN (`+store.Placeholders(len(chunk))+`)`, args...)
			if err != nil {
				return nil, fmt.Errorf("scan: record re-evaluation in %s: %w", repo, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return nil, fmt.Errorf("scan: record re-evaluation in %s: %w", repo, err)
			}
			if n > 0 {
				counts[repo] += int(n)
			}
		}
	}
	return counts, nil
}

// queueReevaluationIfBehind queues the re-evaluation job when the index
// holds a generation the cursor has not reached (or the cursor was never
// set).
func (s *Service) queueReevaluationIfBehind(ctx context.Context) error {
	if s.opts.Vulns == nil {
		return nil
	}
	cursor, ok, err := s.ReevaluationCursor(ctx)
	if err != nil {
		return err
	}
	if ok && cursor >= s.opts.Vulns.Snapshot().Generation() {
		return nil
	}
	return s.QueueReevaluation(ctx)
}

// runReevaluation is the reeval job: it brings the index to the store's
// generation and re-evaluates until the cursor has caught up with it.
func (s *Service) runReevaluation(ctx context.Context, j *Job) error {
	for range 10 {
		if s.opts.Vulns == nil {
			break
		} // generations landing while it runs; the next poll catches the rest
		if _, err := s.opts.Vulns.Refresh(ctx); err != nil {
			return err
		}
		st, err := s.Reevaluate(ctx)
		if err != nil {
			return err
		}
		if st.To > st.From || st.Rescans > 0 {
			s.log.Info("scan: re-evaluated", "from", st.From, "to", st.To, "changes", st.Changes, "keys", st.Keys,
				"images", st.Images, "evaluated", st.Evaluated, "opened", st.Opened, "updated", st.Updated,
				"closed", st.Closed, "rescans", st.Rescans, "duration", st.Duration)
		}
		if st.Rescans > 0 {
			s.queue.Wake()
		}
		cursor, _, err := s.ReevaluationCursor(ctx)
		if err != nil {
			return err
		}
		if cursor >= s.opts.Vulns.Snapshot().Generation() {
			break
		}
	}
	if err := s.queue.Complete(ctx, j); err != nil {
		return err
	}
	j.MarkFinished()
	return nil
}

// scanUnavailable queues the scans of images whose findings were
// unavailable because the vulnerability database was empty, now that it
// is not. It returns how many it queued.
func (s *Service) scanUnavailable(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT repository, image_digest, scan_type FROM scan_scans WHERE status = ?`, StatusFindingsUnavail)
	if err != nil {
		return 0, fmt.Errorf("scan: images without findings: %w", err)
	}
	type image struct {
		repo, digest string
		typ          ScanType
	}
	var images []image
	for rows.Next() {
		var im image
		var typ string
		if err := rows.Scan(&im.repo, &im.digest, &typ); err != nil {
			rows.Close()
			return 0, fmt.Errorf("scan: images without findings: %w", err)
		}
		im.typ = ScanType(typ)
		images = append(images, im)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(images) == 0 {
		return 0, err
	}
	cfg, err := s.RegistryScanningConfiguration(ctx)
	if err != nil {
		return 0, err
	}
	jobs := make([]NewJob, 0, len(images))
	for _, im := range images {
		freq := Manual
		if im.typ == Enhanced {
			freq = cfg.Effective(im.repo, false).ScanFrequency
		}
		raw, err := json.Marshal(payload{ScanType: im.typ, Frequency: freq, Trigger: "push"})
		if err != nil {
			return 0, err
		}
		jobs = append(jobs, NewJob{Repository: im.repo, Digest: im.digest, Kind: kindScan, Payload: string(raw)})
	}
	return s.enqueueScans(ctx, jobs)
}
