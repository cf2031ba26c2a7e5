package ecr_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/mod/semver"

	"github.com/drydockhq/drydock/internal/testutil"
)

// oldTextModule and oldTextVersion are the module a Go binary of the
// walkthrough is built against, at a version the Go vulnerability database
// lists as affected.
const (
	oldTextModule  = "golang.org/x/text"
	oldTextVersion = "v0.3.7"
	goVulnDB       = "feeds/osv/Go/all.zip"
)

// goBinaryLayer builds a small program that uses golang.org/x/text at
// oldTextVersion with the real Go toolchain (its build information records
// the module version) and returns a layer holding it at path.
func goBinaryLayer(t *testing.T, path string) v1.Layer {
	t.Helper()
	goBin := testutil.RequireTool(t, "go")
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/oldtext\n\ngo 1.22\n\nrequire " + oldTextModule + " " + oldTextVersion + "\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"golang.org/x/text/language\"\n)\n\nfunc main() { fmt.Println(language.MustParse(\"en-US\")) }\n",
	}
	for n, body := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", "oldtext", "."}} {
		cmd := exec.Command(goBin, args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The toolchain's own account of the binary: it must list the old
	// module, or the test proves nothing.
	out, err := exec.Command(goBin, "version", "-m", filepath.Join(dir, "oldtext")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), oldTextModule+"\t"+oldTextVersion) {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "oldtext"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(bin); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// goVulnExpectation reads the real Go vulnerability database of the
// fixtures and returns, for each record whose SEMVER ranges hold
// oldTextVersion of oldTextModule, its ids (the GO id and its aliases),
// and the ids of the module's records that do not hold it.
func goVulnExpectation(t *testing.T) (affected, unaffected [][]string) {
	t.Helper()
	zr, err := zip.OpenReader(testutil.Fixture(t, goVulnDB))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			ID       string
			Aliases  []string
			Affected []struct {
				Package struct{ Name, Ecosystem string }
				Ranges  []struct {
					Type   string
					Events []struct{ Introduced, Fixed string }
				}
			}
		}
		err = json.NewDecoder(rc).Decode(&rec)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		hit, about := false, false
		for _, a := range rec.Affected {
			if a.Package.Ecosystem != "Go" || a.Package.Name != oldTextModule {
				continue
			}
			about = true
			for _, r := range a.Ranges {
				if r.Type != "SEMVER" {
					continue
				}
				in := false
				for _, e := range r.Events {
					if e.Introduced != "" && semver.Compare(oldTextVersion, "v"+e.Introduced) >= 0 {
						in = true
					}
					if e.Fixed != "" && semver.Compare(oldTextVersion, "v"+e.Fixed) >= 0 {
						in = false
					}
				}
				hit = hit || in
			}
		}
		ids := append([]string{rec.ID}, rec.Aliases...)
		switch {
		case hit:
			affected = append(affected, ids)
		case about:
			unaffected = append(unaffected, ids)
		}
	}
	if len(affected) == 0 || len(unaffected) == 0 {
		t.Fatalf("the Go database has %d records holding %s@%s and %d not: pick another version", len(affected), oldTextModule, oldTextVersion, len(unaffected))
	}
	return affected, unaffected
}

// podmanEnv is a podman with all its state in a temporary directory
// (storage, runtime directory, credentials), so that the test neither
// reads nor changes the machine's.
type podmanEnv struct {
	t   *testing.T
	bin string
	env []string
}

func newPodman(t *testing.T) *podmanEnv {
	t.Helper()
	bin := testutil.RequireTool(t, "podman")
	dir := t.TempDir()
	authFile := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(authFile, []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := "[storage]\ndriver = \"vfs\"\ngraphroot = \"" + filepath.Join(dir, "graph") + "\"\nrunroot = \"" + filepath.Join(dir, "run") + "\"\n"
	if err := os.WriteFile(filepath.Join(dir, "storage.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &podmanEnv{t: t, bin: bin, env: []string{
		"REGISTRY_AUTH_FILE=" + authFile, "CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf"),
		"XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"), "TMPDIR=" + dir, "PODMAN=" + bin,
	}}
	t.Cleanup(func() {
		// Remove the images through podman before the directory goes
		// (`system reset` would also drop the machine's network
		// configuration, which is not in the temporary directory).
		_ = p.command("rmi", "--all", "--force").Run()
	})
	return p
}

func (p *podmanEnv) command(args ...string) *exec.Cmd {
	cmd := exec.Command(p.bin, args...)
	cmd.Env = append(os.Environ(), p.env...)
	return cmd
}

func (p *podmanEnv) run(args ...string) string {
	p.t.Helper()
	out, err := p.command(args...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestScanningPodman is the seed walkthrough with podman: enhanced
// scanning continuous for `prod`, `aws ecr get-login-password | podman
// login`, `podman push` of the same image to scanrepo-prod and
// scanrepo-test, then the findings with the AWS CLI. The image is the real
// alpine:3.10 with the openssl libraries at 1.1.1c-r0, a log4j-core 2.14.1
// jar and a Go binary built against golang.org/x/text v0.3.7; the expected
// advisories come from the Alpine secdb, the GHSA record and the Go
// vulnerability database of the fixtures.
func TestScanningPodman(t *testing.T) {
	pm := newPodman(t)
	dataDir := t.TempDir()
	importSecdb(t, dataDir)
	if out, err := exec.Command(drydockBinary(t), "db", "import", "--data-dir", dataDir, "--source", "osv-Go", testutil.Fixture(t, goVulnDB)).CombinedOutput(); err != nil {
		t.Fatalf("drydock db import: %v\n%s", err, out)
	}
	host, _ := serve(t, dataDir)
	endpoint := "http://" + host
	out, err := exec.Command(drydockBinary(t), "keys", "create", "--data-dir", dataDir, "--name", "walkthrough", "--admin").Output()
	if err != nil {
		t.Fatal(err)
	}
	var key struct{ AccessKeyID, SecretAccessKey string }
	if err := json.Unmarshal(out, &key); err != nil || key.AccessKeyID == "" {
		t.Fatalf("drydock keys create printed %q: %v", out, err)
	}
	cli := newCLI(t, endpoint, key.AccessKeyID, key.SecretAccessKey)

	cli.ok(nil, "ecr", "put-registry-scanning-configuration", "--scan-type", "ENHANCED", "--rules",
		`[{"repositoryFilters":[{"filter":"prod","filterType":"WILDCARD"}],"scanFrequency":"CONTINUOUS_SCAN"}]`)
	for _, r := range []string{"scanrepo-prod", "scanrepo-test"} {
		cli.ok(nil, "ecr", "create-repository", "--repository-name", r)
	}

	// get-login-password | podman login, as a newcomer types it.
	login := exec.Command("bash", "-o", "pipefail", "-c",
		`/usr/bin/aws ecr get-login-password --region us-west-2 --endpoint-url "$ENDPOINT" | "$PODMAN" login --username AWS --password-stdin --tls-verify=false "$HOST"`)
	login.Env = append(append(slices.Clone(cli.env), pm.env...), "ENDPOINT="+endpoint, "HOST="+host)
	if out, err := login.CombinedOutput(); err != nil || !strings.Contains(string(out), "Login Succeeded") {
		t.Fatalf("get-login-password | podman login: %v\n%s", err, out)
	}

	// The vulnerable image, loaded into podman's storage from a docker
	// archive and pushed by podman (which compresses the layers itself:
	// the pushed digest is the one podman reports).
	img, err := mutate.AppendLayers(oldOpenSSLImage(t), jarLayer(t, "app/lib/log4j-core-2.14.1.jar"), goBinaryLayer(t, "app/bin/oldtext"))
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "vulnerable.tar")
	tag, err := name.NewTag("drydock.test/walkthrough/vulnerable:1.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	pm.run("load", "-i", archive)
	digests := map[string]string{}
	for _, repo := range []string{"scanrepo-prod", "scanrepo-test"} {
		df := filepath.Join(t.TempDir(), "digest")
		pm.run("push", "--tls-verify=false", "--digestfile", df, tag.String(), "docker://"+host+"/"+repo+":latest")
		b, err := os.ReadFile(df)
		if err != nil {
			t.Fatal(err)
		}
		digests[repo] = strings.TrimSpace(string(b))
	}
	if !strings.HasPrefix(digests["scanrepo-prod"], "sha256:") || digests["scanrepo-prod"] != digests["scanrepo-test"] {
		t.Fatalf("podman pushed %v", digests)
	}
	digest := digests["scanrepo-prod"]

	// describe-image-scan-findings with the CLI until the enhanced scan
	// is done.
	type finding struct {
		Severity                    string
		Status                      string
		PackageVulnerabilityDetails struct {
			VulnerabilityID    string `json:"vulnerabilityId"`
			VulnerablePackages []struct {
				Name, Version, FilePath string
			}
		}
	}
	var got struct {
		ImageID           struct{ ImageDigest string }
		ImageScanStatus   struct{ Status, Description string }
		ImageScanFindings struct {
			EnhancedFindings      []finding
			FindingSeverityCounts map[string]int
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for got.ImageScanStatus.Status != "ACTIVE" {
		if time.Now().After(deadline) {
			t.Fatalf("the enhanced scan of %s is not done: %+v", digest, got.ImageScanStatus)
		}
		stdout, stderr, code := cli.run("ecr", "describe-image-scan-findings", "--repository-name", "scanrepo-prod", "--image-id", "imageDigest="+digest)
		switch {
		case code == 0:
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatal(err)
			}
		case strings.Contains(stderr, "ScanNotFoundException"):
		default:
			t.Fatalf("describe-image-scan-findings: exit %d\n%s", code, stderr)
		}
		if got.ImageScanStatus.Status == "FAILED" || got.ImageScanStatus.Status == "UNSUPPORTED_IMAGE" {
			t.Fatalf("scan: %+v", got.ImageScanStatus)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got.ImageID.ImageDigest != digest {
		t.Errorf("findings of %s, want %s", got.ImageID.ImageDigest, digest)
	}
	byID := map[string][]finding{}
	total := 0
	for _, f := range got.ImageScanFindings.EnhancedFindings {
		byID[f.PackageVulnerabilityDetails.VulnerabilityID] = append(byID[f.PackageVulnerabilityDetails.VulnerabilityID], f)
	}
	for _, n := range got.ImageScanFindings.FindingSeverityCounts {
		total += n
	}
	if total != len(got.ImageScanFindings.EnhancedFindings) {
		t.Errorf("severity counts %v for %d findings", got.ImageScanFindings.FindingSeverityCounts, len(got.ImageScanFindings.EnhancedFindings))
	}

	// Log4Shell in the jar, with the GHSA record's severity (CLI 2.9.19's
	// model has no fixedInVersion; TestScanningCLI checks it with the SDK).
	cve, severity, _ := log4jExpectation(t)
	if fs := byID[cve]; len(fs) != 1 || fs[0].Severity != severity || fs[0].Status != "ACTIVE" ||
		fs[0].PackageVulnerabilityDetails.VulnerablePackages[0].Version != "2.14.1" ||
		!strings.Contains(fs[0].PackageVulnerabilityDetails.VulnerablePackages[0].FilePath, "log4j-core-2.14.1.jar") {
		t.Errorf("%s: %+v, want one %s finding for the jar", cve, fs, severity)
	}
	// The Go binary's old module: each advisory of the Go database that
	// holds v0.3.7 once (by its GO id or an alias), none of the others.
	goFinding := func(ids []string) []finding {
		var out []finding
		for _, id := range ids {
			for _, f := range byID[id] {
				if f.PackageVulnerabilityDetails.VulnerablePackages[0].Name == oldTextModule {
					out = append(out, f)
				}
			}
		}
		return out
	}
	affected, unaffected := goVulnExpectation(t)
	for _, ids := range affected {
		fs := goFinding(ids)
		if len(fs) != 1 || !strings.Contains(fs[0].PackageVulnerabilityDetails.VulnerablePackages[0].FilePath, "app/bin/oldtext") {
			t.Errorf("advisory %v: findings %+v, want one for %s in app/bin/oldtext", ids, fs, oldTextModule)
		}
	}
	for _, ids := range unaffected {
		if fs := goFinding(ids); len(fs) != 0 {
			t.Errorf("advisory %v does not hold %s but was reported: %+v", ids, oldTextVersion, fs)
		}
	}
	// The openssl libraries, as the secdb lists them.
	for _, pair := range expectedOpenSSL(t) {
		id, pkg, _ := strings.Cut(pair, " ")
		found := false
		for _, f := range byID[id] {
			found = found || f.PackageVulnerabilityDetails.VulnerablePackages[0].Name == pkg
		}
		if !found {
			t.Errorf("no finding %s", pair)
		}
	}

	// The test repository matches no rule: scanning is off there.
	_, stderr, code := cli.run("ecr", "describe-image-scan-findings", "--repository-name", "scanrepo-test", "--image-id", "imageDigest="+digest)
	if code == 0 || !strings.Contains(stderr, "ScanNotFoundException") {
		t.Errorf("scanrepo-test findings: exit %d %s", code, stderr)
	}
	var batch struct {
		ScanningConfigurations []struct{ RepositoryName, ScanFrequency string }
	}
	cli.ok(&batch, "ecr", "batch-get-repository-scanning-configuration", "--repository-names", "scanrepo-test")
	if len(batch.ScanningConfigurations) != 1 || batch.ScanningConfigurations[0].ScanFrequency != "MANUAL" {
		t.Errorf("scanrepo-test configuration: %+v", batch)
	}

	// podman pulls back what it pushed.
	pm.run("rmi", "--all", "--force")
	pm.run("pull", "--tls-verify=false", host+"/scanrepo-prod@"+digest)
	if out := pm.run("images", "--digests", "--format", "{{.Digest}}"); !strings.Contains(out, digest) {
		t.Errorf("podman images after the pull: %s", out)
	}
}
