package ecr_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
)

const target = "AmazonEC2ContainerRegistry_V20150921."

// rawCall sends a request signed with aws-sdk-go-v2's SigV4 signer, for
// what a client library would never send, and returns the status, the
// headers and the body.
func rawCall(t testing.TB, s *stack, k auth.AccessKey, path, op string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target+op)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret},
		req, hex.EncodeToString(sum[:]), "ecr", "ap-south-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestProtocol checks the AWS JSON 1.1 wire details the contract states
// (§1, §7, §14) on raw requests: headers, error shapes and statuses,
// strict input, epoch-number timestamps, omitted unset members.
func TestProtocol(t *testing.T) {
	s := newStack(t, storetest.SQLite(t))
	type errBody struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	wantError := func(name string, status int, h http.Header, b []byte, wantStatus int, code string) {
		t.Helper()
		var e errBody
		if err := json.Unmarshal(b, &e); err != nil || e.Type != code || e.Message == "" || status != wantStatus ||
			h.Get("x-amzn-ErrorType") != code || h.Get("Content-Type") != "application/x-amz-json-1.1" || !uuidRE.MatchString(h.Get("x-amzn-RequestId")) {
			t.Errorf("%s: %d %v %s, want %d %s", name, status, h, b, wantStatus, code)
		}
	}
	for _, c := range []struct {
		name, op, body string
		code           string
	}{
		{"unknown operation", "PutLifecyclePolicy", `{"repositoryName":"a1"}`, "UnknownOperationException"},
		{"empty operation name", "", `{}`, "UnknownOperationException"},
		{"unknown member", "DescribeRepositories", `{"repositoryNames":["a1"],"maxResult":5}`, "SerializationException"},
		{"member in the wrong case", "CreateRepository", `{"RepositoryName":"a1"}`, "SerializationException"},
		{"not JSON", "DescribeRegistry", `{`, "SerializationException"},
		{"a list body", "DescribeRegistry", `[]`, "SerializationException"},
		{"a string for a number", "DescribeRepositories", `{"maxResults":"5"}`, "SerializationException"},
		{"missing required member", "CreateRepository", `{}`, "InvalidParameterException"},
		{"missing imageIds", "BatchGetImage", `{"repositoryName":"a1"}`, "InvalidParameterException"},
		{"empty imageIds", "BatchDeleteImage", `{"repositoryName":"a1","imageIds":[]}`, "InvalidParameterException"},
		{"101 repository names", "DescribeRepositories", `{"repositoryNames":[` + strings.TrimSuffix(strings.Repeat(`"a1",`, 101), ",") + `]}`, "InvalidParameterException"},
		{"names with maxResults", "DescribeRepositories", `{"repositoryNames":["a1"],"maxResults":5}`, "InvalidParameterException"},
		{"registry ids", "GetAuthorizationToken", `{"registryIds":["12"]}`, "InvalidParameterException"},
	} {
		status, h, b := rawCall(t, s, s.Admin, "/", c.op, []byte(c.body))
		wantError(c.name, status, h, b, 400, c.code)
	}

	// No credentials, or other schemes, are refused with 403.
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(`{}`))
	req.Header.Set("X-Amz-Target", target+"DescribeRegistry")
	status, h, b := do(t, req)
	wantError("unsigned", status, h, b, 403, "MissingAuthenticationTokenException")
	req.SetBasicAuth("AWS", "whatever")
	status, h, b = do(t, req)
	wantError("basic auth", status, h, b, 403, "IncompleteSignatureException")
	status, h, b = rawCall(t, s, auth.AccessKey{ID: s.Admin.ID, Secret: "wrong"}, "/", "DescribeRegistry", []byte(`{}`))
	wantError("wrong secret", status, h, b, 403, "InvalidSignatureException")

	// Success: JSON 1.1 headers, epoch numbers, omitted unset members; an
	// empty body is the empty input.
	status, h, b = rawCall(t, s, s.Admin, "/", "CreateRepository", []byte(`{"repositoryName":"proto/repo"}`))
	if status != 200 || h.Get("Content-Type") != "application/x-amz-json-1.1" || !uuidRE.MatchString(h.Get("x-amzn-RequestId")) {
		t.Fatalf("create: %d %v %s", status, h, b)
	}
	if !regexp.MustCompile(`"createdAt":\d{10}(\.\d{1,3})?[,}]`).Match(b) {
		t.Errorf("createdAt is not an epoch-seconds number: %s", b)
	}
	if bytes.Contains(b, []byte("kmsKey")) || bytes.Contains(b, []byte("imageTagMutabilityExclusionFilters")) {
		t.Errorf("unset members sent: %s", b)
	}
	// The region of the credential scope makes the ARN.
	if !bytes.Contains(b, []byte(`"repositoryArn":"arn:aws:ecr:ap-south-1:`+s.API.RegistryID()+`:repository/proto/repo"`)) {
		t.Errorf("ARN: %s", b)
	}
	status, _, b = rawCall(t, s, s.Admin, "/", "DescribeRegistry", nil)
	if status != 200 || !bytes.Contains(b, []byte(`"registryId":"`+s.API.RegistryID()+`"`)) {
		t.Errorf("empty body: %d %s", status, b)
	}
	status, _, b = rawCall(t, s, s.Admin, "/", "DescribeRepositories", []byte(`{}`))
	if status != 200 || bytes.Contains(b, []byte("nextToken")) {
		t.Errorf("a last page carries no nextToken: %d %s", status, b)
	}
	status, _, b = rawCall(t, s, s.Admin, "/", "ListImages", []byte(`{"repositoryName":"proto/repo"}`))
	if status != 200 || string(b) != `{"imageIds":[]}` {
		t.Errorf("empty list: %d %s", status, b)
	}
	// Any path prefix of the endpoint URL is accepted (it is signed).
	status, _, b = rawCall(t, s, s.Admin, "/some/prefix", "DescribeRegistry", []byte(`{}`))
	if status != 200 {
		t.Errorf("path prefix: %d %s", status, b)
	}
}

// TestCapturedRequests re-signs every ECR request body the AWS CLI v1, v2
// and aws-sdk-go-v2 sent in the contract's captures, for the operations
// served here, and sends it: none may be refused for its shape
// (SerializationException, UnknownOperationException). Answers about
// missing repositories and images are expected: the captures name
// repositories this registry does not have.
func TestCapturedRequests(t *testing.T) {
	s := newStack(t, storetest.SQLite(t))
	served := map[string]bool{"CreateRepository": true, "DescribeRepositories": true, "DeleteRepository": true,
		"PutImageScanningConfiguration": true, "GetAuthorizationToken": true, "DescribeRegistry": true,
		"DescribeImages": true, "ListImages": true, "BatchGetImage": true, "BatchDeleteImage": true}
	logs, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "..", "shared", "contract", "logs", "*", "requests.jsonl"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("contract captures: %v", err)
	}
	n := 0
	for _, path := range logs {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r struct {
				Headers [][2]string `json:"headers"`
				Body    string      `json:"body"`
			}
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			op := ""
			for _, h := range r.Headers {
				if strings.EqualFold(h[0], "X-Amz-Target") {
					op = strings.TrimPrefix(h[1], target)
				}
			}
			if !served[op] {
				continue
			}
			n++
			status, _, b := rawCall(t, s, s.Admin, "/", op, []byte(r.Body))
			var e struct {
				Type string `json:"__type"`
			}
			_ = json.Unmarshal(b, &e)
			switch {
			case strings.Contains(r.Body, "notanaccount"): // captured to show the CLI sends it unchecked
				if e.Type != "InvalidParameterException" {
					t.Errorf("%s %s: %d %s, want InvalidParameterException", op, r.Body, status, b)
				}
			case status == 200:
			case e.Type == "RepositoryNotFoundException", e.Type == "RepositoryAlreadyExistsException", e.Type == "ImageNotFoundException":
			default:
				t.Errorf("%s %s (from %s): %d %s", op, r.Body, filepath.Base(filepath.Dir(path)), status, b)
			}
		}
		f.Close()
	}
	if n < 10 {
		t.Errorf("only %d captured requests for the operations served", n)
	}
}

// FuzzOperations sends arbitrary bodies to every operation served, signed
// by an admin, over a repository with an image: whatever the body, the
// answer is a 200 or a client error in the ECR shape, never an internal
// error. Seeds are the bodies real clients sent in the contract's
// captures.
func FuzzOperations(f *testing.F) {
	ops := []string{"CreateRepository", "DescribeRepositories", "DeleteRepository", "PutImageScanningConfiguration",
		"GetAuthorizationToken", "DescribeRegistry", "DescribeImages", "ListImages", "BatchGetImage", "BatchDeleteImage",
		"PutRegistryScanningConfiguration", "GetRegistryScanningConfiguration", "BatchGetRepositoryScanningConfiguration",
		"StartImageScan", "DescribeImageScanFindings"}
	s := newStack(f, storetest.SQLite(f))
	seedImages(f, s.DB, "scanrepo-prod", 3)
	logs, err := filepath.Glob(filepath.Join(testutil.RepoRoot(f), "..", "shared", "contract", "logs", "*", "requests.jsonl"))
	if err != nil || len(logs) == 0 {
		f.Fatalf("contract captures: %v", err)
	}
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			var r struct {
				Headers [][2]string `json:"headers"`
				Body    string      `json:"body"`
			}
			if json.Unmarshal(line, &r) != nil {
				continue
			}
			// Each body goes to the operation it was sent to, or, for the
			// operations not served here, to DescribeImages.
			op := 6
			for _, h := range r.Headers {
				if strings.EqualFold(h[0], "X-Amz-Target") {
					if i := slices.Index(ops, strings.TrimPrefix(h[1], target)); i >= 0 {
						op = i
					}
				}
			}
			f.Add(uint8(op), r.Body)
		}
	}
	f.Add(uint8(8), `{"repositoryName":"scanrepo-prod","imageIds":[{"imageTag":"v1"},{"imageDigest":"sha256:zz"}],"acceptedMediaTypes":["x"]}`)
	f.Add(uint8(9), `{"repositoryName":"scanrepo-prod","imageIds":[{"imageTag":"v2","imageDigest":"sha256:00"}]}`)
	f.Fuzz(func(t *testing.T, op uint8, body string) {
		name := ops[int(op)%len(ops)]
		status, h, b := rawCall(t, s, s.Admin, "/", name, []byte(body))
		if status == 200 {
			if !json.Valid(b) {
				t.Fatalf("%s %q: 200 with %q", name, body, b)
			}
			return
		}
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if status != 400 || json.Unmarshal(b, &e) != nil || e.Type == "" || e.Type != h.Get("x-amzn-ErrorType") {
			t.Fatalf("%s %q: %d %q", name, body, status, b)
		}
	})
}
