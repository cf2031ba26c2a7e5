package ecr_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil/imagetest"
)

// TestPullTimeAndExpiryThroughCLI: what the AWS CLI shows of monitoring
// windows. `aws ecr describe-images` gives lastRecordedPullTime once the
// image was pulled (a manifest GET; HEAD does not count), and the image's
// SCAN_ELIGIBILITY_EXPIRED status with ECR's description once it fell out
// of both windows. The push and pull are dated back in the store, since
// the registry records them on the wall clock.
func TestPullTimeAndExpiryThroughCLI(t *testing.T) {
	img := imagetest.Alpine310(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStackWith(t, db, applySecdb(t)) // an empty database leaves findings unavailable
		c := s.client(s.Admin)
		awsCLI := newCLI(t, s.URL, s.Admin.ID, s.Admin.Secret)
		if _, err := s.Scan.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Scan.SetWindows(ctx, scan.Windows{RescanDuration: scan.RescanDays14, PullDateRescanDuration: scan.RescanDays14,
			PullDateRescanMode: scan.PullModeLastPullDate}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String("app")}); err != nil {
			t.Fatal(err)
		}
		auth := remote.WithAuth(&authn.Basic{Username: "AWS", Password: s.password(t, c)})
		ref, err := name.ParseReference(s.Host + "/app:v1")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, auth); err != nil {
			t.Fatal(err)
		}
		dg, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- s.Scan.Run(runCtx, scan.RunOptions{PushPoll: 50 * time.Millisecond, QueuePoll: 200 * time.Millisecond, WindowSweep: 1000 * time.Hour})
		}()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
		deadline := time.Now().Add(2 * time.Minute)
		for {
			st, err := s.Scan.ScanStatus(ctx, "app", dg.String())
			if err == nil && st.Status == scan.StatusActive {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not scanned: %+v %v", st, err)
			}
			time.Sleep(20 * time.Millisecond)
		}

		type detail struct {
			ImageDigest          string  `json:"imageDigest"`
			LastRecordedPullTime *string `json:"lastRecordedPullTime"` // the CLI prints ISO 8601
			ImageScanStatus      *struct {
				Status      string `json:"status"`
				Description string `json:"description"`
			} `json:"imageScanStatus"`
		}
		describe := func() detail {
			t.Helper()
			var out struct {
				ImageDetails []detail `json:"imageDetails"`
			}
			awsCLI.ok(&out, "ecr", "describe-images", "--repository-name", "app")
			if len(out.ImageDetails) != 1 || out.ImageDetails[0].ImageDigest != dg.String() {
				t.Fatalf("describe-images: %+v", out)
			}
			return out.ImageDetails[0]
		}
		if _, err := remote.Head(ref, auth); err != nil {
			t.Fatal(err)
		}
		if d := describe(); d.LastRecordedPullTime != nil {
			t.Fatalf("lastRecordedPullTime %s after a HEAD only", *d.LastRecordedPullTime)
		}
		before := time.Now()
		if _, err := remote.Get(ref, auth); err != nil {
			t.Fatal(err)
		}
		// The registry records the pull after answering: wait for it
		// through the SDK, then look with the CLI.
		for {
			out, err := c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String("app")})
			if err != nil {
				t.Fatal(err)
			}
			if out.ImageDetails[0].LastRecordedPullTime != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the pull was never recorded")
			}
			time.Sleep(20 * time.Millisecond)
		}
		d := describe()
		if d.LastRecordedPullTime == nil {
			t.Fatal("no lastRecordedPullTime after a pull")
		}
		pulled, err := time.Parse(time.RFC3339, *d.LastRecordedPullTime)
		if err != nil {
			t.Fatal(err)
		}
		if pulled.Before(before.Add(-time.Second)) || pulled.After(time.Now().Add(time.Second)) {
			t.Fatalf("lastRecordedPullTime %v, pulled between %v and now", pulled, before)
		}

		// Twenty days later for this image: pushed and pulled before both
		// 14-day windows.
		old := time.Now().Add(-20 * 24 * time.Hour)
		if _, err := db.ExecContext(ctx, `UPDATE registry_manifests SET pushed_at = ?, last_pulled_at = ? WHERE digest = ?`,
			old.UnixMilli(), old.UnixMilli(), dg.String()); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE scan_scans SET started_at = ? WHERE image_digest = ?`, old.UnixMilli(), dg.String()); err != nil {
			t.Fatal(err)
		}
		res, err := s.Scan.SweepWindows(ctx)
		if err != nil || res.Expired != 1 {
			t.Fatalf("sweep: %+v %v", res, err)
		}
		d = describe()
		if d.ImageScanStatus == nil || d.ImageScanStatus.Status != "SCAN_ELIGIBILITY_EXPIRED" ||
			d.ImageScanStatus.Description != "The configured scan duration has lapsed for this image." {
			t.Fatalf("imageScanStatus %+v", d.ImageScanStatus)
		}
		if d.LastRecordedPullTime == nil {
			t.Fatal("lastRecordedPullTime gone")
		}
		if got, err := time.Parse(time.RFC3339, *d.LastRecordedPullTime); err != nil || !got.Equal(old.Truncate(time.Millisecond)) {
			t.Fatalf("lastRecordedPullTime %s (%v), want %v", *d.LastRecordedPullTime, err, old)
		}
	})
}
