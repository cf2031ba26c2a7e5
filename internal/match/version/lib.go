package version

import "github.com/google/osv-scalibr/semantic"

// lib wraps a version parsed by osv-scalibr's semantic package.
type lib struct{ v semantic.Version }

func (a lib) compare(o ordered) int {
	// Both sides come from the same scalibr parser, so the only error
	// Compare can return (different concrete types) cannot happen.
	c, _ := a.v.Compare(o.(lib).v)
	return c
}

func parseLib(ecosystem, s string) (ordered, error) {
	v, err := semantic.Parse(s, ecosystem)
	if err != nil {
		return nil, err
	}
	return lib{v}, nil
}

func parsePEP440(s string) (ordered, error) { return parseLib("PyPI", s) }
func parseNuGet(s string) (ordered, error)  { return parseLib("NuGet", s) }
