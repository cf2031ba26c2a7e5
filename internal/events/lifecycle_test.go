package events

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// sameJSON compares two JSON texts as values.
func sameJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

// TestImageDeletedEvents: an image deletion is the contract's §11.1 DELETE
// example (one event per tag the image had, the example's five detail
// fields), and an untagged image's deletion one event with an empty tag.
func TestImageDeletedEvents(t *testing.T) {
	b := Builder{Account: "123456789012", Region: "us-west-2"}
	row := store.OutboxEvent{
		ID: 9, CreatedAt: time.Date(2019, 11, 16, 2, 1, 5, 0, time.UTC), Kind: store.OutboxImageDeleted,
		Payload: []byte(`{"repository":"my-repository-name","digest":"sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",` +
			`"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.oci.image.config.v1+json",` +
			`"tags":["latest","v1"],"deletedAt":"2019-11-16T02:01:05Z"}`),
	}
	envs, err := b.FromRegistry(row)
	if err != nil || len(envs) != 2 {
		t.Fatalf("%d events (%v), want one per tag", len(envs), err)
	}
	got, _ := json.Marshal(envs[0])
	// The contract's DELETE example with this row's id.
	sameJSON(t, got, `{"version":"0","id":"`+envs[0].ID+`","detail-type":"ECR Image Action","source":"aws.ecr",
		"account":"123456789012","time":"2019-11-16T02:01:05Z","region":"us-west-2","resources":[],
		"detail":{"result":"SUCCESS","repository-name":"my-repository-name",
		"image-digest":"sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
		"action-type":"DELETE","image-tag":"latest"}}`)
	var d map[string]any
	json.Unmarshal(envs[1].Detail, &d)
	if d["image-tag"] != "v1" || envs[0].ID == envs[1].ID {
		t.Errorf("second event %s (id %s)", envs[1].Detail, envs[1].ID)
	}

	row.Payload = []byte(`{"repository":"r","digest":"sha256:ab","mediaType":"application/vnd.oci.image.manifest.v1+json","deletedAt":"x"}`)
	envs, err = b.FromRegistry(row)
	if err != nil || len(envs) != 1 {
		t.Fatalf("untagged: %v, %d events", err, len(envs))
	}
	d = nil
	json.Unmarshal(envs[0].Detail, &d)
	if tag, ok := d["image-tag"]; !ok || tag != "" || d["action-type"] != "DELETE" {
		t.Errorf("untagged image: %s", envs[0].Detail)
	}
	// A tag removed from an image that stays: a DELETE for that tag.
	row.Kind = store.OutboxTagDeleted
	row.Payload = []byte(`{"repository":"r","digest":"sha256:ab","mediaType":"application/vnd.oci.image.manifest.v1+json","tags":["old"],"deletedAt":"x"}`)
	envs, err = b.FromRegistry(row)
	if err != nil || len(envs) != 1 {
		t.Fatalf("untag: %v, %d events", err, len(envs))
	}
	d = nil
	json.Unmarshal(envs[0].Detail, &d)
	if d["image-tag"] != "old" || d["action-type"] != "DELETE" || d["image-digest"] != "sha256:ab" {
		t.Errorf("untag: %s", envs[0].Detail)
	}
	if _, err := b.FromRegistry(store.OutboxEvent{ID: 1, Kind: store.OutboxImageDeleted, Payload: []byte("{")}); err == nil {
		t.Error("broken payload accepted")
	}
	// Repository creations and deletions are the scanning service's to
	// announce (ECR Scan Resource Change): no registry event of their own.
	for _, kind := range []string{store.OutboxRepositoryCreated, store.OutboxRepositoryDeleted} {
		if envs, err := b.FromRegistry(store.OutboxEvent{ID: 1, Kind: kind, Payload: []byte(`{"repository":"r"}`)}); err != nil || len(envs) != 0 {
			t.Errorf("%s: %d events (%v)", kind, len(envs), err)
		}
	}
}

// TestCoverageEnvelope: an Inspector2 Coverage row of the scan outbox
// becomes the contract's §11.6 shape, the image ARN moved from the stored
// detail to the envelope's resources.
func TestCoverageEnvelope(t *testing.T) {
	b := Builder{Account: "111122223333", Region: "us-east-1"}
	arn := "arn:aws:ecr:us-east-1:111122223333:repository/inspector2/sha256:965fbcae990b0467ed5657caceaec165018ef44a4d2d46c7cdea80a9dff0d1ea"
	stored := `{"scanStatus":{"reason":"SUCCESSFUL","statusCodeValue":"ACTIVE"},"scanType":"PACKAGE","provider":"AWS",` +
		`"providerAccountId":"111122223333","providerRegion":"us-east-1","eventTimestamp":"2023-01-20T22:51:35.665501Z","version":"1.0",` +
		`"drydockResourceId":"` + arn + `"}`
	env, err := b.FromScan(ScanEvent{ID: 4, CreatedAt: time.Date(2023, 1, 20, 22, 51, 39, 0, time.UTC), Source: "aws.inspector2",
		DetailType: "Inspector2 Coverage", Detail: json.RawMessage(stored)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(env)
	// The contract's example with an ECR image for the EC2 instance.
	sameJSON(t, got, `{"version":"0","id":"`+env.ID+`","detail-type":"Inspector2 Coverage","source":"aws.inspector2",
		"account":"111122223333","time":"2023-01-20T22:51:39Z","region":"us-east-1","resources":["`+arn+`"],
		"detail":{"scanStatus":{"reason":"SUCCESSFUL","statusCodeValue":"ACTIVE"},"scanType":"PACKAGE","provider":"AWS",
		"providerAccountId":"111122223333","providerRegion":"us-east-1","eventTimestamp":"2023-01-20T22:51:35.665501Z","version":"1.0"}}`)
	if _, err := b.FromScan(ScanEvent{ID: 5, DetailType: "Inspector2 Coverage", Detail: json.RawMessage(`[1]`)}); err == nil {
		t.Error("a coverage detail that is not an object accepted")
	}
}
