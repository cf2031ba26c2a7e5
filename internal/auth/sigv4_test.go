package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
)

// apiServer is a minimal stand-in for the ECR and Inspector APIs: it
// authenticates every request with the service's SigV4 verifier, then
// answers DescribeRepositories with the repository names it read from the
// request body (proving the verifier put the body back) and ListFindings
// with an empty list. Authentication failures get the AWS error shapes.
func apiServer(t *testing.T, svc *Service) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := svc.Authorize(r, "", ActionAdmin)
		target := r.Header.Get("X-Amz-Target")
		if err != nil {
			code := "AccessDeniedException"
			var ae *Error
			if errors.As(err, &ae) {
				code = ae.Code
			}
			w.Header().Set("x-amzn-ErrorType", code)
			w.WriteHeader(http.StatusForbidden)
			if target != "" {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": err.Error()})
			} else {
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
			}
			return
		}
		w.Header().Set("X-Principal", p.Name)
		switch {
		case target == ecrTargetPrefix+"DescribeRepositories":
			var in struct{ RepositoryNames []string }
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			repos := []map[string]any{}
			for _, n := range in.RepositoryNames {
				repos = append(repos, map[string]any{"repositoryName": n, "createdAt": 1732600000})
			}
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			json.NewEncoder(w).Encode(map[string]any{"repositories": repos})
		case r.URL.Path == "/findings/list":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"findings":[]}`)
		default:
			http.Error(w, "unexpected request", 404)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func ecrClient(url, id, secret, session string) *ecr.Client {
	return ecr.New(ecr.Options{
		Region:       "us-west-2",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider(id, secret, session),
		Retryer:      aws.NopRetryer{},
	})
}

func TestSigV4GoSDK(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, Options{})
		admin, err := f.svc.CreateKey(ctx, "admin", []Grant{{ActionAdmin, "*"}})
		if err != nil {
			t.Fatal(err)
		}
		puller, err := f.svc.CreateKey(ctx, "puller", []Grant{{ActionPull, "*"}})
		if err != nil {
			t.Fatal(err)
		}
		srv := apiServer(t, f.svc)

		for _, session := range []string{"", "testsession"} {
			out, err := ecrClient(srv.URL, admin.ID, admin.Secret, session).DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{
				RepositoryNames: []string{"scanrepo-prod", "team/app"},
			})
			if err != nil {
				t.Fatalf("signed by the SDK (session %q): %v", session, err)
			}
			if len(out.Repositories) != 2 || aws.ToString(out.Repositories[1].RepositoryName) != "team/app" {
				t.Errorf("the handler did not get the body back: %+v", out.Repositories)
			}
		}

		wantCode := func(name string, err error, code string) {
			t.Helper()
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != code {
				t.Errorf("%s: got %v, want %s", name, err, code)
			}
		}
		in := &ecr.DescribeRepositoriesInput{}
		_, err = ecrClient(srv.URL, admin.ID, puller.Secret, "").DescribeRepositories(ctx, in)
		wantCode("wrong secret", err, "InvalidSignatureException")
		_, err = ecrClient(srv.URL, "DDAKAAAAAAAAAAAAAAAA", admin.Secret, "").DescribeRepositories(ctx, in)
		wantCode("unknown key", err, "UnrecognizedClientException")
		_, err = ecrClient(srv.URL, puller.ID, puller.Secret, "").DescribeRepositories(ctx, in)
		wantCode("not an admin", err, "AccessDeniedException")

		// The server's clock 14 minutes off either way still accepts; 16
		// minutes is refused.
		for _, c := range []struct {
			skew time.Duration
			ok   bool
		}{{14 * time.Minute, true}, {-14 * time.Minute, true}, {16 * time.Minute, false}, {-16 * time.Minute, false}} {
			f.clock.Set(time.Now().Add(c.skew))
			_, err := ecrClient(srv.URL, admin.ID, admin.Secret, "").DescribeRepositories(ctx, in)
			if c.ok && err != nil {
				t.Errorf("skew %v: %v", c.skew, err)
			}
			if !c.ok {
				wantCode("skew "+c.skew.String(), err, "InvalidSignatureException")
			}
		}
		f.clock.Set(time.Now())

		if err := f.svc.SetKeyDisabled(ctx, admin.ID, true); err != nil {
			t.Fatal(err)
		}
		_, err = ecrClient(srv.URL, admin.ID, admin.Secret, "").DescribeRepositories(ctx, in)
		wantCode("disabled key", err, "UnrecognizedClientException")

		if strings.Contains(f.logs.String(), admin.Secret) || strings.Contains(f.logs.String(), puller.Secret) {
			t.Errorf("a secret reached the logs")
		}
	})
}

// signedRequest builds a request signed by aws-sdk-go-v2's signer, for the
// cases a client would never produce on its own.
func signedRequest(t *testing.T, url, target, service, id, secret string, body []byte, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), service, "eu-central-1", at); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestSigV4Tampering(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storetest.SQLite(t), Options{})
	k, err := f.svc.CreateKey(ctx, "admin", []Grant{{ActionAdmin, "*"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := apiServer(t, f.svc)
	target := ecrTargetPrefix + "DescribeRepositories"
	body := []byte(`{"repositoryNames":["a"]}`)
	do := func(req *http.Request) int {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := do(signedRequest(t, srv.URL, target, "ecr", k.ID, k.Secret, body, time.Now())); got != 200 {
		t.Fatalf("a correctly signed request: %d", got)
	}
	// Body changed after signing.
	req := signedRequest(t, srv.URL, target, "ecr", k.ID, k.Secret, body, time.Now())
	req.Body = io.NopCloser(bytes.NewReader([]byte(`{"repositoryNames":["b"]}`)))
	if got := do(req); got != 403 {
		t.Errorf("tampered body: %d, want 403", got)
	}
	// Signed header changed after signing.
	req = signedRequest(t, srv.URL, target, "ecr", k.ID, k.Secret, body, time.Now())
	req.Header.Set("X-Amz-Target", ecrTargetPrefix+"DeleteRepository")
	if got := do(req); got != 403 {
		t.Errorf("tampered target: %d, want 403", got)
	}
	// Signed for inspector2 but sent to the ECR API.
	if got := do(signedRequest(t, srv.URL, target, "inspector2", k.ID, k.Secret, body, time.Now())); got != 403 {
		t.Errorf("wrong service: %d, want 403", got)
	}
	// Unsigned header added: ignored, still valid.
	req = signedRequest(t, srv.URL, target, "ecr", k.ID, k.Secret, body, time.Now())
	req.Header.Set("X-Extra", "1")
	if got := do(req); got != 200 {
		t.Errorf("extra unsigned header: %d, want 200", got)
	}
	// A body larger than the limit is refused without reading it all.
	big := bytes.Repeat([]byte(" "), MaxSignedBody+1)
	if got := do(signedRequest(t, srv.URL, target, "ecr", k.ID, k.Secret, big, time.Now())); got != 403 {
		t.Errorf("oversized body: %d, want 403", got)
	}
}

// awsCLI runs the real AWS CLI v2 (/usr/bin/aws, Debian's awscli; not a
// pyenv shim earlier in PATH) against url with the given credentials.
func awsCLI(t *testing.T, url, id, secret string, args ...string) (string, error) {
	t.Helper()
	bin := testutil.RequireTool(t, "/usr/bin/aws")
	home := t.TempDir()
	cmd := exec.Command(bin, append(args, "--endpoint-url", url, "--region", "us-west-2", "--output", "json")...)
	cmd.Env = []string{
		"HOME=" + home,
		"PATH=/usr/bin:/bin",
		"AWS_ACCESS_KEY_ID=" + id,
		"AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=1",
		"AWS_PAGER=",
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSigV4AWSCLI(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storetest.SQLite(t), Options{})
	k, err := f.svc.CreateKey(ctx, "admin", []Grant{{ActionAdmin, "*"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.svc.CreateKey(ctx, "other", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := apiServer(t, f.svc)

	out, err := awsCLI(t, srv.URL, k.ID, k.Secret, "ecr", "describe-repositories", "--repository-names", "scanrepo-prod", "team/app")
	if err != nil {
		t.Fatalf("aws ecr describe-repositories: %v\n%s", err, out)
	}
	var res struct {
		Repositories []struct{ RepositoryName string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Repositories) != 2 || res.Repositories[0].RepositoryName != "scanrepo-prod" {
		t.Errorf("aws ecr describe-repositories printed %q (%v)", out, err)
	}
	// inspector2 is REST-JSON: signed for service inspector2, path-routed.
	if out, err := awsCLI(t, srv.URL, k.ID, k.Secret, "inspector2", "list-findings"); err != nil {
		t.Errorf("aws inspector2 list-findings: %v\n%s", err, out)
	}

	out, err = awsCLI(t, srv.URL, k.ID, other.Secret, "ecr", "describe-repositories")
	if err == nil || !strings.Contains(out, "InvalidSignatureException") {
		t.Errorf("wrong secret: %v\n%s", err, out)
	}
	out, err = awsCLI(t, srv.URL, "DDAKAAAAAAAAAAAAAAAA", k.Secret, "ecr", "describe-repositories")
	if err == nil || !strings.Contains(out, "UnrecognizedClientException") {
		t.Errorf("unknown key: %v\n%s", err, out)
	}
	f.clock.Set(time.Now().Add(-20 * time.Minute)) // the client is 20 minutes ahead
	out, err = awsCLI(t, srv.URL, k.ID, k.Secret, "ecr", "describe-repositories")
	if err == nil || !strings.Contains(out, "InvalidSignatureException") {
		t.Errorf("skewed clock: %v\n%s", err, out)
	}
	f.clock.Set(time.Now())
	if strings.Contains(f.logs.String(), k.Secret) {
		t.Error("the secret reached the logs")
	}
}
