// Package cvss computes the base score of a CVSS vector of any version
// Drydock meets in vulnerability feeds: v2.0, v3.0, v3.1 and v4.0.
//
// The arithmetic is FIRST's and comes from github.com/pandatix/go-cvss; this
// package only recognises the version from the vector, and for v4.0 scores
// the base metrics alone (CVSS-B), so a vector that also carries threat or
// environmental metrics still yields its base score.
package cvss

import (
	"errors"
	"fmt"
	"math"
	"strings"

	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

// Version is a CVSS version.
type Version string

// The versions this package scores.
const (
	V2  Version = "2.0"
	V30 Version = "3.0"
	V31 Version = "3.1"
	V40 Version = "4.0"
)

// Major returns the major version (2, 3 or 4).
func (v Version) Major() int {
	switch v {
	case V2:
		return 2
	case V30, V31:
		return 3
	case V40:
		return 4
	}
	return 0
}

// ErrUnknownVersion is returned for a vector whose prefix names no CVSS
// version this package knows.
var ErrUnknownVersion = errors.New("unknown CVSS version")

// v4BaseMetrics is how many metrics of a v4.0 vector are base metrics; the
// specification fixes their order, so they are the first ones.
const v4BaseMetrics = 11

// VersionOf returns the version a vector declares. A vector without a
// "CVSS:" prefix is v2.0, as NVD and OSV write v2 vectors.
func VersionOf(vector string) (Version, error) {
	vector = strings.TrimSpace(vector)
	if !strings.HasPrefix(vector, "CVSS:") {
		return V2, nil
	}
	head, _, _ := strings.Cut(vector, "/")
	switch v := Version(strings.TrimPrefix(head, "CVSS:")); v {
	case V2, V30, V31, V40:
		return v, nil
	default:
		return "", fmt.Errorf("%w: %q", ErrUnknownVersion, head)
	}
}

// BaseScore parses vector and returns its version and base score. For v4.0
// the score is computed from the base metrics only (CVSS-B).
func BaseScore(vector string) (float64, Version, error) {
	vector = strings.TrimSpace(vector)
	v, err := VersionOf(vector)
	if err != nil {
		return 0, "", err
	}
	var score float64
	switch v {
	case V2:
		c, perr := gocvss20.ParseVector(strings.TrimPrefix(vector, "CVSS:2.0/"))
		if perr != nil {
			err = perr
			break
		}
		score = c.BaseScore()
	case V30:
		c, perr := gocvss30.ParseVector(vector)
		if perr != nil {
			err = perr
			break
		}
		score = c.BaseScore()
	case V31:
		c, perr := gocvss31.ParseVector(vector)
		if perr != nil {
			err = perr
			break
		}
		score = c.BaseScore()
	case V40:
		// Validate the whole vector, then score its base metrics alone.
		if _, perr := gocvss40.ParseVector(vector); perr != nil {
			err = perr
			break
		}
		parts := strings.Split(vector, "/")
		if len(parts) > 1+v4BaseMetrics {
			parts = parts[:1+v4BaseMetrics]
		}
		c, perr := gocvss40.ParseVector(strings.Join(parts, "/"))
		if perr != nil {
			err = perr
			break
		}
		score = c.Score()
	}
	if err != nil {
		return 0, v, fmt.Errorf("CVSS %s vector %q: %w", v, vector, err)
	}
	// Scores have one decimal; remove float noise from the arithmetic.
	return math.Round(score*10) / 10, v, nil
}

// Rating returns the qualitative severity of a score as CVSS v3 and v4
// define it: NONE, LOW, MEDIUM, HIGH or CRITICAL. For v2, which has no
// official rating, NVD's bands (LOW below 4.0, MEDIUM below 7.0, HIGH) are
// used.
func Rating(score float64, v Version) string {
	if v == V2 {
		switch {
		case score < 4:
			return "LOW"
		case score < 7:
			return "MEDIUM"
		default:
			return "HIGH"
		}
	}
	switch {
	case score == 0:
		return "NONE"
	case score < 4:
		return "LOW"
	case score < 7:
		return "MEDIUM"
	case score < 9:
		return "HIGH"
	default:
		return "CRITICAL"
	}
}
