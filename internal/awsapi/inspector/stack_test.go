package inspector_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/testutil/awstest"
	"github.com/drydockhq/drydock/internal/testutil/imagetest"
	"github.com/drydockhq/drydock/internal/testutil/regtest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/awsapi/inspector"
	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/registry"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// stack is a registry, the real scan service with the Alpine 3.10 secdb
// fixture, and the Inspector API, in one httptest server on 127.0.0.1.
type stack struct {
	URL   string
	host  string
	db    *store.DB
	auth  *auth.Service
	scan  *scan.Service
	admin auth.AccessKey
	// exportDir is the SBOM export directory.
	exportDir string
}

func newStack(t testing.TB, db *store.DB) *stack {
	t.Helper()
	ctx := context.Background()
	if err := db.MigrateRegistry(ctx); err != nil {
		t.Fatal(err)
	}
	authSvc, err := auth.Open(ctx, db, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, vix, _ := regtest.AlpineVulns(t, db)
	account, err := awsapi.LoadAccount(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := scan.New(ctx, scan.Options{Store: db, Blobs: bs, Vulns: vix, AccountID: account.ID, Region: "us-west-2"})
	if err != nil {
		t.Fatal(err)
	}
	exportDir := t.TempDir()
	api, err := inspector.New(ctx, inspector.Options{Store: db, Auth: authSvc, Scan: svc, ExportDir: exportDir})
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Options{Store: db, Blobs: bs, CreateOnPush: true})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/") {
			reg.ServeHTTP(w, r)
			return
		}
		if inspector.IsPath(r.URL.Path) {
			api.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- svc.Run(runCtx, scan.RunOptions{PushPoll: 50 * time.Millisecond, QueuePoll: 200 * time.Millisecond})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	admin, err := authSvc.CreateKey(ctx, "admin", []auth.Grant{{Action: auth.ActionAdmin, Pattern: "*"}})
	if err != nil {
		t.Fatal(err)
	}
	return &stack{URL: srv.URL, host: strings.TrimPrefix(srv.URL, "http://"), db: db, auth: authSvc, scan: svc, admin: admin, exportDir: exportDir}
}

func (s *stack) client(k auth.AccessKey) *inspector2.Client {
	return inspector2.New(inspector2.Options{
		Region:       "us-west-2",
		BaseEndpoint: aws.String(s.URL),
		Credentials:  awstest.Credentials(k),
		Retryer:      awstest.Retryer(),
	})
}

func (s *stack) push(t testing.TB, img v1.Image, ref string) string {
	t.Helper()
	r, err := name.ParseReference(s.host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// waitScanned polls the image's scan status until the scan finished.
func (s *stack) waitScanned(t testing.TB, repo, dg string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := s.scan.ScanStatus(context.Background(), repo, dg)
		if err == nil && (st.Status == scan.StatusComplete || st.Status == scan.StatusActive) {
			return
		}
		if err == nil && (st.Status == scan.StatusFailed || st.Status == scan.StatusUnsupportedImage) {
			t.Fatalf("%s@%s: %+v", repo, dg, st)
		}
		if err != nil && !errors.Is(err, scan.ErrScanNotFound) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s@%s not scanned: %+v %v", repo, dg, st, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// downgraded returns img with a layer on top holding an apk database in
// which the OpenSSL libraries are at 1.1.1c-r0, a version the Alpine 3.10
// secdb lists as fixed in 1.1.1d-r0 for CVE-2019-1547, CVE-2019-1549 and
// CVE-2019-1563.
func downgraded(t testing.TB, img v1.Image) v1.Image {
	t.Helper()
	return imagetest.WithAPKVersions(t, img, map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0"})
}

// wantCode fails unless err is an API error with the given code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	awstest.WantCode(t, what, err, code)
}
