package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydockhq/drydock/internal/auth"
)

// TestServeRegion runs `drydock serve` with DRYDOCK_REGION=eu-west-1 and
// checks that the region reaches both the scanning service (repository
// and image ARNs in its events, providerRegion) and the event envelopes:
// an ECR repository created under enhanced scanning (ECR Scan Resource
// Change), a push (ECR Image Action) and the image's coverage (Inspector2
// Coverage) all name eu-west-1.
func TestServeRegion(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("event %s: %v", body, err)
		}
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}))
	defer hook.Close()
	if code, _, errOut := runDrydock(t, "events", "targets", "add", "--data-dir", dir, "--name", "hook", "--url", hook.URL,
		"--secret", "region-test-secret", "--pattern", `{"source":["aws.ecr","aws.inspector2"]}`); code != 0 {
		t.Fatalf("targets add: %s", errOut)
	}
	ctx := context.Background()
	getenv := func(k string) string {
		if k == "DRYDOCK_REGION" {
			return "eu-west-1"
		}
		return ""
	}
	srv := startServe(t, getenv, "--data-dir", dir, "--scan-workers", "1")
	addr, logs := srv.addr, srv.logs
	key, err := auth.ReadKeyFile(filepath.Join(dir, auth.AdminKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c := sdkecr.New(sdkecr.Options{Region: "eu-west-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "")})
	if _, err := c.PutRegistryScanningConfiguration(ctx, &sdkecr.PutRegistryScanningConfigurationInput{ScanType: types.ScanTypeEnhanced}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String("apps/web")}); err != nil {
		t.Fatal(err)
	}
	code, pw, errOut := runDrydock(t, "login-password", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("login-password: %s", errOut)
	}
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(addr+"/apps/web:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "AWS", Password: strings.TrimSpace(pw)})); err != nil {
		t.Fatal(err)
	}
	dg, _ := img.Digest()

	want := map[string]bool{"ECR Scan Resource Change": true, "ECR Image Action": true, "Inspector2 Coverage": true}
	byType := map[string]map[string]any{}
	for deadline := time.Now().Add(60 * time.Second); len(byType) < len(want); {
		mu.Lock()
		for _, ev := range got {
			if dt, _ := ev["detail-type"].(string); want[dt] {
				byType[dt] = ev
			}
		}
		mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("events delivered: %v\n%s", byType, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := srv.stop(); code != 0 {
		t.Errorf("serve exit %d:\n%s", code, logs)
	}
	for dt, ev := range byType {
		if ev["region"] != "eu-west-1" {
			t.Errorf("%s: envelope region %v", dt, ev["region"])
		}
	}
	scope := byType["ECR Scan Resource Change"]["detail"].(map[string]any)["repositories"].([]any)[0].(map[string]any)
	if arn, _ := scope["repository-arn"].(string); !strings.HasPrefix(arn, "arn:aws:ecr:eu-west-1:") || !strings.HasSuffix(arn, ":repository/apps/web") {
		t.Errorf("repository-arn %v", scope["repository-arn"])
	}
	cov := byType["Inspector2 Coverage"]
	res, _ := cov["resources"].([]any)
	if len(res) != 1 || !strings.HasPrefix(res[0].(string), "arn:aws:ecr:eu-west-1:") || !strings.HasSuffix(res[0].(string), "/apps/web/"+dg.String()) {
		t.Errorf("coverage resources %v", cov["resources"])
	}
	if d := cov["detail"].(map[string]any); d["providerRegion"] != "eu-west-1" {
		t.Errorf("coverage detail %v", d)
	}
}
