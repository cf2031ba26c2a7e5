package scan

import (
	"reflect"
	"strings"
	"testing"
)

// TestFilterTable is AWS's filter table (contract §12.1), verbatim.
func TestFilterTable(t *testing.T) {
	repos := []string{"prod", "repo-prod", "prod-repo", "repo-prod-repo", "prodrepo"}
	table := map[string][]bool{
		"prod":      {true, true, true, true, true},
		"*prod":     {true, true, false, false, false},
		"prod*":     {true, false, true, false, true},
		"*prod*":    {true, true, true, true, true},
		"prod*repo": {false, false, true, false, true},
	}
	for filter, want := range table {
		for i, repo := range repos {
			f := Filter{Filter: filter, FilterType: FilterWildcard}
			if got := f.Matches(repo); got != want[i] {
				t.Errorf("filter %q repo %q: got %v, want %v", filter, repo, got, want[i])
			}
		}
	}
}

func TestFilterMoreCases(t *testing.T) {
	for _, c := range []struct {
		filter, repo string
		want         bool
	}{
		{"prod", "scanrepo-prod", true},
		{"*", "team/prod-api", true},
		{"team/*", "team/prod-api", true},
		{"team*api", "team/prod-api", true},
		{"*/api", "team/prod/api", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*a", "a", false},
		{"a**b", "ab", true},
	} {
		if got := (Filter{Filter: c.filter, FilterType: FilterWildcard}).Matches(c.repo); got != c.want {
			t.Errorf("filter %q repo %q: got %v, want %v", c.filter, c.repo, got, c.want)
		}
	}
}

func wild(fs ...string) []Filter {
	out := []Filter{}
	for _, f := range fs {
		out = append(out, Filter{Filter: f, FilterType: FilterWildcard})
	}
	return out
}

func TestValidate(t *testing.T) {
	ok := []Config{
		{},
		{ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("*")}}},
		{ScanType: Enhanced, Rules: []Rule{
			{ScanFrequency: ContinuousScan, RepositoryFilters: wild("prod", "team/*-api")},
			{ScanFrequency: ScanOnPush, RepositoryFilters: []Filter{}},
		}},
		{ScanType: Enhanced, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild(strings.Repeat("a", 255))}}},
	}
	for i, c := range ok {
		if _, err := c.Normalize(); err != nil {
			t.Errorf("valid config %d refused: %v", i, err)
		}
	}
	many := make([]Filter, 101)
	for i := range many {
		many[i] = Filter{Filter: "x", FilterType: FilterWildcard}
	}
	bad := map[string]Config{
		"scan type":            {ScanType: "FOO"},
		"three rules":          {ScanType: Enhanced, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("a")}, {ScanFrequency: ScanOnPush, RepositoryFilters: wild("b")}, {ScanFrequency: ContinuousScan, RepositoryFilters: wild("c")}}},
		"continuous on basic":  {ScanType: Basic, Rules: []Rule{{ScanFrequency: ContinuousScan, RepositoryFilters: wild("a")}}},
		"manual rule":          {ScanType: Enhanced, Rules: []Rule{{ScanFrequency: Manual, RepositoryFilters: wild("a")}}},
		"unknown frequency":    {ScanType: Enhanced, Rules: []Rule{{ScanFrequency: "DAILY", RepositoryFilters: wild("a")}}},
		"filter type":          {ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: []Filter{{Filter: "a", FilterType: "PREFIX"}}}}},
		"upper case":           {ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("Prod")}}},
		"leading dash":         {ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("-prod")}}},
		"trailing slash":       {ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("prod/")}}},
		"empty filter":         {ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("")}}},
		"256 chars":            {ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild(strings.Repeat("a", 256))}}},
		"101 filters":          {ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: many}}},
		"missing filters list": {ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush}}},
	}
	for name, c := range bad {
		if _, err := c.Normalize(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEffective(t *testing.T) {
	enhancedProd := Config{ScanType: Enhanced, Rules: []Rule{{ScanFrequency: ContinuousScan, RepositoryFilters: wild("prod")}}}
	both := Config{ScanType: Enhanced, Rules: []Rule{
		{ScanFrequency: ScanOnPush, RepositoryFilters: wild("*", "api*")},
		{ScanFrequency: ContinuousScan, RepositoryFilters: wild("*-prod")},
	}}
	basicOnPush := Config{ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("web")}}}
	for _, c := range []struct {
		name       string
		cfg        Config
		repo       string
		repoOnPush bool
		freq       Frequency
		onPush     bool
		applied    []Filter
	}{
		{"default basic", DefaultConfig(), "anything", false, Manual, false, []Filter{}},
		{"basic repo scanOnPush", DefaultConfig(), "anything", true, ScanOnPush, true, []Filter{}},
		{"basic rule", basicOnPush, "team/web-app", false, ScanOnPush, true, wild("web")},
		{"basic no match", basicOnPush, "api", false, Manual, false, []Filter{}},
		{"enhanced prod", enhancedProd, "scanrepo-prod", false, ContinuousScan, true, wild("prod")},
		{"enhanced off", enhancedProd, "scanrepo-test", false, Manual, false, []Filter{}},
		{"enhanced ignores repo scanOnPush", enhancedProd, "scanrepo-test", true, Manual, false, []Filter{}},
		{"enhanced no rules", Config{ScanType: Enhanced}, "x/y", false, ContinuousScan, true, wild("*")},
		{"continuous wins", both, "api-prod", false, ContinuousScan, true, wild("*-prod")},
		{"on push both filters", both, "api-test", false, ScanOnPush, true, wild("*", "api*")},
	} {
		got := c.cfg.Effective(c.repo, c.repoOnPush)
		want := RepositoryConfig{RepositoryName: c.repo, ScanOnPush: c.onPush, ScanFrequency: c.freq, AppliedScanFilters: c.applied}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, want)
		}
	}
}

func FuzzFilterMatches(f *testing.F) {
	for _, s := range [][2]string{{"prod*repo", "prod-repo"}, {"*", "a/b"}, {"a*b*c", "abc"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, repo string) {
		if !filterPattern.MatchString(filter) || !strings.Contains(filter, "*") {
			return
		}
		// The regexp translation from the contract is the reference.
		re := "^" + strings.ReplaceAll(regexpQuote(filter), `\*`, ".*") + "$"
		want := mustMatch(re, repo)
		if got := globMatch(filter, repo); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, regexp says %v", filter, repo, got, want)
		}
	})
}
