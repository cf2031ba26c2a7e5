// Package scan is Drydock's scanning service: the registry scanning
// configuration with its rules and filters, the durable queue of scan jobs
// and its workers, scan execution (index an image, match it against the
// vulnerability database) and the findings store that serves both the ECR
// and the Inspector views.
package scan

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ScanType is the registry's scanning type.
type ScanType string

// The scan types.
const (
	Basic    ScanType = "BASIC"
	Enhanced ScanType = "ENHANCED"
)

// Frequency is how often a repository's images are scanned.
type Frequency string

// The scan frequencies.
const (
	ScanOnPush     Frequency = "SCAN_ON_PUSH"
	ContinuousScan Frequency = "CONTINUOUS_SCAN"
	Manual         Frequency = "MANUAL"
)

// FilterWildcard is the only repository filter type.
const FilterWildcard = "WILDCARD"

// Filter selects repositories by name.
type Filter struct {
	Filter     string `json:"filter"`
	FilterType string `json:"filterType"`
}

// Rule is one scanning rule: a frequency for the repositories matching any
// of its filters.
type Rule struct {
	ScanFrequency     Frequency `json:"scanFrequency"`
	RepositoryFilters []Filter  `json:"repositoryFilters"`
}

// Config is the registry scanning configuration.
type Config struct {
	ScanType ScanType `json:"scanType"`
	Rules    []Rule   `json:"rules"`
}

// DefaultConfig is the configuration of a registry never configured: basic
// scanning without rules.
func DefaultConfig() Config { return Config{ScanType: Basic, Rules: []Rule{}} }

// Limits of a configuration (ECR's model).
const (
	MaxRules        = 2
	MaxFilters      = 100
	MaxFilterLength = 255
)

var filterPattern = regexp.MustCompile(`^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$`)

// ValidationError is a configuration the API must refuse; its message says
// what is wrong in the words of the API's fields.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &ValidationError{Msg: fmt.Sprintf(format, args...)}
}

// Normalize fills what a request may leave out (an empty scan type means
// BASIC, no rules an empty list) and validates the result.
func (c Config) Normalize() (Config, error) {
	if c.ScanType == "" {
		c.ScanType = Basic
	}
	if c.Rules == nil {
		c.Rules = []Rule{}
	}
	return c, c.Validate()
}

// Validate checks the configuration against the API's constraints.
func (c Config) Validate() error {
	if c.ScanType != Basic && c.ScanType != Enhanced {
		return invalid("Value '%s' at 'scanType' failed to satisfy constraint: Member must satisfy enum value set: [BASIC, ENHANCED]", c.ScanType)
	}
	if len(c.Rules) > MaxRules {
		return invalid("Value at 'rules' failed to satisfy constraint: Member must have length less than or equal to %d", MaxRules)
	}
	for i, r := range c.Rules {
		switch r.ScanFrequency {
		case ScanOnPush:
		case ContinuousScan:
			if c.ScanType == Basic {
				return invalid("rules.%d.scanFrequency: CONTINUOUS_SCAN is only valid with scanType ENHANCED", i+1)
			}
		case Manual:
			return invalid("rules.%d.scanFrequency: MANUAL cannot be set in a rule; repositories that match no rule are manual", i+1)
		default:
			return invalid("Value '%s' at 'rules.%d.member.scanFrequency' failed to satisfy constraint: Member must satisfy enum value set: [SCAN_ON_PUSH, CONTINUOUS_SCAN, MANUAL]", r.ScanFrequency, i+1)
		}
		if r.RepositoryFilters == nil {
			return invalid("rules.%d.repositoryFilters is required", i+1)
		}
		if len(r.RepositoryFilters) > MaxFilters {
			return invalid("Value at 'rules.%d.member.repositoryFilters' failed to satisfy constraint: Member must have length less than or equal to %d", i+1, MaxFilters)
		}
		for j, f := range r.RepositoryFilters {
			if err := f.validate(); err != nil {
				return invalid("rules.%d.repositoryFilters.%d: %v", i+1, j+1, err)
			}
		}
	}
	return nil
}

func (f Filter) validate() error {
	if f.FilterType != FilterWildcard {
		return fmt.Errorf("filterType %q must be WILDCARD", f.FilterType)
	}
	if len(f.Filter) < 1 || len(f.Filter) > MaxFilterLength {
		return fmt.Errorf("filter must be 1 to %d characters long", MaxFilterLength)
	}
	if !filterPattern.MatchString(f.Filter) {
		return fmt.Errorf("filter %q must match %s", f.Filter, filterPattern)
	}
	return nil
}

// Matches reports whether the filter selects the repository: a filter
// without '*' matches every name containing it; with '*' it must match the
// whole name, each '*' standing for any run of characters, '/' included.
func (f Filter) Matches(repository string) bool {
	if !strings.Contains(f.Filter, "*") {
		return strings.Contains(repository, f.Filter)
	}
	return globMatch(f.Filter, repository)
}

// globMatch matches a pattern whose only metacharacter is '*' against the
// whole of s, with the classic greedy-with-backtrack loop (linear in
// practice, no regexp compiled per filter and repository).
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// RepositoryConfig is the effective scanning configuration of one
// repository.
type RepositoryConfig struct {
	RepositoryName string
	// ScanOnPush is true when images are scanned when pushed (scan on push
	// or continuous).
	ScanOnPush    bool
	ScanFrequency Frequency
	// AppliedScanFilters are the filters of the winning rule that matched.
	AppliedScanFilters []Filter
}

// allRepositories is the implicit rule of ENHANCED without rules.
var allRepositories = Rule{ScanFrequency: ContinuousScan, RepositoryFilters: []Filter{{Filter: "*", FilterType: FilterWildcard}}}

// Effective returns the configuration that applies to a repository under c.
// repoScanOnPush is the repository's own (deprecated) scanOnPush setting,
// which under BASIC counts as scan on push with no applied filter.
// Continuous scanning wins over scan on push; a repository no rule matches
// is MANUAL (under ENHANCED: not scanned).
func (c Config) Effective(repository string, repoScanOnPush bool) RepositoryConfig {
	rules := c.Rules
	if c.ScanType == Enhanced && len(rules) == 0 {
		rules = []Rule{allRepositories}
	}
	out := RepositoryConfig{RepositoryName: repository, ScanFrequency: Manual, AppliedScanFilters: []Filter{}}
	for _, want := range []Frequency{ContinuousScan, ScanOnPush} {
		if want == ContinuousScan && c.ScanType != Enhanced {
			continue
		}
		var applied []Filter
		for _, r := range rules {
			if r.ScanFrequency != want {
				continue
			}
			for _, f := range r.RepositoryFilters {
				if f.Matches(repository) {
					applied = append(applied, f)
				}
			}
		}
		if len(applied) > 0 {
			out.ScanFrequency, out.ScanOnPush, out.AppliedScanFilters = want, true, applied
			return out
		}
	}
	if c.ScanType == Basic && repoScanOnPush {
		out.ScanFrequency, out.ScanOnPush = ScanOnPush, true
	}
	return out
}

// ErrNotSupported is returned for an operation the scan type does not
// allow (StartImageScan under ENHANCED).
var ErrNotSupported = errors.New("scan: not supported with enhanced scanning")
