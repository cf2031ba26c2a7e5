// Package ruby catalogs installed Ruby gems from their specifications
// (GEM_HOME/specifications/NAME-VERSION.gemspec, the default gems under
// specifications/default, and Debian's rubygems-integration directories).
//
// An installed gemspec is Ruby code written by RubyGems. It is never
// executed: the name, version and licences are read from the assignments
// RubyGems writes ("s.name = "rack".freeze"), accepting only plain string
// literals; the file name gives the name and version when the code does
// not.
package ruby

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/internal/langutil"
)

// maxSize bounds a gemspec; installed ones are a few kilobytes.
const maxSize = 1 << 20

// Cataloger finds installed gems. The zero value is ready to use.
type Cataloger struct{}

// New returns a Ruby cataloger.
func New() *Cataloger { return &Cataloger{} }

// Name implements index.Cataloger.
func (*Cataloger) Name() string { return "ruby" }

// Version implements index.Cataloger.
func (*Cataloger) Version() int { return 1 }

// MaxSize implements index.Cataloger.
func (*Cataloger) MaxSize() int64 { return maxSize }

// Wants implements index.Cataloger.
func (*Cataloger) Wants(p string, mode fs.FileMode, _ int64) bool {
	if !mode.IsRegular() || !strings.HasSuffix(p, ".gemspec") {
		return false
	}
	dir := path.Dir(p)
	return path.Base(dir) == "specifications" ||
		path.Base(dir) == "default" && path.Base(path.Dir(dir)) == "specifications"
}

// Spec is what Drydock reads from a gemspec.
type Spec struct {
	Name, Version string
	Licenses      []string
}

// Catalog implements index.Cataloger.
func (*Cataloger) Catalog(_ context.Context, f index.File) ([]index.Package, error) {
	data, err := langutil.ReadAll(f.Reader, maxSize, f.Size)
	if err != nil {
		return nil, err
	}
	s := ParseGemspec(data)
	base := strings.TrimSuffix(path.Base(f.Path), ".gemspec")
	if s.Name == "" || s.Version == "" {
		// RubyGems names the file NAME-VERSION.gemspec.
		if i := strings.LastIndexByte(base, '-'); i > 0 && s.Name == "" {
			s.Name = base[:i]
		}
		if s.Name != "" && s.Version == "" && strings.HasPrefix(base, s.Name+"-") {
			s.Version = base[len(s.Name)+1:]
		}
	}
	if s.Name == "" || s.Version == "" {
		return nil, fmt.Errorf("gemspec without a literal name and version")
	}
	return []index.Package{{
		Type:      index.TypeGem,
		Ecosystem: "RubyGems",
		Name:      s.Name,
		Version:   s.Version,
		Licenses:  s.Licenses,
		PURL:      langutil.PURL("gem", "", s.Name, s.Version),
		Path:      f.Path,
	}}, nil
}

// ParseGemspec reads the literal name, version and licences of a gemspec.
func ParseGemspec(data []byte) Spec {
	var s Spec
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxSize)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "# stub: "); ok {
			// "# stub: NAME VERSION PLATFORM PATHS" heads the stub specs
			// RubyGems writes; the assignments below override it.
			if f := strings.Fields(rest); len(f) >= 2 && s.Name == "" {
				s.Name, s.Version = f[0], f[1]
			}
			continue
		}
		attr, value, ok := assignment(line)
		if !ok {
			continue
		}
		switch attr {
		case "name":
			if v, ok := stringLiteral(value); ok {
				s.Name = v
			}
		case "version":
			if v, ok := stringLiteral(value); ok {
				s.Version = v
			}
		case "license":
			if v, ok := stringLiteral(value); ok && v != "" {
				s.Licenses = []string{v}
			}
		case "licenses":
			s.Licenses = stringArray(value)
		}
	}
	return s
}

// assignment splits "IDENT.attr = value" (any receiver name).
func assignment(line string) (attr, value string, ok bool) {
	lhs, rhs, ok := strings.Cut(line, "=")
	if !ok || strings.HasPrefix(rhs, "=") || strings.HasPrefix(rhs, "~") {
		return "", "", false
	}
	lhs = strings.TrimSpace(lhs)
	dot := strings.IndexByte(lhs, '.')
	if dot <= 0 || !isIdent(lhs[:dot]) || !isIdent(lhs[dot+1:]) {
		return "", "", false
	}
	return lhs[dot+1:], strings.TrimSpace(rhs), true
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// stringLiteral reads a plain Ruby string literal at the start of s ("x",
// 'x', %q{x}, %q<x>), optionally followed by .freeze and nothing else but a
// trailing condition. Interpolation makes it not plain.
func stringLiteral(s string) (string, bool) {
	v, rest, ok := literal(s)
	if !ok {
		return "", false
	}
	rest = strings.TrimPrefix(strings.TrimSpace(rest), ".freeze")
	rest = strings.TrimSpace(rest)
	if rest != "" && !strings.HasPrefix(rest, "if ") && !strings.HasPrefix(rest, "#") {
		return "", false
	}
	return v, true
}

// literal reads one literal and returns what follows it.
func literal(s string) (value, rest string, ok bool) {
	if len(s) < 2 {
		return "", "", false
	}
	var end byte
	switch {
	case s[0] == '"' || s[0] == '\'':
		end = s[0]
		s = s[1:]
	case strings.HasPrefix(s, "%q") && len(s) > 3:
		switch s[2] {
		case '{':
			end = '}'
		case '<':
			end = '>'
		case '(':
			end = ')'
		case '[':
			end = ']'
		default:
			end = s[2]
		}
		s = s[3:]
	default:
		return "", "", false
	}
	i := strings.IndexByte(s, end)
	if i < 0 {
		return "", "", false
	}
	v := s[:i]
	if strings.ContainsAny(v, "\\") || end == '"' && strings.Contains(v, "#{") {
		return "", "", false
	}
	return v, s[i+1:], true
}

// stringArray reads ["a".freeze, "b".freeze].
func stringArray(s string) []string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") {
		return nil
	}
	s = s[1:]
	var out []string
	for {
		s = strings.TrimSpace(s)
		v, rest, ok := literal(s)
		if !ok {
			return out
		}
		if v != "" {
			out = append(out, v)
		}
		rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ".freeze"))
		if !strings.HasPrefix(rest, ",") {
			return out
		}
		s = rest[1:]
	}
}
