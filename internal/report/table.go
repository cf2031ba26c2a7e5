package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/drydockhq/drydock/internal/index"
)

// WriteTable writes a readable summary of each image and a table of its
// packages: name, version, type, ecosystem, the layer that introduced
// the package (short digest) and the file that declared it.
func WriteTable(w io.Writer, invs []*index.Inventory) error {
	for i, inv := range invs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "Image:    %s\n", inv.Name)
		if inv.Digest != "" {
			fmt.Fprintf(w, "Digest:   %s\n", inv.Digest)
		}
		if inv.Platform != "" {
			fmt.Fprintf(w, "Platform: %s\n", inv.Platform)
		}
		if inv.OS != nil {
			fmt.Fprintf(w, "OS:       %s\n", inv.OS)
		} else {
			fmt.Fprintf(w, "OS:       none (%s)\n", inv.OSNote)
		}
		cached := 0
		for _, l := range inv.Layers {
			if l.Cached {
				cached++
			}
		}
		fmt.Fprintf(w, "Layers:   %d (%d from cache)\n", len(inv.Layers), cached)
		fmt.Fprintf(w, "Packages: %d\n\n", len(inv.Packages))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tVERSION\tTYPE\tECOSYSTEM\tLAYER\tPATH")
		for _, p := range inv.Packages {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Version, p.Type, p.Ecosystem, shortDigest(p.Layer), "/"+p.Path)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, warn := range inv.Warnings {
			fmt.Fprintf(w, "warning: %s\n", warn)
		}
	}
	return nil
}

func shortDigest(d string) string {
	_, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) < 12 {
		return d
	}
	return hex[:12]
}
