package auth

import (
	"fmt"
	"strings"
)

// Grant allows one action on the repositories whose names match Pattern.
// A grant of ActionAdmin allows everything everywhere.
type Grant struct {
	Action Action
	// Pattern is a repository name in which '*' stands for any run of
	// characters, '/' included ("team/*" matches "team/app/api"; "*"
	// matches every repository).
	Pattern string
}

func (g Grant) String() string { return string(g.Action) + ":" + g.Pattern }

// grantable are the actions a grant may name. ActionCatalog is not one of
// them: listing the catalog comes with any pull grant.
var grantable = map[Action]bool{
	ActionAdmin:        true,
	ActionPull:         true,
	ActionPush:         true,
	ActionDelete:       true,
	ActionReadFindings: true,
}

// Validate reports whether g names a grantable action and a usable pattern.
func (g Grant) Validate() error {
	if !grantable[g.Action] {
		return fmt.Errorf("auth: %q is not a grantable action (admin, pull, push, delete, read-findings)", g.Action)
	}
	if g.Pattern == "" || len(g.Pattern) > 256 {
		return fmt.Errorf("auth: grant %s: the repository pattern must be 1 to 256 characters", g)
	}
	for _, c := range g.Pattern {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/*", c)) {
			return fmt.Errorf("auth: grant %s: a repository pattern holds lower-case letters, digits, '.', '_', '-', '/' and '*'", g)
		}
	}
	return nil
}

// Can reports whether the principal may perform action on repo ("" for
// registry-wide actions).
//
// An admin grant allows everything. A push grant implies pull on the same
// repositories (clients read blobs back while pushing). Catalog listing is
// allowed to any principal that may pull from some repository; the
// registry filters the list with Can(name, ActionPull).
func (p Principal) Can(repo string, action Action) bool {
	for _, g := range p.Grants {
		if g.Action == ActionAdmin {
			return true
		}
		switch action {
		case ActionCatalog:
			if g.Action == ActionPull || g.Action == ActionPush {
				return true
			}
		case ActionPull:
			if (g.Action == ActionPull || g.Action == ActionPush) && matchPattern(g.Pattern, repo) {
				return true
			}
		case ActionAdmin:
			// only an admin grant, handled above
		default:
			if g.Action == action && repo != "" && matchPattern(g.Pattern, repo) {
				return true
			}
		}
	}
	return false
}

// matchPattern reports whether name matches pattern, in which '*' matches
// any run of characters. It runs in O(len(pattern)·len(name)) at worst, so
// hostile patterns cannot make it explode.
func matchPattern(pattern, name string) bool {
	if name == "" {
		return false
	}
	// Classic greedy wildcard matching with a single backtrack point.
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
