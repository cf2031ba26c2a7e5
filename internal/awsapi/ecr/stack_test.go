package ecr_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecr "github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/awsapi/ecr"
	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/registry"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil/awstest"
	"github.com/drydockhq/drydock/internal/vulndb"
)

func TestMain(m *testing.M) {
	code := storetest.Main(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// syncBuffer collects logs written from the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stack is the handler stack of `drydock serve` (registry on /v2/, the
// ECR API for POST requests with X-Amz-Target) in an httptest server on
// 127.0.0.1, over a real store.
type stack struct {
	URL   string // http://127.0.0.1:PORT
	Host  string // 127.0.0.1:PORT
	DB    *store.DB
	Auth  *auth.Service
	API   *ecr.Service
	Scan  *scan.Service
	Admin auth.AccessKey
	logs  *syncBuffer
}

// newStack is the stack with a scanning service whose workers do not
// run and whose vulnerability database is empty: scans start, none ends.
func newStack(t testing.TB, db *store.DB) *stack { return newStackWith(t, db, nil) }

// newStackWith is the stack with the vulnerability database that feed
// applies (when not nil), before the scanning service opens it.
func newStackWith(t testing.TB, db *store.DB, feed func(ctx context.Context, vdb *vulndb.DB) error) *stack {
	t.Helper()
	ctx := context.Background()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := db.MigrateRegistry(ctx); err != nil {
		t.Fatal(err)
	}
	authSvc, err := auth.Open(ctx, db, auth.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Options{Store: db, Blobs: blobs, Auth: authSvc, Challenge: authSvc.Challenge(), Log: log})
	vdb, err := vulndb.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if feed != nil {
		if err := feed(ctx, vdb); err != nil {
			t.Fatal(err)
		}
	}
	vix, err := vulndb.OpenIndex(ctx, vdb)
	if err != nil {
		t.Fatal(err)
	}
	scanner, err := scan.New(ctx, scan.Options{Store: db, Blobs: blobs, Vulns: vix, AccountID: "123456789012", Log: log,
		RepositoryScanOnPush: ecr.RepositoryScanOnPush(db)})
	if err != nil {
		t.Fatal(err)
	}
	api, err := ecr.New(ctx, ecr.Options{Store: db, Auth: authSvc, Log: log, Scanner: scanner})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/"):
			reg.ServeHTTP(w, r)
		case r.Method == http.MethodPost && r.Header.Get("X-Amz-Target") != "":
			api.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	admin, err := authSvc.CreateKey(ctx, "admin", []auth.Grant{{Action: auth.ActionAdmin, Pattern: "*"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
		if strings.Contains(logs.String(), admin.Secret) {
			t.Error("the admin secret reached the logs")
		}
	})
	return &stack{
		URL: srv.URL, Host: strings.TrimPrefix(srv.URL, "http://"),
		DB: db, Auth: authSvc, API: api, Scan: scanner, Admin: admin, logs: logs,
	}
}

// client is aws-sdk-go-v2's ECR client for the stack, signing with key,
// in region us-west-2, retrying connection errors only (see
// awstest.Retryer).
func (s *stack) client(k auth.AccessKey) *sdkecr.Client {
	return sdkecr.New(sdkecr.Options{
		Region:       "us-west-2",
		BaseEndpoint: aws.String(s.URL),
		Credentials:  awstest.Credentials(k),
		Retryer:      awstest.Retryer(),
	})
}

// key creates an access key for a principal with grants.
func (s *stack) key(t *testing.T, name string, grants ...auth.Grant) auth.AccessKey {
	t.Helper()
	k, err := s.Auth.CreateKey(context.Background(), name, grants)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// password gets a registry login password through the SDK's
// GetAuthorizationToken, decoding it as `aws ecr get-login-password` does.
func (s *stack) password(t *testing.T, c *sdkecr.Client) string {
	t.Helper()
	out, err := c.GetAuthorizationToken(context.Background(), &sdkecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		t.Fatal(err)
	}
	user, pw, ok := strings.Cut(string(raw), ":")
	if !ok || user != "AWS" || strings.Contains(pw, ":") {
		t.Fatalf("authorization token decodes to %q", raw)
	}
	return pw
}

// wantCode fails unless err is an API error with the given code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	awstest.WantCode(t, what, err, code)
}
