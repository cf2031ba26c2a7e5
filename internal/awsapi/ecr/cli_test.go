package ecr_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/testutil"
)

// The drydock binary, built once per test run: the CLI test drives the
// real `drydock serve`.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func drydockBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "drydock-ecr-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "drydock")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/drydock")
		cmd.Dir = testutil.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/drydock: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

var servingRE = regexp.MustCompile(`msg="drydock serving" addr=(\S+)`)

// serve starts `drydock serve` on a free loopback port and returns its
// address once it is listening. It is stopped when the test ends.
func serve(t *testing.T, dataDir string) (host string, logs *syncBuffer) {
	t.Helper()
	cmd := exec.Command(drydockBinary(t), "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs = &syncBuffer{}
	addrc := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(logs, sc.Text())
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
	})
	select {
	case host = <-addrc:
	case <-done:
		t.Fatalf("drydock serve exited:\n%s", logs)
	case <-time.After(2 * time.Minute):
		t.Fatalf("drydock serve did not start:\n%s", logs)
	}
	return host, logs
}

// cli runs the AWS CLI v2 from Debian's awscli (/usr/bin/aws; not a pyenv
// shim earlier in PATH) with credentials from the environment only.
type cli struct {
	t        *testing.T
	bin      string
	endpoint string
	env      []string
}

func newCLI(t *testing.T, endpoint, keyID, secret string) *cli {
	return &cli{t: t, bin: testutil.RequireTool(t, "/usr/bin/aws"), endpoint: endpoint, env: []string{
		"HOME=" + t.TempDir(),
		"PATH=/usr/bin:/bin",
		"AWS_ACCESS_KEY_ID=" + keyID,
		"AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	}}
}

// run runs `aws ARGS --region us-west-2 --endpoint-url URL --output json`
// and returns stdout, stderr and the exit status.
func (c *cli) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append(args, "--region", "us-west-2", "--endpoint-url", c.endpoint, "--output", "json")...)
	cmd.Env = c.env
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return o.String(), e.String(), ee.ExitCode()
		}
		c.t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), 0
}

// ok runs the CLI, requires success and decodes its JSON output into v.
func (c *cli) ok(v any, args ...string) {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("aws %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			c.t.Fatalf("aws %s printed %q: %v", strings.Join(args, " "), out, err)
		}
	}
}

// fails runs the CLI and requires it to print the error code as the CLI
// does: "An error occurred (CODE) when calling the OP operation".
func (c *cli) fails(code, op string, args ...string) {
	c.t.Helper()
	out, errOut, exit := c.run(args...)
	want := fmt.Sprintf("An error occurred (%s) when calling the %s operation", code, op)
	if exit == 0 || !strings.Contains(errOut, want) {
		c.t.Errorf("aws %s: exit %d, want %q\n%s%s", strings.Join(args, " "), exit, want, out, errOut)
	}
}

// ociLayout reads what skopeo wrote into an OCI layout for a tag: the
// manifest's digest, its bytes, and from them the media types and the
// sum of the layer sizes.
type ociLayout struct {
	digest, mediaType, configType string
	manifest                      []byte
	size                          int64
}

func readLayout(t *testing.T, dir, tag string) ociLayout {
	t.Helper()
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	var l ociLayout
	for _, m := range index.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] == tag {
			l.digest = m.Digest
		}
	}
	if l.digest == "" {
		t.Fatalf("tag %s not in %s", tag, dir)
	}
	if l.manifest, err = os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(l.digest, "sha256:"))); err != nil {
		t.Fatal(err)
	}
	var m struct {
		MediaType string `json:"mediaType"`
		Config    struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
		Layers []struct {
			Size int64 `json:"size"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(l.manifest, &m); err != nil {
		t.Fatal(err)
	}
	l.mediaType, l.configType = m.MediaType, m.Config.MediaType
	for _, layer := range m.Layers {
		l.size += layer.Size
	}
	return l
}

var nextTokenRE = regexp.MustCompile(`"nextToken":\s*"([^"]+)"`)

// TestAWSCLI runs the real AWS CLI v2 against a real `drydock serve`: the
// repository operations with their errors, pagination across pages,
// get-login-password piped into podman login, a push with skopeo using
// that login, then describe-images, list-images, batch-get-image and
// batch-delete-image on the pushed image. Expected values come from the
// contract (ARN and URI shapes, error codes) and from skopeo's copy of
// the image in an OCI layout.
func TestAWSCLI(t *testing.T) {
	podman := testutil.RequireTool(t, "podman")
	skopeo := testutil.RequireTool(t, "skopeo")
	dataDir := t.TempDir()
	host, logs := serve(t, dataDir)
	endpoint := "http://" + host

	// An access key made by the operator verb, as a user would.
	type accessKey struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
	}
	newKey := func(args ...string) accessKey {
		t.Helper()
		cmd := exec.Command(drydockBinary(t), append([]string{"keys", "create", "--data-dir", dataDir}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("drydock keys create %v: %v", args, err)
		}
		var k accessKey
		if err := json.Unmarshal(out, &k); err != nil || k.AccessKeyID == "" {
			t.Fatalf("drydock keys create printed %q: %v", out, err)
		}
		return k
	}
	key := newKey("--name", "tester", "--admin")
	reader := newKey("--name", "reader", "--pull", "page/*")
	aws := newCLI(t, endpoint, key.AccessKeyID, key.SecretAccessKey)

	var reg struct {
		RegistryID               string `json:"registryId"`
		ReplicationConfiguration struct {
			Rules []any `json:"rules"`
		} `json:"replicationConfiguration"`
	}
	aws.ok(&reg, "ecr", "describe-registry")
	if !regexp.MustCompile(`^[0-9]{12}$`).MatchString(reg.RegistryID) || reg.ReplicationConfiguration.Rules == nil {
		t.Fatalf("describe-registry: %+v", reg)
	}

	type repository struct {
		RepositoryArn              string `json:"repositoryArn"`
		RegistryID                 string `json:"registryId"`
		RepositoryName             string `json:"repositoryName"`
		RepositoryURI              string `json:"repositoryUri"`
		CreatedAt                  string `json:"createdAt"`
		ImageTagMutability         string `json:"imageTagMutability"`
		ImageScanningConfiguration struct {
			ScanOnPush bool `json:"scanOnPush"`
		} `json:"imageScanningConfiguration"`
		EncryptionConfiguration struct {
			EncryptionType string `json:"encryptionType"`
		} `json:"encryptionConfiguration"`
	}
	var created struct{ Repository repository }
	aws.ok(&created, "ecr", "create-repository", "--repository-name", "scanrepo-prod", "--image-scanning-configuration", "scanOnPush=true")
	r := created.Repository
	if r.RepositoryArn != "arn:aws:ecr:us-west-2:"+reg.RegistryID+":repository/scanrepo-prod" || r.RegistryID != reg.RegistryID ||
		r.RepositoryURI != host+"/scanrepo-prod" || r.ImageTagMutability != "MUTABLE" || !r.ImageScanningConfiguration.ScanOnPush ||
		r.EncryptionConfiguration.EncryptionType != "AES256" {
		t.Errorf("create-repository printed %+v", r)
	}
	// The CLI prints timestamps it parsed from our epoch numbers.
	if ts, err := time.Parse(time.RFC3339Nano, r.CreatedAt); err != nil || time.Since(ts) > time.Minute || time.Since(ts) < -time.Minute {
		t.Errorf("createdAt %q: %v", r.CreatedAt, err)
	}

	aws.fails("RepositoryAlreadyExistsException", "CreateRepository", "ecr", "create-repository", "--repository-name", "scanrepo-prod")
	aws.fails("InvalidParameterException", "CreateRepository", "ecr", "create-repository", "--repository-name", "Bad_Name")
	aws.fails("InvalidParameterException", "CreateRepository", "ecr", "create-repository", "--repository-name", "ok-name", "--image-tag-mutability", "SOMETIMES")
	aws.fails("RepositoryNotFoundException", "DescribeRepositories", "ecr", "describe-repositories", "--repository-names", "missing-repo")
	aws.fails("InvalidParameterException", "DescribeRepositories", "ecr", "describe-repositories", "--page-size", "5000")
	aws.fails("InvalidParameterException", "DescribeRepositories", "ecr", "describe-repositories", "--registry-id", "notanaccount")
	aws.fails("RepositoryNotFoundException", "DeleteRepository", "ecr", "delete-repository", "--repository-name", "missing-repo")

	// Pagination: the CLI follows nextToken by itself (and aborts if one
	// repeats); --debug shows every token we sent.
	want := []string{"scanrepo-prod"}
	for i := range 7 {
		n := fmt.Sprintf("page/repo-%d", i)
		aws.ok(nil, "ecr", "create-repository", "--repository-name", n)
		want = append(want, n)
	}
	slices.Sort(want)
	stdout, stderr, code := aws.run("ecr", "describe-repositories", "--page-size", "2", "--debug")
	if code != 0 {
		t.Fatalf("paginated describe-repositories: exit %d\n%s", code, tail(stderr))
	}
	var listed struct{ Repositories []repository }
	if err := json.Unmarshal([]byte(stdout), &listed); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range listed.Repositories {
		names = append(names, r.RepositoryName)
	}
	if !slices.Equal(names, want) {
		t.Errorf("paginated describe-repositories listed %v, want %v", names, want)
	}
	tokens := map[string]bool{}
	for _, m := range nextTokenRE.FindAllStringSubmatch(stderr, -1) {
		tokens[m[1]] = true
	}
	// 8 repositories in pages of 2: 4 pages, so 3 tokens, each seen in the
	// response and again in the next request.
	if len(tokens) != 3 {
		t.Errorf("saw %d distinct nextTokens, want 3", len(tokens))
	}

	// get-login-password | podman login, as the README says.
	dir := t.TempDir()
	authFile := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(authFile, []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "storage.conf"), []byte("[storage]\ndriver = \"vfs\"\ngraphroot = \""+
		filepath.Join(dir, "graph")+"\"\nrunroot = \""+filepath.Join(dir, "run")+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	login := exec.Command("bash", "-o", "pipefail", "-c",
		`"$AWS" ecr get-login-password --region us-west-2 --endpoint-url "$ENDPOINT" | "$PODMAN" login --username AWS --password-stdin --tls-verify=false "$HOST"`)
	login.Env = append(slices.Clone(aws.env), "AWS="+aws.bin, "PODMAN="+podman, "ENDPOINT="+endpoint, "HOST="+host,
		"REGISTRY_AUTH_FILE="+authFile, "CONTAINERS_STORAGE_CONF="+filepath.Join(dir, "storage.conf"),
		"XDG_RUNTIME_DIR="+filepath.Join(dir, "run"), "TMPDIR="+dir)
	if out, err := login.CombinedOutput(); err != nil || !strings.Contains(string(out), "Login Succeeded") {
		t.Fatalf("get-login-password | podman login: %v\n%s", err, out)
	}

	// Push the real Alpine 3.10 image with skopeo and that login, through
	// an OCI layout so that skopeo's own copy tells the expected values.
	sk := func(args ...string) {
		t.Helper()
		cmd := exec.Command(skopeo, append([]string{"--insecure-policy"}, args...)...)
		cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	layoutDir := filepath.Join(t.TempDir(), "alpine")
	sk("copy", "docker-archive:"+testutil.GunzipFixture(t, "images/alpine-3.10-docker-archive.tar.gz"), "oci:"+layoutDir+":3.10")
	l := readLayout(t, layoutDir, "3.10")
	for _, tag := range []string{"3.10", "latest"} {
		sk("copy", "--authfile", authFile, "--dest-tls-verify=false", "oci:"+layoutDir+":3.10", "docker://"+host+"/scanrepo-prod:"+tag)
	}

	var images struct {
		ImageDetails []struct {
			RegistryID             string   `json:"registryId"`
			RepositoryName         string   `json:"repositoryName"`
			ImageDigest            string   `json:"imageDigest"`
			ImageTags              []string `json:"imageTags"`
			ImageSizeInBytes       int64    `json:"imageSizeInBytes"`
			ImagePushedAt          string   `json:"imagePushedAt"`
			ImageManifestMediaType string   `json:"imageManifestMediaType"`
			ArtifactMediaType      string   `json:"artifactMediaType"`
		} `json:"imageDetails"`
	}
	aws.ok(&images, "ecr", "describe-images", "--repository-name", "scanrepo-prod")
	if len(images.ImageDetails) != 1 {
		t.Fatalf("describe-images: %+v", images)
	}
	d := images.ImageDetails[0]
	if d.ImageDigest != l.digest || !slices.Equal(d.ImageTags, []string{"3.10", "latest"}) || d.ImageSizeInBytes != l.size ||
		d.ImageManifestMediaType != l.mediaType || d.ArtifactMediaType != l.configType || d.RegistryID != reg.RegistryID ||
		d.RepositoryName != "scanrepo-prod" || d.ImagePushedAt == "" {
		t.Errorf("describe-images printed %+v; skopeo's layout says %s, %d bytes of layers, %s, %s", d, l.digest, l.size, l.mediaType, l.configType)
	}
	aws.fails("ImageNotFoundException", "DescribeImages", "ecr", "describe-images", "--repository-name", "scanrepo-prod", "--image-ids", "imageTag=nope")

	var ids struct {
		ImageIDs []struct {
			ImageDigest string `json:"imageDigest"`
			ImageTag    string `json:"imageTag"`
		} `json:"imageIds"`
	}
	aws.ok(&ids, "ecr", "list-images", "--repository-name", "scanrepo-prod", "--page-size", "1")
	if len(ids.ImageIDs) != 2 || ids.ImageIDs[0].ImageTag != "3.10" || ids.ImageIDs[1].ImageTag != "latest" || ids.ImageIDs[0].ImageDigest != l.digest {
		t.Errorf("list-images: %+v", ids)
	}
	aws.ok(&ids, "ecr", "list-images", "--repository-name", "scanrepo-prod", "--filter", "tagStatus=UNTAGGED")
	if len(ids.ImageIDs) != 0 {
		t.Errorf("list-images UNTAGGED: %+v", ids)
	}

	var got struct {
		Images []struct {
			ImageManifest          string `json:"imageManifest"`
			ImageManifestMediaType string `json:"imageManifestMediaType"`
		} `json:"images"`
		Failures []struct {
			FailureCode string `json:"failureCode"`
		} `json:"failures"`
	}
	aws.ok(&got, "ecr", "batch-get-image", "--repository-name", "scanrepo-prod", "--image-ids", "imageTag=3.10", "imageTag=nope")
	if len(got.Images) != 1 || got.Images[0].ImageManifest != string(l.manifest) || got.Images[0].ImageManifestMediaType != l.mediaType ||
		len(got.Failures) != 1 || got.Failures[0].FailureCode != "ImageNotFound" {
		t.Errorf("batch-get-image: %+v", got)
	}

	var del struct {
		ImageIDs []struct {
			ImageDigest string `json:"imageDigest"`
			ImageTag    string `json:"imageTag"`
		} `json:"imageIds"`
		Failures []struct {
			FailureCode string `json:"failureCode"`
		} `json:"failures"`
	}
	aws.ok(&del, "ecr", "batch-delete-image", "--repository-name", "scanrepo-prod", "--image-ids", "imageTag=latest", "imageTag=nope")
	if len(del.ImageIDs) != 1 || del.ImageIDs[0].ImageTag != "latest" || del.ImageIDs[0].ImageDigest != l.digest ||
		len(del.Failures) != 1 || del.Failures[0].FailureCode != "ImageNotFound" {
		t.Errorf("batch-delete-image: %+v", del)
	}
	aws.ok(&images, "ecr", "describe-images", "--repository-name", "scanrepo-prod")
	if len(images.ImageDetails) != 1 || !slices.Equal(images.ImageDetails[0].ImageTags, []string{"3.10"}) {
		t.Errorf("after batch-delete-image: %+v", images)
	}

	aws.ok(nil, "ecr", "put-image-scanning-configuration", "--repository-name", "scanrepo-prod", "--image-scanning-configuration", "scanOnPush=false")
	aws.fails("RepositoryNotEmptyException", "DeleteRepository", "ecr", "delete-repository", "--repository-name", "scanrepo-prod")
	aws.ok(&created, "ecr", "delete-repository", "--repository-name", "scanrepo-prod", "--force")
	if created.Repository.RepositoryName != "scanrepo-prod" || created.Repository.ImageScanningConfiguration.ScanOnPush {
		t.Errorf("delete-repository printed %+v", created.Repository)
	}

	// A path prefix in the endpoint URL is kept (and signed).
	prefixed := newCLI(t, endpoint+"/prefix", key.AccessKeyID, key.SecretAccessKey)
	prefixed.ok(nil, "ecr", "describe-registry")

	// A principal with only a pull grant sees its repositories, and may
	// not create one.
	readerCLI := newCLI(t, endpoint, reader.AccessKeyID, reader.SecretAccessKey)
	readerCLI.fails("AccessDeniedException", "CreateRepository", "ecr", "create-repository", "--repository-name", "page/new")
	readerCLI.ok(&listed, "ecr", "describe-repositories")
	if len(listed.Repositories) != 7 {
		t.Errorf("the reader sees %d repositories, want the 7 page/ ones", len(listed.Repositories))
	}

	// Wrong credentials are refused.
	newCLI(t, endpoint, key.AccessKeyID, strings.Repeat("x", 40)).fails("InvalidSignatureException", "DescribeRepositories", "ecr", "describe-repositories")
	newCLI(t, endpoint, "DDAKAAAAAAAAAAAAAAAA", key.SecretAccessKey).fails("UnrecognizedClientException", "DescribeRepositories", "ecr", "describe-repositories")

	if strings.Contains(logs.String(), key.SecretAccessKey) {
		t.Error("the secret reached the server's logs")
	}
}

// tail is the end of a long output, for failure messages.
func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}
