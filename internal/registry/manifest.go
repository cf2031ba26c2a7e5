package registry

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydockhq/drydock/internal/store"
)

// Docker's media types (image-spec defines only the OCI ones).
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	mediaTypeOCINondistPrefix   = "application/vnd.oci.image.layer.nondistributable."
)

// MaxManifestSize is the largest manifest accepted (4 MiB, the limit other
// registries and clients use).
const MaxManifestSize = 4 << 20

// manifestInfo is what the registry needs to know of a manifest to store
// it: its media type, what it references, and what the referrers API
// reports of it.
type manifestInfo struct {
	mediaType    string
	artifactType string
	subject      string
	annotations  map[string]string
	blobs        []store.BlobRef
	manifests    []string
}

// probe is the part of a manifest that tells which kind it is.
type probe struct {
	SchemaVersion *int            `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Config        json.RawMessage `json:"config"`
	Manifests     json.RawMessage `json:"manifests"`
}

func invalidManifest(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, CodeManifestInvalid, format, args...)
}

// parseManifest validates a manifest body sent with the given Content-Type
// and returns what it references. It accepts OCI image manifests and
// indexes and Docker schema 2 manifests and manifest lists.
func parseManifest(body []byte, contentType string) (manifestInfo, *Error) {
	var p probe
	if err := json.Unmarshal(body, &p); err != nil {
		return manifestInfo{}, invalidManifest("manifest is not valid JSON: %v", err)
	}
	ct := ""
	if contentType != "" {
		if mt, _, err := mime.ParseMediaType(contentType); err == nil {
			ct = mt
		}
	}
	mt := p.MediaType
	if mt != "" && ct != "" && mt != ct {
		return manifestInfo{}, invalidManifest("manifest media type %q does not match Content-Type %q", truncate(mt), truncate(ct))
	}
	if mt == "" {
		mt = ct
	}
	if p.SchemaVersion == nil || *p.SchemaVersion != 2 {
		return manifestInfo{}, invalidManifest("manifest schemaVersion must be 2 (Docker schema 1 is not supported)")
	}
	switch mt {
	case v1.MediaTypeImageManifest, MediaTypeDockerManifest:
		return parseImageManifest(body, mt)
	case v1.MediaTypeImageIndex, MediaTypeDockerManifestList:
		return parseIndex(body, mt)
	case "":
		return manifestInfo{}, invalidManifest("manifest has no media type (set mediaType or Content-Type)")
	default:
		return manifestInfo{}, invalidManifest("unsupported manifest media type %q", truncate(mt))
	}
}

func checkDescriptor(what string, d v1.Descriptor) *Error {
	if err := d.Digest.Validate(); err != nil {
		return newError(http.StatusBadRequest, CodeManifestInvalid, "%s has an invalid digest %q", what, truncate(string(d.Digest)))
	}
	if d.Size < 0 {
		return invalidManifest("%s has a negative size", what)
	}
	if d.MediaType == "" {
		return invalidManifest("%s has no mediaType", what)
	}
	return nil
}

func nondistributable(mediaType string) bool {
	return strings.HasPrefix(mediaType, mediaTypeOCINondistPrefix) || mediaType == mediaTypeDockerForeignLayer
}

func parseImageManifest(body []byte, mt string) (manifestInfo, *Error) {
	var m v1.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return manifestInfo{}, invalidManifest("invalid image manifest: %v", err)
	}
	if m.Config.Digest == "" {
		return manifestInfo{}, invalidManifest("image manifest has no config")
	}
	if e := checkDescriptor("config", m.Config); e != nil {
		return manifestInfo{}, e
	}
	info := manifestInfo{mediaType: mt, artifactType: m.ArtifactType, annotations: m.Annotations}
	if info.artifactType == "" {
		info.artifactType = m.Config.MediaType
	}
	info.blobs = append(info.blobs, store.BlobRef{Digest: m.Config.Digest.String(), Size: m.Config.Size})
	for _, l := range m.Layers {
		if e := checkDescriptor("layer", l); e != nil {
			return manifestInfo{}, e
		}
		if nondistributable(l.MediaType) {
			continue // its bytes live elsewhere (urls), never pushed here
		}
		info.blobs = append(info.blobs, store.BlobRef{Digest: l.Digest.String(), Size: l.Size})
	}
	if e := setSubject(&info, m.Subject); e != nil {
		return manifestInfo{}, e
	}
	return info, nil
}

func parseIndex(body []byte, mt string) (manifestInfo, *Error) {
	var idx v1.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		return manifestInfo{}, invalidManifest("invalid index: %v", err)
	}
	info := manifestInfo{mediaType: mt, artifactType: idx.ArtifactType, annotations: idx.Annotations}
	for _, d := range idx.Manifests {
		if e := checkDescriptor("index entry", d); e != nil {
			return manifestInfo{}, e
		}
		info.manifests = append(info.manifests, d.Digest.String())
	}
	if e := setSubject(&info, idx.Subject); e != nil {
		return manifestInfo{}, e
	}
	return info, nil
}

// setSubject records a manifest's subject. The subject need not exist: the
// specification lets a referrer be pushed before what it refers to.
func setSubject(info *manifestInfo, s *v1.Descriptor) *Error {
	if s == nil {
		return nil
	}
	if e := checkDescriptor("subject", *s); e != nil {
		return e
	}
	info.subject = s.Digest.String()
	return nil
}

// manifestDigest computes the digest of a manifest body with the algorithm
// of the reference it was pushed by (sha256 for a tag).
func manifestDigest(body []byte, alg digest.Algorithm) digest.Digest {
	if alg == "" {
		alg = digest.Canonical
	}
	return alg.FromBytes(body)
}
