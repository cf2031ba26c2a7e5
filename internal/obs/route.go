package obs

import (
	"net/http"
	"strings"
)

// RouteClass names the kind of request r is, for metric labels: the OCI
// Distribution endpoints ("v2", "catalog", "manifest", "blob",
// "blob_upload", "tags", "referrers"), the AWS-style APIs ("ecr" for
// X-Amz-Target requests, "api" for other POSTs outside /v2/), "metrics",
// "healthz", and "other".
func RouteClass(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == "/metrics":
		return "metrics"
	case p == "/healthz":
		return "healthz"
	case p == "/v2" || p == "/v2/":
		return "v2"
	case p == "/v2/_catalog":
		return "catalog"
	case strings.HasPrefix(p, "/v2/"):
		return distributionRoute(p[len("/v2/"):])
	case r.Header.Get("X-Amz-Target") != "":
		return "ecr"
	case r.Method == http.MethodPost:
		return "api"
	}
	return "other"
}

// distributionRoute classifies the part of a /v2/ path after the prefix:
// NAME/blobs/uploads/..., NAME/blobs/DIGEST, NAME/manifests/REF,
// NAME/tags/list, NAME/referrers/DIGEST. Repository names may hold '/', so
// the markers are searched from the right.
func distributionRoute(rest string) string {
	switch {
	case strings.HasSuffix(rest, "/blobs/uploads") || strings.HasSuffix(rest, "/blobs/uploads/") ||
		strings.Contains(rest, "/blobs/uploads/"):
		return "blob_upload"
	case strings.HasSuffix(rest, "/tags/list"):
		return "tags"
	}
	i := strings.LastIndexByte(strings.TrimSuffix(rest, "/"), '/')
	if i < 0 {
		return "other"
	}
	j := strings.LastIndexByte(rest[:i], '/')
	switch rest[j+1 : i] {
	case "blobs":
		return "blob"
	case "manifests":
		return "manifest"
	case "referrers":
		return "referrers"
	}
	return "other"
}
