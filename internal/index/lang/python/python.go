// Package python catalogs installed Python distributions from their core
// metadata: *.dist-info/METADATA (wheels), *.egg-info/PKG-INFO and
// *.egg-info files (setuptools eggs, as Debian installs them in
// dist-packages), and *.egg/EGG-INFO/PKG-INFO.
package python

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/internal/langutil"
)

// maxSize bounds a metadata file. Only the header block is read, so the
// limit concerns the headers; the long description after them is never
// read.
const maxSize = 8 << 20

// maxHeaderBytes bounds the header block actually parsed.
const maxHeaderBytes = 1 << 20

// Cataloger finds Python distributions. The zero value is ready to use.
type Cataloger struct{}

// New returns a Python cataloger.
func New() *Cataloger { return &Cataloger{} }

// Name implements index.Cataloger.
func (*Cataloger) Name() string { return "python" }

// Version implements index.Cataloger.
func (*Cataloger) Version() int { return 1 }

// MaxSize implements index.Cataloger.
func (*Cataloger) MaxSize() int64 { return maxSize }

// Wants implements index.Cataloger.
func (*Cataloger) Wants(p string, mode fs.FileMode, _ int64) bool {
	if !mode.IsRegular() {
		return false
	}
	switch {
	case strings.HasSuffix(p, "/METADATA"):
		return strings.HasSuffix(p, ".dist-info/METADATA")
	case strings.HasSuffix(p, "/PKG-INFO"):
		return strings.HasSuffix(p, ".egg-info/PKG-INFO") || strings.HasSuffix(p, ".egg/EGG-INFO/PKG-INFO")
	}
	return strings.HasSuffix(p, ".egg-info")
}

// Catalog implements index.Cataloger.
func (*Cataloger) Catalog(_ context.Context, f index.File) ([]index.Package, error) {
	m, err := ParseMetadata(f.Reader)
	if err != nil {
		return nil, err
	}
	if m.Name == "" || m.Version == "" {
		return nil, fmt.Errorf("core metadata without Name or Version")
	}
	return []index.Package{{
		Type:      index.TypePython,
		Ecosystem: "PyPI",
		Name:      m.Name,
		Version:   m.Version,
		Licenses:  m.Licenses(),
		PURL:      langutil.PURL("pypi", "", m.Name, m.Version),
		Path:      f.Path,
	}}, nil
}

// Metadata is the part of a distribution's core metadata Drydock uses.
type Metadata struct {
	Name, Version string
	// License is the free-text License field; LicenseExpression the SPDX
	// License-Expression of metadata 2.4; Classifiers the "License ::"
	// trove classifiers, without that prefix.
	License           string
	LicenseExpression string
	Classifiers       []string
}

// Licenses returns the licences the metadata declares, best source first:
// the SPDX expression, else a short License field, else the trove
// classifiers.
func (m *Metadata) Licenses() []string {
	if m.LicenseExpression != "" {
		return []string{m.LicenseExpression}
	}
	if l := m.License; l != "" && !strings.EqualFold(l, "UNKNOWN") && len(l) <= 128 && !strings.Contains(l, "\n") {
		return []string{l}
	}
	if len(m.Classifiers) > 0 {
		return m.Classifiers
	}
	return nil
}

var errBinary = errors.New("not a core metadata file (NUL byte)")

// ParseMetadata reads the header block of a core metadata file (RFC 822
// style "Key: value" lines, continuation lines indented) and stops at the
// first blank line, where the description begins.
func ParseMetadata(r io.Reader) (*Metadata, error) {
	br := bufio.NewReaderSize(r, 4096)
	m := &Metadata{}
	var key string // the header the last line belonged to
	read := 0
	for {
		line, err := br.ReadSlice('\n')
		read += len(line)
		raw := string(line)
		// A header line longer than the buffer: keep its start, drop the
		// rest of the line.
		for err == bufio.ErrBufferFull {
			line, err = br.ReadSlice('\n')
			read += len(line)
		}
		if read > maxHeaderBytes {
			return nil, fmt.Errorf("metadata headers: %w", langutil.ErrTooBig)
		}
		if len(raw) > 0 {
			if strings.IndexByte(raw, 0) >= 0 {
				return nil, errBinary
			}
			s := strings.TrimRight(raw, "\r\n")
			if s == "" {
				break // end of the header block
			}
			if s[0] == ' ' || s[0] == '\t' {
				if key == "License" {
					m.License += "\n" + strings.TrimSpace(s)
				}
			} else if k, v, ok := strings.Cut(s, ":"); ok {
				key = k
				v = strings.TrimSpace(v)
				switch k {
				case "Name":
					m.Name = v
				case "Version":
					m.Version = v
				case "License":
					m.License = v
				case "License-Expression":
					m.LicenseExpression = v
				case "Classifier":
					if l, ok := strings.CutPrefix(v, "License :: "); ok {
						if i := strings.LastIndex(l, " :: "); i >= 0 {
							l = l[i+4:]
						}
						m.Classifiers = append(m.Classifiers, l)
					}
				}
			} else {
				key = ""
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading metadata: %w", err)
		}
	}
	return m, nil
}

// NormalizeName returns the PEP 503 normalised form of a distribution name,
// the form package indexes and advisories match on: lowercased, with each
// run of '-', '_' and '.' replaced by a single '-'.
func NormalizeName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' || c == '_' || c == '.' {
			for i+1 < len(name) && (name[i+1] == '-' || name[i+1] == '_' || name[i+1] == '.') {
				i++
			}
			c = '-'
		} else if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}
