package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/source"
	"github.com/drydockhq/drydock/internal/report"
)

const sbomUsage = `[flags] TARGET

TARGET is one of:
  oci:DIR[:TAG|@DIGEST]            an OCI image layout directory
  oci-archive:FILE[:TAG|@DIGEST]   a tar of an OCI layout (plain, gzip or zstd)
  docker-archive:FILE[:REPO:TAG]   a 'docker save' tarball (plain or gzip)
  dir:PATH                         a root filesystem directory
  registry:REF, docker://REF, REF  an image in a registry (docker/podman credentials)

A multi-platform image is indexed per platform (all, or one with --platform).`

func runSBOM(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "sbom", sbomUsage)
	format := fs.String("o", "cyclonedx", "output format: cyclonedx (CycloneDX 1.6 JSON), spdx (SPDX 2.3 JSON), table, json (Drydock inventory)")
	platform := fs.String("platform", "", "index only this platform of a multi-platform image (os/arch[/variant])")
	out := fs.String("out", "", "write to this file instead of standard output")
	cacheDSN := fs.String("cache", "", "layer cache: a SQLite file or postgres:// URL of a Drydock store (default: none)")
	insecure := fs.Bool("insecure", false, "allow plain HTTP to the registry")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: want exactly one TARGET", errUsage)
	}
	switch *format {
	case "cyclonedx", "spdx", "table", "json":
	default:
		return fmt.Errorf("%w: unknown output format %q", errUsage, *format)
	}
	target, err := source.Parse(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	invs, err := indexTarget(ctx, e, target, *cacheDSN, source.Options{Platform: *platform, Insecure: *insecure})
	if err != nil {
		return err
	}
	for _, inv := range invs {
		if inv.OS == nil {
			e.log.Info(inv.OSNote, "image", inv.Name, "platform", inv.Platform)
		}
		for _, w := range inv.Warnings {
			e.log.Warn(w, "image", inv.Name, "platform", inv.Platform)
		}
	}

	w := e.stdout
	var f *os.File
	if *out != "" {
		if f, err = os.Create(*out); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	if err := writeSBOM(bw, *format, fs.Arg(0), invs); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f != nil {
		return f.Close()
	}
	return nil
}

func writeSBOM(w io.Writer, format, target string, invs []*index.Inventory) error {
	o := report.Options{Tool: report.Tool{Name: "drydock", Version: buildVersion()}}
	switch format {
	case "cyclonedx":
		return report.WriteCycloneDX(w, target, invs, o)
	case "spdx":
		return report.WriteSPDX(w, target, invs, o)
	case "table":
		return report.WriteTable(w, invs)
	case "json":
		return report.WriteJSON(w, invs)
	}
	return errors.New("unknown format " + format)
}

// buildVersion is the module version the binary was built from.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return strings.TrimPrefix(bi.Main.Version, "v")
	}
	return "devel"
}
