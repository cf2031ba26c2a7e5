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
