package registry

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// MaxNameLength bounds a repository name, as other registries do.
const MaxNameLength = 255

var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// ErrInvalidName is returned by ValidateName.
var ErrInvalidName = errors.New("invalid repository name")

// ValidateName checks a repository name against the specification's
// grammar: lower-case path components separated by '/', each made of
// alphanumerics joined by '.', '_', '__' or runs of '-'.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLength || !nameRE.MatchString(name) {
		return ErrInvalidName
	}
	return nil
}

// ValidTag reports whether s is a valid tag.
func ValidTag(s string) bool { return tagRE.MatchString(s) }

// routeKind is which endpoint a request addresses.
type routeKind int

const (
	routeBase routeKind = iota
	routeCatalog
	routeTags
	routeManifest
	routeBlob
	routeUpload // upload == "" for the POST that starts one
	routeReferrers
)

// route is a parsed /v2/ path.
type route struct {
	kind routeKind
	name string
	// ref is the tag or digest of a manifest, or the digest of a blob or
	// referrers subject.
	ref string
	// upload is an upload session id.
	upload string
}

// parseRoute splits an escaped URL path of the /v2/ API. Repository names
// never contain escaped characters: a name with '%' (such as "%2e%2e") is
// invalid, so encoded path tricks cannot reach a handler.
func parseRoute(escaped string) (route, *Error) {
	rest, ok := strings.CutPrefix(escaped, "/v2")
	if !ok {
		return route{}, newError(http.StatusNotFound, CodeUnsupported, "not a registry API path")
	}
	if rest == "" || rest == "/" {
		return route{kind: routeBase}, nil
	}
	rest, ok = strings.CutPrefix(rest, "/")
	if !ok {
		return route{}, newError(http.StatusNotFound, CodeUnsupported, "not a registry API path")
	}
	if rest == "_catalog" {
		return route{kind: routeCatalog}, nil
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	var rt route
	var nameSegs []string
	switch {
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		rt, nameSegs = route{kind: routeTags}, segs[:n-2]
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		rt, nameSegs = route{kind: routeUpload, upload: segs[n-1]}, segs[:n-3]
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		rt, nameSegs = route{kind: routeUpload}, segs[:n-2]
	case n >= 3 && segs[n-2] == "blobs":
		rt, nameSegs = route{kind: routeBlob, ref: segs[n-1]}, segs[:n-2]
	case n >= 3 && segs[n-2] == "manifests":
		rt, nameSegs = route{kind: routeManifest, ref: segs[n-1]}, segs[:n-2]
	case n >= 3 && segs[n-2] == "referrers":
		rt, nameSegs = route{kind: routeReferrers, ref: segs[n-1]}, segs[:n-2]
	default:
		return route{}, newError(http.StatusNotFound, CodeUnsupported, "not a registry API path")
	}
	rt.name = strings.Join(nameSegs, "/")
	if ValidateName(rt.name) != nil {
		return route{}, newError(http.StatusBadRequest, CodeNameInvalid, "invalid repository name").withDetail(map[string]string{"name": truncate(rt.name)})
	}
	if rt.ref != "" {
		ref, err := url.PathUnescape(rt.ref)
		if err != nil || ref == "" {
			return route{}, newError(http.StatusBadRequest, CodeDigestInvalid, "invalid reference")
		}
		rt.ref = ref
	} else if rt.kind != routeUpload && rt.kind != routeTags {
		return route{}, newError(http.StatusNotFound, CodeUnsupported, "not a registry API path")
	}
	return rt, nil
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// parseDigest parses a digest whose algorithm this registry supports.
func parseDigest(s string) (digest.Digest, *Error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", newError(http.StatusBadRequest, CodeDigestInvalid, "invalid digest %q", truncate(s))
	}
	return d, nil
}

// isDigestRef reports whether a manifest reference is a digest rather than
// a tag (tags cannot contain ':').
func isDigestRef(ref string) bool { return strings.Contains(ref, ":") }
