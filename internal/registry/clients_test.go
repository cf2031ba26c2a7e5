package registry_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/drydockhq/drydock/internal/testutil"
)

// layoutDigest returns the manifest digest the OCI layout's index.json
// names for a tag (org.opencontainers.image.ref.name), or its only entry.
func layoutDigest(t *testing.T, dir, tag string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	for _, m := range idx.Manifests {
		if tag == "" && len(idx.Manifests) == 1 || m.Annotations["org.opencontainers.image.ref.name"] == tag {
			return m.Digest
		}
	}
	t.Fatalf("no manifest for %q in %s", tag, b)
	return ""
}

// registryDigest asks the registry (with credentials) for a manifest's
// digest.
func registryDigest(t *testing.T, srv *server, pw, repo, ref string) string {
	t.Helper()
	req, _ := http.NewRequest("HEAD", srv.URL+"/v2/"+repo+"/manifests/"+ref, nil)
	req.SetBasicAuth("AWS", pw)
	for _, mt := range []string{"application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json"} {
		req.Header.Add("Accept", mt)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("HEAD %s:%s: %d", repo, ref, res.StatusCode)
	}
	return res.Header.Get("Docker-Content-Digest")
}

// gunzipTo writes the decompressed fixture to a temp file.
func gunzipTo(t *testing.T, src string) string {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(src), ".gz"))
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestSkopeo copies real images between OCI layouts (and docker archives)
// and Drydock in both directions and checks that the manifest digests are
// kept: the layout's, the registry's and the copied-back layout's agree.
func TestSkopeo(t *testing.T) {
	skopeo := testutil.RequireTool(t, "skopeo")
	dataDir := t.TempDir()
	for _, r := range []string{"library/alpine", "library/hello", "multi/index"} {
		drydock(t, "repo", "create", "--data-dir", dataDir, r)
	}
	srv := startServer(t, dataDir)
	pw := srv.password(t)
	creds := "AWS:" + pw
	sk := func(args ...string) string {
		return run(t, []string{"TMPDIR=" + t.TempDir()}, skopeo, append([]string{"--insecure-policy"}, args...)...)
	}

	// docker-archive → OCI layout (the source of truth for the digest).
	alpineTar := gunzipTo(t, testutil.Fixture(t, "images/alpine-3.10-docker-archive.tar.gz"))
	src := filepath.Join(t.TempDir(), "alpine")
	sk("copy", "docker-archive:"+alpineTar, "oci:"+src+":3.10")
	want := layoutDigest(t, src, "3.10")

	// OCI layout → Drydock → OCI layout.
	sk("copy", "--dest-tls-verify=false", "--dest-creds", creds, "oci:"+src+":3.10", "docker://"+srv.Host+"/library/alpine:3.10")
	if got := registryDigest(t, srv, pw, "library/alpine", "3.10"); got != want {
		t.Fatalf("registry digest %s, layout digest %s", got, want)
	}
	back := filepath.Join(t.TempDir(), "back")
	sk("copy", "--src-tls-verify=false", "--src-creds", creds, "docker://"+srv.Host+"/library/alpine:3.10", "oci:"+back+":3.10")
	if got := layoutDigest(t, back, "3.10"); got != want {
		t.Fatalf("copied back digest %s, want %s", got, want)
	}
	out := sk("inspect", "--tls-verify=false", "--creds", creds, "docker://"+srv.Host+"/library/alpine:3.10")
	if !strings.Contains(out, want) {
		t.Fatalf("skopeo inspect does not show %s:\n%s", want, out)
	}

	// A Docker-format image straight from a docker archive (Docker 25).
	sk("copy", "--dest-tls-verify=false", "--dest-creds", creds,
		"docker-archive:"+testutil.Fixture(t, "images/hello-world-v25.tar"), "docker://"+srv.Host+"/library/hello:latest")
	// Copied back into a dir: layout, which keeps the manifest bytes as
	// they are (an OCI layout would convert the Docker manifest).
	helloBack := filepath.Join(t.TempDir(), "hello")
	sk("copy", "--src-tls-verify=false", "--src-creds", creds, "docker://"+srv.Host+"/library/hello:latest", "dir:"+helloBack)
	m, err := os.ReadFile(filepath.Join(helloBack, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := digest.FromBytes(m).String(), registryDigest(t, srv, pw, "library/hello", "latest"); got != want {
		t.Fatalf("hello-world copied back as %s, registry has %s", got, want)
	}
	if !bytes.Contains(m, []byte("application/vnd.docker.distribution.manifest.v2+json")) {
		t.Fatalf("hello-world is not a Docker schema 2 manifest: %s", m)
	}

	// A multi-image layout: an OCI index of indexes, pushed whole with its
	// digest. (Its Docker manifest list entry is pushed by TestCraneOras:
	// skopeo does not read Docker lists from OCI layouts.)
	layouts := testutil.Fixture(t, "images/oci-layouts/test_index")
	for _, c := range []struct{ tag, repo string }{{"3", "multi/index"}} {
		want := layoutDigest(t, layouts, c.tag)
		sk("copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", creds,
			"oci:"+layouts+":"+c.tag, "docker://"+srv.Host+"/"+c.repo+":v"+c.tag)
		if got := registryDigest(t, srv, pw, c.repo, "v"+c.tag); got != want {
			t.Fatalf("%s: registry digest %s, layout %s", c.repo, got, want)
		}
	}
}

// TestPodman logs in with a drydock login password, pushes an image built
// from a real root filesystem, removes it locally and pulls it back.
func TestPodman(t *testing.T) {
	podman := testutil.RequireTool(t, "podman")
	dataDir := t.TempDir()
	drydock(t, "repo", "create", "--data-dir", dataDir, "apps/alpine")
	srv := startServer(t, dataDir)

	dir := t.TempDir()
	storageConf := filepath.Join(dir, "storage.conf")
	registriesConf := filepath.Join(dir, "registries.conf")
	authFile := filepath.Join(dir, "auth.json")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(storageConf, "[storage]\ndriver = \"vfs\"\ngraphroot = \""+filepath.Join(dir, "graph")+"\"\nrunroot = \""+filepath.Join(dir, "run")+"\"\n")
	write(registriesConf, "[[registry]]\nlocation = \""+srv.Host+"\"\ninsecure = true\n")
	write(authFile, `{"auths":{}}`)
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"CONTAINERS_STORAGE_CONF=" + storageConf,
		"CONTAINERS_REGISTRIES_CONF=" + registriesConf,
		"REGISTRY_AUTH_FILE=" + authFile,
		"DOCKER_CONFIG=" + dir,
		"TMPDIR=" + tmp,
		"XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"),
	}
	pm := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(podman, append([]string{"--cgroup-manager=cgroupfs", "--events-backend=none"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		cmd := exec.Command(podman, "system", "reset", "--force")
		cmd.Env = append(os.Environ(), env...)
		_ = cmd.Run()
	})
	// The pipe of the README: drydock login-password | podman login ...
	pw := srv.password(t)
	pm(pw, "login", "--username", "AWS", "--password-stdin", srv.Host)
	image := srv.Host + "/apps/alpine:3.20"
	pm("", "import", testutil.Fixture(t, "rootfs/alpine-minirootfs-3.20.3-x86_64.tar.gz"), image)
	pm("", "push", image)
	pushed := registryDigest(t, srv, pw, "apps/alpine", "3.20")
	pm("", "rmi", image)
	pm("", "pull", image)
	out := pm("", "image", "inspect", "--format", "{{.Digest}}", image)
	if strings.TrimSpace(out) != pushed {
		t.Fatalf("pulled image digest %q, registry says %s", strings.TrimSpace(out), pushed)
	}
	// Without credentials the registry says so.
	pm("", "logout", srv.Host)
	cmd := exec.Command(podman, "--cgroup-manager=cgroupfs", "--events-backend=none", "pull", srv.Host+"/apps/alpine:3.20")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err == nil || !bytes.Contains(bytes.ToLower(out), []byte("unauthorized")) {
		t.Fatalf("anonymous pull: err %v\n%s", err, out)
	}
}

// TestCraneOras pushes a real root filesystem with crane (its layer digest
// must be the fixture file's sha256), copies it across repositories (a
// cross-repository mount), lists and deletes; pushes a Docker manifest list
// from an OCI layout with go-containerregistry; and with oras pushes an
// artifact with an artifactType, attaches referrers and discovers them,
// filtered by artifact type.
func TestCraneOras(t *testing.T) {
	crane := testutil.RequireTool(t, "crane")
	oras := testutil.RequireTool(t, "oras")
	dataDir := t.TempDir()
	for _, r := range []string{"tools/crane", "tools/copy", "tools/artifact", "multi/list"} {
		drydock(t, "repo", "create", "--data-dir", dataDir, r)
	}
	srv := startServer(t, dataDir)
	pw := srv.password(t)
	work := t.TempDir()
	env := []string{"DOCKER_CONFIG=" + filepath.Join(work, "docker")}
	cr := func(args ...string) string { return strings.TrimSpace(run(t, env, crane, args...)) }
	cr("auth", "login", srv.Host, "-u", "AWS", "-p", pw)

	rootfs := testutil.Fixture(t, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz")
	layerDigest := fileDigest(t, rootfs)
	img := srv.Host + "/tools/crane:3.18"
	cr("append", "--oci-empty-base", "-f", rootfs, "-t", img)
	manifest := cr("manifest", img)
	if !strings.Contains(manifest, layerDigest) {
		t.Fatalf("manifest does not name the rootfs layer %s:\n%s", layerDigest, manifest)
	}
	d := cr("digest", img)
	if got := digest.FromString(manifest).String(); got != d {
		t.Fatalf("crane digest %s, manifest hashes to %s", d, got)
	}
	if got := fileDigestOf(t, run(t, env, crane, "blob", srv.Host+"/tools/crane@"+layerDigest)); got != layerDigest {
		t.Fatalf("layer blob served with digest %s, want %s", got, layerDigest)
	}
	// Cross-repository copy mounts the layer rather than uploading it.
	cr("copy", img, srv.Host+"/tools/copy:3.18")
	if got := cr("digest", srv.Host+"/tools/copy:3.18"); got != d {
		t.Fatalf("copy digest %s, want %s", got, d)
	}
	if got := cr("ls", srv.Host+"/tools/copy"); got != "3.18" {
		t.Fatalf("crane ls: %q", got)
	}
	cr("delete", srv.Host+"/tools/copy@"+d)
	cmd := exec.Command(crane, "manifest", srv.Host+"/tools/copy:3.18")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "MANIFEST_UNKNOWN") {
		t.Fatalf("manifest after delete: %v %s", err, out)
	}
	// The original is untouched by the copy's deletion.
	if got := cr("digest", img); got != d {
		t.Fatalf("original digest after deleting the copy: %s", got)
	}

	pushDockerList(t, srv, pw)

	// oras: an artifact, two referrers of different types, discovery.
	or := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(oras, append(args, "--plain-http", "--registry-config", filepath.Join(work, "oras.json"))...)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("oras %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	or("login", "-u", "AWS", "-p", pw, srv.Host)
	report := []byte(`{"scanner":"drydock-test","findings":[]}`)
	for name, content := range map[string][]byte{"report.json": report, "sig.txt": []byte("signature"), "sbom.json": []byte(`{"bomFormat":"CycloneDX"}`)} {
		if err := os.WriteFile(filepath.Join(work, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	art := srv.Host + "/tools/artifact:v1"
	or("push", art, "--artifact-type", "application/vnd.drydock.test.report", "report.json:application/json")
	or("attach", art, "--artifact-type", "application/vnd.drydock.test.signature", "sig.txt:text/plain")
	or("attach", art, "--artifact-type", "application/vnd.drydock.test.sbom", "sbom.json:application/json")
	type discovered struct {
		Digest    string `json:"digest"`
		Referrers []struct {
			Digest       string `json:"digest"`
			ArtifactType string `json:"artifactType"`
		} `json:"referrers"`
	}
	var all, sigs discovered
	if err := json.Unmarshal([]byte(or("discover", "--format", "json", art)), &all); err != nil {
		t.Fatal(err)
	}
	if len(all.Referrers) != 2 {
		t.Fatalf("oras discover found %d referrers, want 2: %+v", len(all.Referrers), all)
	}
	if err := json.Unmarshal([]byte(or("discover", "--format", "json", "--artifact-type", "application/vnd.drydock.test.signature", art)), &sigs); err != nil {
		t.Fatal(err)
	}
	if len(sigs.Referrers) != 1 || sigs.Referrers[0].ArtifactType != "application/vnd.drydock.test.signature" {
		t.Fatalf("filtered discover: %+v", sigs)
	}
	// The referrers API itself, filtered, says it filtered.
	req, _ := http.NewRequest("GET", srv.URL+"/v2/tools/artifact/referrers/"+all.Digest+"?artifactType=application/vnd.drydock.test.sbom", nil)
	req.SetBasicAuth("AWS", pw)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.Header.Get("OCI-Filters-Applied") != "artifactType" || !bytes.Contains(body, []byte("application/vnd.drydock.test.sbom")) ||
		bytes.Contains(body, []byte("signature")) {
		t.Fatalf("referrers?artifactType: %v %s", res.Header, body)
	}
	pulled := filepath.Join(work, "pulled")
	or("pull", art, "-o", pulled)
	if got, err := os.ReadFile(filepath.Join(pulled, "report.json")); err != nil || !bytes.Equal(got, report) {
		t.Fatalf("oras pull: %v %q", err, got)
	}
}

// pushDockerList pushes, with the go-containerregistry library, a Docker
// manifest list around the Docker image of the hello-world archive, and
// checks the registry serves it under the digest the client computed.
func pushDockerList(t *testing.T, srv *server, pw string) {
	t.Helper()
	img, err := tarball.ImageFromPath(testutil.Fixture(t, "images/hello-world-v25.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Canonical(img) // Docker schema 2 media types
	if err != nil {
		t.Fatal(err)
	}
	list := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add:        img,
		Descriptor: ggcrv1.Descriptor{Platform: &ggcrv1.Platform{OS: "linux", Architecture: "amd64"}},
	}), types.DockerManifestList)
	want, err := list.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(srv.Host+"/multi/list:docker", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, list, remote.WithAuth(&authn.Basic{Username: "AWS", Password: pw})); err != nil {
		t.Fatalf("push Docker manifest list: %v", err)
	}
	if got := registryDigest(t, srv, pw, "multi/list", "docker"); got != want.String() {
		t.Fatalf("Docker manifest list digest %s, want %s", got, want)
	}
	pulled, err := remote.Index(ref, remote.WithAuth(&authn.Basic{Username: "AWS", Password: pw}))
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := pulled.MediaType(); mt != types.DockerManifestList {
		t.Fatalf("pulled list media type %s", mt)
	}
}

func fileDigest(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return digest.FromBytes(b).String()
}

func fileDigestOf(t *testing.T, content string) string { return digest.FromString(content).String() }
