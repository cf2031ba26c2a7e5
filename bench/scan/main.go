// Command scan measures Drydock's scanning service end to end against a
// real `drydock serve` (a built binary on a temporary data directory whose
// vulnerability database is made from the real fixture feeds), with
// ENHANCED scanning configured through the ECR API:
//
//   - latency: the time from the manifest PUT to the scan status ACTIVE
//     (DescribeImageScanFindings polled every -poll), for the Debian
//     bookworm fixture image and for an application image of about 100
//     packages (the same base with a log4j-core jar and a Go binary), cold
//     (a fresh server, no layer indexed yet) and warm (the same image with
//     a small unique layer on top, its base already indexed);
//   - throughput: scans per second for -images distinct images (the real
//     alpine:3.10 image with a distinct apk database each) whose manifests
//     are PUT at once;
//   - push: the upload rate of a -big-mib blob with the scan workers idle
//     and with them busy scanning -busy-images images.
//
// Medians over -runs are printed. With -baseline, another drydock build
// is measured in the same run (latency interleaved run by run, throughput
// after it), with the ratio of the medians.
//
//	go run ./bench/scan -drydock /tmp/drydock
//	go run ./bench/scan -drydock /tmp/drydock -only latency -runs 7
//	go run ./bench/scan -drydock /tmp/drydock -baseline /tmp/drydock-old -only latency,throughput
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type config struct {
	drydock    string
	baseline   string
	fixtures   string
	runs       int
	images     int
	busyImages int
	bigMiB     int
	pushRuns   int
	poll       time.Duration
	workers    int
	only       map[string]bool
}

func main() {
	var c config
	only := ""
	flag.StringVar(&c.drydock, "drydock", "drydock", "drydock binary to measure")
	flag.StringVar(&c.baseline, "baseline", "", "latency, throughput: another drydock binary measured in the same run (e.g. a build of an earlier commit)")
	flag.StringVar(&c.fixtures, "fixtures", "../shared/fixtures", "the shared fixtures directory")
	flag.IntVar(&c.runs, "runs", 5, "latency: runs per image (the median is reported)")
	flag.IntVar(&c.images, "images", 200, "throughput: distinct images pushed at once")
	flag.IntVar(&c.busyImages, "busy-images", 400, "push: images scanned while the big blob is pushed")
	flag.IntVar(&c.bigMiB, "big-mib", 512, "push: size of the big blob in MiB")
	flag.IntVar(&c.pushRuns, "push-runs", 3, "push: idle pushes (the median is reported)")
	flag.DurationVar(&c.poll, "poll", 5*time.Millisecond, "latency: how often the scan status is read")
	flag.IntVar(&c.workers, "workers", 2, "drydock serve --scan-workers")
	flag.StringVar(&only, "only", "latency,throughput,push", "scenarios to run")
	flag.Parse()
	c.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		c.only[strings.TrimSpace(s)] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/scan:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	tmp, err := os.MkdirTemp("", "drydock-bench-scan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{config: c, tmp: tmp}
	bins := []binary{{label: "drydock", path: c.drydock}}
	if c.baseline != "" {
		bins = append(bins, binary{label: "baseline", path: c.baseline})
	}
	for i := range bins {
		// Each binary makes its own template (its migrations).
		bins[i].tmpl = filepath.Join(tmp, "template-"+bins[i].label)
		if err := os.Mkdir(bins[i].tmpl, 0o700); err != nil {
			return err
		}
		start := time.Now()
		if err := template(ctx, bins[i].path, c.fixtures, bins[i].tmpl); err != nil {
			return err
		}
		fmt.Printf("%s: vulnerability database from the fixture feeds in %.1f s\n", bins[i].label, time.Since(start).Seconds())
	}
	b.bins = bins
	for _, sc := range []struct {
		name string
		fn   func(context.Context) error
	}{{"latency", b.latency}, {"throughput", b.throughput}, {"push", b.push}} {
		if !c.only[sc.name] {
			continue
		}
		if err := sc.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
	}
	return nil
}

type bench struct {
	config
	tmp     string
	bins    []binary
	servers int
}

// binary is a drydock build to measure and its template data directory.
type binary struct {
	label, path, tmpl string
}

// server starts a fresh drydock serve of bin on a copy of its template.
func (b *bench) server(ctx context.Context, bin binary) (*server, error) {
	b.servers++
	return start(ctx, bin.path, bin.tmpl, filepath.Join(b.tmp, fmt.Sprintf("server-%d", b.servers)), b.workers)
}

func medianDur(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

// pushAndWait uploads img's blobs, then times its manifest PUT and the
// wait for its scan.
func (b *bench) pushAndWait(ctx context.Context, s *server, repo, tag string, img v1.Image) (put, total time.Duration, findings int, err error) {
	if err := s.uploadBlobs(ctx, repo, img); err != nil {
		return 0, 0, 0, err
	}
	dg, err := img.Digest()
	if err != nil {
		return 0, 0, 0, err
	}
	t0 := time.Now()
	if err := s.putManifest(ctx, repo, tag, img); err != nil {
		return 0, 0, 0, err
	}
	put = time.Since(t0)
	n, err := s.waitScan(ctx, repo, dg.String(), b.poll)
	return put, time.Since(t0), n, err
}

func (b *bench) latency(ctx context.Context) error {
	base, err := tarball.LayerFromFile(filepath.Join(b.fixtures, "rootfs/debian-bookworm-12.15-minbase-amd64-rootfs.tar.gz"))
	if err != nil {
		return err
	}
	app, err := appLayer(b.tmp)
	if err != nil {
		return err
	}
	kinds := []struct {
		name   string
		layers []v1.Layer
	}{
		{"debian bookworm", []v1.Layer{base}},
		{"bookworm + jar + Go binary", []v1.Layer{base, app}},
	}
	for i, k := range kinds {
		n, err := b.countPackages(ctx, k.layers)
		if err != nil {
			return err
		}
		kinds[i].name = fmt.Sprintf("%s (%d pkgs)", k.name, n)
	}
	fmt.Printf("\nlatency: manifest PUT to scan ACTIVE (DescribeImageScanFindings every %s), medians of %d runs, %d scan workers\n", b.poll, b.runs, b.workers)
	fmt.Printf("  cold: a fresh server, no layer indexed; warm: %d more pushes of the image with a small unique layer on top\n", warmPushes)
	fmt.Printf("%-38s %-9s %-5s %10s %10s %10s %10s %9s\n", "image", "binary", "index", "median", "min", "max", "PUT", "findings")
	for _, k := range kinds {
		type sample struct{ cold, warm, coldPut, warmPut []time.Duration }
		res := make([]sample, len(b.bins))
		findings := 0
		for r := 0; r < b.runs; r++ {
			// Interleave the binaries, so that both see the same machine.
			for bi, bin := range b.bins {
				s, err := b.server(ctx, bin)
				if err != nil {
					return err
				}
				err = func() error {
					defer s.stop()
					if err := s.createRepository(ctx, "bench/latency"); err != nil {
						return err
					}
					img, err := ociImage(k.layers...)
					if err != nil {
						return err
					}
					put, total, n, err := b.pushAndWait(ctx, s, "bench/latency", "cold", img)
					if err != nil {
						return err
					}
					res[bi].cold, res[bi].coldPut, findings = append(res[bi].cold, total), append(res[bi].coldPut, put), n
					for w := 0; w < warmPushes; w++ {
						marker, err := markerLayer(fmt.Sprintf("run %d %d %d", r, w, time.Now().UnixNano()))
						if err != nil {
							return err
						}
						img, err := ociImage(append(slices.Clone(k.layers), marker)...)
						if err != nil {
							return err
						}
						put, total, _, err := b.pushAndWait(ctx, s, "bench/latency", fmt.Sprintf("warm-%d", w), img)
						if err != nil {
							return err
						}
						res[bi].warm, res[bi].warmPut = append(res[bi].warm, total), append(res[bi].warmPut, put)
					}
					return nil
				}()
				if err != nil {
					return err
				}
			}
		}
		for _, mode := range []string{"cold", "warm"} {
			for bi, bin := range b.bins {
				all, put := res[bi].cold, res[bi].coldPut
				if mode == "warm" {
					all, put = res[bi].warm, res[bi].warmPut
				}
				ratio := ""
				if bi > 0 {
					base := res[0].cold
					if mode == "warm" {
						base = res[0].warm
					}
					ratio = fmt.Sprintf("  drydock/baseline %.2f", float64(medianDur(base))/float64(medianDur(all)))
				}
				fmt.Printf("%-38s %-9s %-5s %10s %10s %10s %10s %9d%s\n", k.name, bin.label, mode, ms(medianDur(all)), ms(slices.Min(all)),
					ms(slices.Max(all)), ms(medianDur(put)), findings, ratio)
			}
		}
	}
	return nil
}

// warmPushes is how many warm pushes follow each cold one.
const warmPushes = 3

// burst pushes n distinct alpine images (blobs first, untimed), then PUTs
// all their manifests at once, 16 at a time. started is closed when the
// first manifest PUT starts.
type burst struct {
	digests []string
	imgs    []v1.Image
}

func (b *bench) prepareBurst(ctx context.Context, s *server, repo string, n, offset int) (*burst, error) {
	base, db, err := alpineBase(b.fixtures, b.tmp)
	if err != nil {
		return nil, err
	}
	out := &burst{}
	for i := 0; i < n; i++ {
		img, err := apkVariant(base, db, offset+i)
		if err != nil {
			return nil, err
		}
		dg, err := img.Digest()
		if err != nil {
			return nil, err
		}
		out.imgs, out.digests = append(out.imgs, img), append(out.digests, dg.String())
	}
	err = parallel(16, n, func(i int) error { return s.uploadBlobs(ctx, repo, out.imgs[i]) })
	return out, err
}

func (bu *burst) putAll(ctx context.Context, s *server, repo string) error {
	return parallel(16, len(bu.imgs), func(i int) error {
		return s.putManifest(ctx, repo, fmt.Sprintf("img-%d", i), bu.imgs[i])
	})
}

// parallel runs fn(0..n-1) at most k at a time and returns the first error.
func parallel(k, n int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, k)
	for w := 0; w < k; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || errs[w] != nil {
					return
				}
				errs[w] = fn(i)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// waitAll polls DescribeImages every interval until every digest's scan is
// ACTIVE or COMPLETE, and returns when each was first seen so.
func waitAll(ctx context.Context, s *server, repo string, digests []string, interval time.Duration) (map[string]time.Time, error) {
	done := map[string]time.Time{}
	deadline := time.Now().Add(15 * time.Minute)
	for len(done) < len(digests) {
		st, err := s.scanStatuses(ctx, repo)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		for _, d := range digests {
			if _, ok := done[d]; ok {
				continue
			}
			switch st[d] {
			case "ACTIVE", "COMPLETE":
				done[d] = now
			case "FAILED", "UNSUPPORTED_IMAGE":
				return nil, fmt.Errorf("%s@%s: scan %s", repo, d, st[d])
			}
		}
		if now.After(deadline) {
			return nil, fmt.Errorf("%d of %d scans finished in 15 minutes", len(done), len(digests))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
	}
	return done, nil
}

func (b *bench) throughput(ctx context.Context) error {
	for _, bin := range b.bins {
		if err := b.throughputOf(ctx, bin); err != nil {
			return fmt.Errorf("%s: %w", bin.label, err)
		}
	}
	return nil
}

func (b *bench) throughputOf(ctx context.Context, bin binary) error {
	s, err := b.server(ctx, bin)
	if err != nil {
		return err
	}
	defer s.stop()
	repo := "bench/burst"
	if err := s.createRepository(ctx, repo); err != nil {
		return err
	}
	bu, err := b.prepareBurst(ctx, s, repo, b.images, 0)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := bu.putAll(ctx, s, repo); err != nil {
		return err
	}
	putDone := time.Since(t0)
	done, err := waitAll(ctx, s, repo, bu.digests, 20*time.Millisecond)
	if err != nil {
		return err
	}
	var lat []time.Duration
	last := time.Duration(0)
	for _, at := range done {
		d := at.Sub(t0)
		lat = append(lat, d)
		last = max(last, d)
	}
	slices.Sort(lat)
	fmt.Printf("\nthroughput (%s): %d distinct alpine:3.10 images, manifests PUT 16 at a time, %d scan workers\n", bin.label, b.images, b.workers)
	fmt.Printf("  all manifests PUT in %s; all scans ACTIVE after %s: %.1f scans/s\n", ms(putDone), ms(last), float64(b.images)/last.Seconds())
	fmt.Printf("  per image, PUT phase start to ACTIVE: median %s, p90 %s, max %s\n", ms(lat[len(lat)/2]), ms(lat[len(lat)*9/10]), ms(last))
	return nil
}

func (b *bench) push(ctx context.Context) error {
	s, err := b.server(ctx, b.bins[0])
	if err != nil {
		return err
	}
	defer s.stop()
	for _, r := range []string{"bench/big", "bench/busy"} {
		if err := s.createRepository(ctx, r); err != nil {
			return err
		}
	}
	size := int64(b.bigMiB) << 20
	mbps := func(d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }
	var idle []time.Duration
	for i := 0; i < b.pushRuns; i++ {
		d, err := s.pushBlob(ctx, "bench/big", size, uint64(i))
		if err != nil {
			return err
		}
		idle = append(idle, d)
	}
	bu, err := b.prepareBurst(ctx, s, "bench/busy", b.busyImages, 100_000)
	if err != nil {
		return err
	}
	// Start the scans (all manifests PUT, so that only the scan workers
	// run beside the push), push the blob, then count the scans that
	// finished meanwhile.
	if err := bu.putAll(ctx, s, "bench/busy"); err != nil {
		return err
	}
	st, err := s.scanStatuses(ctx, "bench/busy")
	if err != nil {
		return err
	}
	before := countActive(st)
	if before == b.busyImages {
		return fmt.Errorf("all %d scans finished before the push started: raise -busy-images", b.busyImages)
	}
	busy, err := s.pushBlob(ctx, "bench/big", size, 99)
	if err != nil {
		return err
	}
	st, err = s.scanStatuses(ctx, "bench/busy")
	if err != nil {
		return err
	}
	after := countActive(st)
	if _, err := waitAll(ctx, s, "bench/busy", bu.digests, 50*time.Millisecond); err != nil {
		return err
	}
	fmt.Printf("\npush: one %d MiB blob (POST, streamed PATCH, PUT), %d scan workers\n", b.bigMiB, b.workers)
	fmt.Printf("  idle (median of %d): %s, %.0f MB/s\n", b.pushRuns, ms(medianDur(idle)), mbps(medianDur(idle)))
	fmt.Printf("  while scanning:       %s, %.0f MB/s (%d of %d scans still to go when it started, %d when it ended)\n",
		ms(busy), mbps(busy), b.busyImages-before, b.busyImages, b.busyImages-after)
	fmt.Printf("  ratio busy/idle rate: %.2f\n", mbps(busy)/mbps(medianDur(idle)))
	return nil
}

func countActive(st map[string]types.ScanStatus) int {
	n := 0
	for _, v := range st {
		if v == "ACTIVE" || v == "COMPLETE" {
			n++
		}
	}
	return n
}

// countPackages counts the packages `drydock sbom` finds in an image of
// the layers (written to an OCI layout).
func (b *bench) countPackages(ctx context.Context, layers []v1.Layer) (int, error) {
	img, err := ociImage(layers...)
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp(b.tmp, "layout-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(filepath.Join(dir, "oci"), empty.Index)
	if err != nil {
		return 0, err
	}
	if err := p.AppendImage(img); err != nil {
		return 0, err
	}
	out := filepath.Join(dir, "inventory.json")
	if msg, err := exec.CommandContext(ctx, b.bins[0].path, "sbom", "-o", "json", "--out", out, "oci:"+filepath.Join(dir, "oci")).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("drydock sbom: %v: %s", err, msg)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return 0, err
	}
	var invs []struct {
		Packages []json.RawMessage `json:"packages"`
	}
	if err := json.Unmarshal(raw, &invs); err != nil || len(invs) != 1 {
		return 0, fmt.Errorf("drydock sbom printed %d inventories: %v", len(invs), err)
	}
	return len(invs[0].Packages), nil
}
