// Command index measures `drydock sbom` on the Debian bookworm fixture
// image: cold (no cache), fully cached (SQLite layer cache), and the
// decompression floor (gzip -dc of the same layer), reporting median wall
// time and peak RSS of each, and the same for trivy and syft when they are
// on PATH. Each -layer DIR adds a layer holding DIR's files on top of the
// base (an application directory with node_modules, a Go binary, jars), to
// measure an image with language packages too.
//
//	go run ./bench/index -drydock /path/to/drydock -runs 5
//	go run ./bench/index -drydock /path/to/drydock -layer /tmp/app-npm -layer /tmp/app-go
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func main() {
	drydock := flag.String("drydock", "drydock", "drydock binary to measure")
	fixture := flag.String("fixture", "../shared/fixtures/rootfs/debian-bookworm-12.15-minbase-amd64-rootfs.tar.gz", "root filesystem tarball used as the image's one layer")
	runs := flag.Int("runs", 5, "runs per case (the median is reported)")
	var layers layerDirs
	flag.Var(&layers, "layer", "a directory whose files make one more layer on top (repeatable)")
	flag.Parse()
	if err := run(*drydock, *fixture, layers, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench/index:", err)
		os.Exit(1)
	}
}

type sample struct {
	wall time.Duration
	cpu  time.Duration // user + system
	rss  int64         // KiB
}

func measure(name string, args ...string) (sample, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout = nil
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return sample{}, fmt.Errorf("%s %v: %w", name, args, err)
	}
	wall := time.Since(start)
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	s := sample{wall: wall}
	if ru != nil {
		s.rss = ru.Maxrss
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s, nil
}

func median(ss []sample) sample {
	sort.Slice(ss, func(i, j int) bool { return ss[i].wall < ss[j].wall })
	m := ss[len(ss)/2]
	for _, s := range ss {
		m.rss = max(m.rss, s.rss)
	}
	return m
}

func repeat(runs int, before func() error, name string, args ...string) (sample, error) {
	var ss []sample
	for i := 0; i < runs; i++ {
		if before != nil {
			if err := before(); err != nil {
				return sample{}, err
			}
		}
		s, err := measure(name, args...)
		if err != nil {
			return sample{}, err
		}
		ss = append(ss, s)
	}
	return median(ss), nil
}

// layerDirs collects the -layer flags.
type layerDirs []string

func (l *layerDirs) String() string     { return fmt.Sprint(*l) }
func (l *layerDirs) Set(v string) error { *l = append(*l, v); return nil }

// dirLayer makes a layer of dir's files, placed at the image root (the
// layout stores it gzip-compressed, as registries do).
func dirLayer(tmp, dir string, n int) (v1.Layer, error) {
	tarPath := filepath.Join(tmp, fmt.Sprintf("layer-%d.tar", n))
	out, err := exec.Command("tar", "-C", dir, "-cf", tarPath, ".").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("tar %s: %w: %s", dir, err, out)
	}
	return tarball.LayerFromFile(tarPath)
}

func run(drydock, fixture string, extra []string, runs int) error {
	tmp, err := os.MkdirTemp("", "drydock-bench-index-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "layout")
	l, err := tarball.LayerFromFile(fixture)
	if err != nil {
		return err
	}
	all := []v1.Layer{l}
	for i, dir := range extra {
		el, err := dirLayer(tmp, dir, i)
		if err != nil {
			return err
		}
		all = append(all, el)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), all...)
	if err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img); err != nil {
		return err
	}
	target := "oci:" + dir
	cache := filepath.Join(tmp, "cache.db")
	report := func(name string, s sample, base sample) {
		ratio := ""
		if base.wall > 0 {
			ratio = fmt.Sprintf("  %.2fx the gunzip floor (wall), %.2fx (CPU)", float64(s.wall)/float64(base.wall), float64(s.cpu)/float64(base.cpu))
		}
		fmt.Printf("%-28s %8.0f ms wall  %8.0f ms CPU  peak RSS %6.1f MiB%s\n", name,
			float64(s.wall.Microseconds())/1000, float64(s.cpu.Microseconds())/1000, float64(s.rss)/1024, ratio)
	}

	floor, err := repeat(runs, nil, "sh", "-c", "gzip -dc < '"+fixture+"' > /dev/null")
	if err != nil {
		return err
	}
	report("gzip -dc (floor)", floor, sample{})
	cold, err := repeat(runs, nil, drydock, "sbom", "-o", "json", "--out", os.DevNull, target)
	if err != nil {
		return err
	}
	report("drydock sbom cold", cold, floor)
	if _, err := measure(drydock, "sbom", "-o", "json", "--out", os.DevNull, "--cache", cache, target); err != nil {
		return err
	}
	cached, err := repeat(runs, nil, drydock, "sbom", "-o", "json", "--out", os.DevNull, "--cache", cache, target)
	if err != nil {
		return err
	}
	report("drydock sbom cached", cached, sample{})

	// Each peer names the same OCI layout its own way.
	for _, peer := range [][]string{
		{"trivy", "image", "--quiet", "--skip-db-update", "--scanners", "vuln", "--list-all-pkgs", "--format", "json", "--output", os.DevNull, "--input", dir},
		{"syft", "scan", "-q", "-o", "json=" + os.DevNull, "oci-dir:" + dir},
	} {
		if _, err := exec.LookPath(peer[0]); err != nil {
			fmt.Printf("%-28s not installed\n", peer[0])
			continue
		}
		s, err := repeat(runs, nil, peer[0], peer[1:]...)
		if err != nil {
			fmt.Printf("%-28s failed: %v\n", peer[0], err)
			continue
		}
		report(peer[0]+" cold", s, floor)
	}
	return nil
}
