// Command registry is Drydock's registry benchmark: it pushes and pulls
// the same synthetic images to a target registry and a baseline registry
// in one run, with go-containerregistry as the client, and prints
// throughput, request rates and, for servers whose PIDs it is given, CPU
// seconds per GiB and peak resident memory, each with the ratio
// target/baseline.
//
//	go run ./bench/registry -target http://127.0.0.1:5000 -target-user AWS -target-password "$PW" \
//	    -baseline http://127.0.0.1:5001 [-target-pid N -baseline-pid M]
//
// bench/run-registry.sh starts Drydock and Debian's docker-registry on free
// loopback ports and runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

const gib = 1 << 30

type config struct {
	bigSize     int64
	bigLayers   int
	smallLayers int
	smallSize   int64
	pulls       int
	jobs        int
	repeat      int
	only        map[string]bool
}

// server is one registry under test.
type server struct {
	label string
	host  string // host:port
	auth  authn.Authenticator
	pid   int
	base  *countingTransport
}

// countingTransport counts the HTTP requests the client sends.
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// sample is one measurement of one scenario on one server.
type sample struct {
	dur      time.Duration
	bytes    int64
	units    int // layers moved
	requests int64
	cpu      float64 // server CPU-seconds, -1 when unknown
	peakRSS  int64   // bytes, -1 when unknown
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		target, targetUser, targetPass       string
		baseline, baselineUser, baselinePass string
		targetPID, baselinePID               int
		bigMiB, smallKiB                     int
		only                                 string
		samples                              bool
	)
	cfg := config{}
	flag.StringVar(&target, "target", "", "URL of the registry under test (http://127.0.0.1:5000)")
	flag.StringVar(&targetUser, "target-user", "", "user name for the target (AWS for Drydock)")
	flag.StringVar(&targetPass, "target-password", os.Getenv("BENCH_TARGET_PASSWORD"), "password for the target (default $BENCH_TARGET_PASSWORD)")
	flag.StringVar(&baseline, "baseline", "", "URL of the registry to compare with")
	flag.StringVar(&baselineUser, "baseline-user", "", "user name for the baseline")
	flag.StringVar(&baselinePass, "baseline-password", os.Getenv("BENCH_BASELINE_PASSWORD"), "password for the baseline (default $BENCH_BASELINE_PASSWORD)")
	flag.IntVar(&targetPID, "target-pid", 0, "PID of the target server, to report its CPU time and peak RSS")
	flag.IntVar(&baselinePID, "baseline-pid", 0, "PID of the baseline server")
	flag.IntVar(&bigMiB, "big-mib", 1024, "size of the big image in MiB")
	flag.IntVar(&cfg.bigLayers, "big-layers", 4, "layers of the big image")
	flag.IntVar(&cfg.smallLayers, "small-layers", 200, "layers of the many-layer image")
	flag.IntVar(&smallKiB, "small-kib", 32, "size of each small layer in KiB")
	flag.IntVar(&cfg.pulls, "pulls", 8, "concurrent pulls of the big image")
	flag.IntVar(&cfg.jobs, "jobs", 4, "blobs each push or pull moves at once (crane's default is 4)")
	flag.IntVar(&cfg.repeat, "repeat", 1, "repetitions; the median is reported")
	flag.StringVar(&only, "only", "", "comma-separated scenarios to run (push-big,pull-big,pull-concurrent,push-small,pull-small)")
	flag.BoolVar(&samples, "samples", false, "also print every repetition's figures, to judge the spread behind the medians")
	flag.Parse()
	if target == "" {
		return errors.New("-target is required")
	}
	if bigMiB <= 0 || cfg.bigLayers <= 0 || cfg.smallLayers <= 0 || smallKiB <= 0 || cfg.pulls <= 0 || cfg.jobs <= 0 || cfg.repeat <= 0 {
		return errors.New("sizes, counts and -repeat must be positive")
	}
	cfg.bigSize = int64(bigMiB) << 20
	cfg.smallSize = int64(smallKiB) << 10
	if only != "" {
		cfg.only = map[string]bool{}
		for _, s := range strings.Split(only, ",") {
			cfg.only[strings.TrimSpace(s)] = true
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var servers []*server
	for _, s := range []struct {
		label, url, user, pass string
		pid                    int
	}{{"target", target, targetUser, targetPass, targetPID}, {"baseline", baseline, baselineUser, baselinePass, baselinePID}} {
		if s.url == "" {
			continue
		}
		srv, err := newServer(s.label, s.url, s.user, s.pass, s.pid)
		if err != nil {
			return err
		}
		servers = append(servers, srv)
	}

	results := map[string]map[string][]sample{} // scenario -> server label -> samples
	record := func(sc, label string, s sample) {
		if results[sc] == nil {
			results[sc] = map[string][]sample{}
		}
		results[sc][label] = append(results[sc][label], s)
	}
	for rep := 0; rep < cfg.repeat; rep++ {
		runID := fmt.Sprintf("%d-%d", time.Now().UnixNano()%1e9, rep)
		fmt.Fprintf(os.Stderr, "== repetition %d of %d: generating images\n", rep+1, cfg.repeat)
		seed := rand.Uint64()
		big, err := randomImage(seed, cfg.bigLayers, cfg.bigSize/int64(cfg.bigLayers))
		if err != nil {
			return err
		}
		small, err := randomImage(seed+1_000_003, cfg.smallLayers, cfg.smallSize)
		if err != nil {
			return err
		}
		// Alternate which server goes first, so neither always gets the
		// warmer page cache.
		order := append([]*server(nil), servers...)
		if rep%2 == 1 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, sc := range scenarios {
			if cfg.only != nil && !cfg.only[sc.key] {
				if !(sc.key == "push-big" && (cfg.only["pull-big"] || cfg.only["pull-concurrent"])) &&
					!(sc.key == "push-small" && cfg.only["pull-small"]) {
					continue
				}
			}
			for _, srv := range order {
				img := big
				if sc.small {
					img = small
				}
				repo := "bench/big-" + runID
				if sc.small {
					repo = "bench/small-" + runID
				}
				fmt.Fprintf(os.Stderr, "   %-16s %s\n", sc.key, srv.label)
				s, err := measure(ctx, srv, func() (int64, int, error) { return sc.run(ctx, cfg, srv, repo, img) })
				if err != nil {
					return fmt.Errorf("%s on %s: %w", sc.key, srv.label, err)
				}
				record(sc.key, srv.label, s)
			}
		}
	}
	report(os.Stdout, cfg, servers, results)
	if samples {
		reportSamples(os.Stdout, servers, results)
	}
	return nil
}

func newServer(label, rawURL, user, pass string, pid int) (*server, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("-%s %q: want a URL like http://127.0.0.1:5000", label, rawURL)
	}
	var a authn.Authenticator = authn.Anonymous
	if user != "" || pass != "" {
		a = &authn.Basic{Username: user, Password: pass}
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 128
	base.DisableCompression = true
	return &server{label: label, host: u.Host, auth: a, pid: pid, base: &countingTransport{next: base}}, nil
}

func randomImage(seed uint64, layers int, size int64) (v1.Image, error) {
	ls := make([]v1.Layer, layers)
	var g errgroup.Group
	g.SetLimit(4)
	for i := range ls {
		g.Go(func() error {
			l, err := newRandomLayer(seed+uint64(i)*7919, size)
			ls[i] = l
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	return mutate.AppendLayers(base, ls...)
}

// measure runs fn and takes the server's CPU time and peak RSS around it.
func measure(ctx context.Context, srv *server, fn func() (int64, int, error)) (sample, error) {
	s := sample{cpu: -1, peakRSS: -1}
	var before procStat
	haveProc := false
	if srv.pid > 0 {
		resetPeakRSS(srv.pid)
		var err error
		if before, err = readProc(srv.pid); err != nil {
			return s, fmt.Errorf("server process %d: %w", srv.pid, err)
		}
		haveProc = true
	}
	reqs := srv.base.n.Load()
	start := time.Now()
	n, units, err := fn()
	s.dur = time.Since(start)
	if err != nil {
		return s, err
	}
	s.bytes, s.units, s.requests = n, units, srv.base.n.Load()-reqs
	if haveProc {
		after, err := readProc(srv.pid)
		if err != nil {
			return s, fmt.Errorf("server process %d: %w", srv.pid, err)
		}
		s.cpu = after.cpuSeconds - before.cpuSeconds
		s.peakRSS = after.peakRSS
	}
	return s, ctx.Err()
}

type scenario struct {
	key, title string
	small      bool
	run        func(ctx context.Context, cfg config, srv *server, repo string, img v1.Image) (bytes int64, layers int, err error)
}

var scenarios = []scenario{
	{"push-big", "push big image", false, push},
	{"pull-big", "pull big image", false, func(ctx context.Context, cfg config, srv *server, repo string, img v1.Image) (int64, int, error) {
		return pull(ctx, cfg, srv, repo)
	}},
	{"pull-concurrent", "concurrent pulls of the big image", false, func(ctx context.Context, cfg config, srv *server, repo string, img v1.Image) (int64, int, error) {
		var total atomic.Int64
		var layers atomic.Int64
		g, gctx := errgroup.WithContext(ctx)
		for i := 0; i < cfg.pulls; i++ {
			g.Go(func() error {
				n, l, err := pull(gctx, cfg, srv, repo)
				total.Add(n)
				layers.Add(int64(l))
				return err
			})
		}
		err := g.Wait()
		return total.Load(), int(layers.Load()), err
	}},
	{"push-small", "push many-layer image", true, push},
	{"pull-small", "pull many-layer image", true, func(ctx context.Context, cfg config, srv *server, repo string, img v1.Image) (int64, int, error) {
		return pull(ctx, cfg, srv, repo)
	}},
}

func (srv *server) ref(repo string) (name.Reference, error) {
	return name.ParseReference(srv.host+"/"+repo+":latest", name.Insecure)
}

// push writes img with go-containerregistry, as crane push does.
func push(ctx context.Context, cfg config, srv *server, repo string, img v1.Image) (int64, int, error) {
	ref, err := srv.ref(repo)
	if err != nil {
		return 0, 0, err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(srv.auth),
		remote.WithTransport(srv.base), remote.WithJobs(cfg.jobs)); err != nil {
		return 0, 0, err
	}
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, err
	}
	var total int64
	for _, l := range layers {
		n, _ := l.Size()
		total += n
	}
	return total, len(layers), nil
}

// pull fetches the manifest and every layer blob, cfg.jobs at a time. The
// blobs are read to the end and their lengths checked, but not hashed, so
// the client's SHA-256 does not cap what the server can deliver.
func pull(ctx context.Context, cfg config, srv *server, repo string) (int64, int, error) {
	ref, err := srv.ref(repo)
	if err != nil {
		return 0, 0, err
	}
	rt, err := transport.NewWithContext(ctx, ref.Context().Registry, srv.auth, srv.base, []string{ref.Scope(transport.PullScope)})
	if err != nil {
		return 0, 0, err
	}
	img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithTransport(rt))
	if err != nil {
		return 0, 0, err
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, 0, err
	}
	client := &http.Client{Transport: rt}
	scheme := ref.Context().Registry.Scheme()
	var total atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.jobs)
	descs := append([]v1.Descriptor{m.Config}, m.Layers...)
	for _, d := range descs {
		g.Go(func() error {
			u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", scheme, srv.host, ref.Context().RepositoryStr(), d.Digest)
			req, err := http.NewRequestWithContext(gctx, http.MethodGet, u, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %s", d.Digest, resp.Status)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil {
				return err
			}
			if n != d.Size {
				return fmt.Errorf("GET %s: %d bytes, want %d", d.Digest, n, d.Size)
			}
			total.Add(n)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	return total.Load(), len(m.Layers), nil
}

// median returns the median of f over the samples (the upper middle of an
// even count), each metric on its own: the run of median duration is not
// always the run of median CPU time.
func median(ss []sample, f func(sample) float64) float64 {
	vs := make([]float64, len(ss))
	for i, s := range ss {
		vs[i] = f(s)
	}
	sort.Float64s(vs)
	return vs[len(vs)/2]
}

func report(w io.Writer, cfg config, servers []*server, results map[string]map[string][]sample) {
	fmt.Fprintf(w, "\nbig image: %d MiB in %d layers; many-layer image: %d layers of %d KiB; %d concurrent pulls; %d blobs at a time; median of %d\n",
		cfg.bigSize>>20, cfg.bigLayers, cfg.smallLayers, cfg.smallSize>>10, cfg.pulls, cfg.jobs, cfg.repeat)
	for _, s := range servers {
		fmt.Fprintf(w, "%s: %s\n", s.label, s.host)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	header := "scenario\tmetric\t"
	for _, s := range servers {
		header += s.label + "\t"
	}
	if len(servers) == 2 {
		header += "target/baseline\t"
	}
	fmt.Fprintln(tw, header)
	for _, sc := range scenarios {
		if results[sc.key] == nil {
			continue
		}
		title := sc.title
		if sc.key == "pull-concurrent" {
			title = fmt.Sprintf("%d concurrent pulls", cfg.pulls)
		}
		type metric struct {
			name string
			f    func(sample) float64
			fmt  string
		}
		metrics := []metric{
			{"MB/s", func(s sample) float64 { return float64(s.bytes) / 1e6 / s.dur.Seconds() }, "%.0f"},
			{"requests/s", func(s sample) float64 { return float64(s.requests) / s.dur.Seconds() }, "%.0f"},
			{"seconds", func(s sample) float64 { return s.dur.Seconds() }, "%.2f"},
		}
		if sc.small {
			metrics = append([]metric{{"layers/s", func(s sample) float64 { return float64(s.units) / s.dur.Seconds() }, "%.0f"}}, metrics...)
		}
		metrics = append(metrics,
			metric{"server CPU-s/GiB", func(s sample) float64 {
				if s.cpu < 0 {
					return -1
				}
				return s.cpu / (float64(s.bytes) / gib)
			}, "%.2f"},
			metric{"server peak RSS MiB", func(s sample) float64 {
				if s.peakRSS < 0 {
					return -1
				}
				return float64(s.peakRSS) / (1 << 20)
			}, "%.0f"},
		)
		for i, m := range metrics {
			line := "\t" + m.name + "\t"
			if i == 0 {
				line = title + line
			}
			var vals []float64
			for _, s := range servers {
				v := median(results[sc.key][s.label], m.f)
				vals = append(vals, v)
				if v < 0 {
					line += "-\t"
				} else {
					line += fmt.Sprintf(m.fmt, v) + "\t"
				}
			}
			if len(vals) == 2 {
				if vals[0] >= 0 && vals[1] > 0 {
					line += fmt.Sprintf("%.2f", vals[0]/vals[1]) + "\t"
				} else {
					line += "-\t"
				}
			}
			fmt.Fprintln(tw, line)
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\nMB/s, layers/s and requests/s: higher is better; CPU-s/GiB, peak RSS and seconds: lower is better.")
	fmt.Fprintln(w, "Peak RSS is reset before each scenario when the harness may write /proc/PID/clear_refs (same user or root).")
}

// reportSamples prints every repetition of every scenario, in the order run.
func reportSamples(w io.Writer, servers []*server, results map[string]map[string][]sample) {
	fmt.Fprintln(w, "\nevery repetition:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tserver\trepetition\tMB/s\tseconds\tserver CPU-s/GiB\tserver peak RSS MiB\t")
	for _, sc := range scenarios {
		for _, srv := range servers {
			for i, s := range results[sc.key][srv.label] {
				cpu, rss := "-", "-"
				if s.cpu >= 0 {
					cpu = fmt.Sprintf("%.2f", s.cpu/(float64(s.bytes)/gib))
				}
				if s.peakRSS >= 0 {
					rss = fmt.Sprintf("%.0f", float64(s.peakRSS)/(1<<20))
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.2f\t%s\t%s\t\n", sc.key, srv.label, i+1,
					float64(s.bytes)/1e6/s.dur.Seconds(), s.dur.Seconds(), cpu, rss)
			}
		}
	}
	tw.Flush()
}
