// Package langutil holds the small helpers the language catalogers share:
// bounded reads and package URLs.
package langutil

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/package-url/packageurl-go"
)

// ErrTooBig reports a file or archive member larger than the cataloger's
// limit.
var ErrTooBig = errors.New("larger than the size limit")

// ReadAll reads r to its end, refusing more than limit bytes. sizeHint, when
// positive, sizes the buffer once.
func ReadAll(r io.Reader, limit, sizeHint int64) ([]byte, error) {
	if sizeHint > limit {
		return nil, fmt.Errorf("%d bytes: %w", sizeHint, ErrTooBig)
	}
	var buf bytes.Buffer
	if sizeHint > 0 {
		buf.Grow(int(sizeHint) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("more than %d bytes: %w", limit, ErrTooBig)
	}
	return buf.Bytes(), nil
}

// PURL returns the canonical package URL of a package, normalised by the
// rules of its type (PyPI names lowercased with '-', and so on). It returns
// "" when the parts cannot make a valid package URL (an empty name).
func PURL(typ, namespace, name, version string, qualifiers ...string) string {
	var q packageurl.Qualifiers
	for i := 0; i+1 < len(qualifiers); i += 2 {
		if qualifiers[i+1] != "" {
			q = append(q, packageurl.Qualifier{Key: qualifiers[i], Value: qualifiers[i+1]})
		}
	}
	p := packageurl.NewPackageURL(typ, namespace, name, version, q, "")
	if err := p.Normalize(); err != nil {
		return ""
	}
	return p.ToString()
}

// SplitLast splits a slash-separated name at its last slash: the namespace
// and the name of a package URL ("@babel/core" → "@babel", "core").
func SplitLast(s string) (namespace, name string) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+1:]
}
