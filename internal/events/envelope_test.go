package events

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

func TestFromRegistry(t *testing.T) {
	b := Builder{Account: "123456789012", Region: "us-west-2"}
	row := store.OutboxEvent{
		ID: 7, CreatedAt: time.Date(2019, 11, 16, 1, 54, 34, 500e6, time.UTC), Kind: store.OutboxImagePushed,
		Payload: []byte(`{"repository":"my-repository-name","digest":"sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234","mediaType":"application/vnd.oci.image.manifest.v1+json","size":10,"tags":["latest","v1"],"pushedAt":"2019-11-16T01:54:34.5Z"}`),
	}
	envs, err := b.FromRegistry(row)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 2 {
		t.Fatalf("%d events, want one per tag", len(envs))
	}
	// The contract's §11.1 example, with this row's tag and id.
	want := `{"version":"0","id":"` + envs[0].ID + `","detail-type":"ECR Image Action","source":"aws.ecr",
		"account":"123456789012","time":"2019-11-16T01:54:34Z","region":"us-west-2","resources":[],
		"detail":{"result":"SUCCESS","repository-name":"my-repository-name",
		"image-digest":"sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
		"action-type":"PUSH","image-tag":"latest","manifest-media-type":"application/vnd.oci.image.manifest.v1+json"}}`
	got, _ := json.Marshal(envs[0])
	var g, w any
	json.Unmarshal(got, &g)
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("envelope\n got %s\nwant %s", got, want)
	}
	if envs[0].ID == envs[1].ID {
		t.Error("two tags share an event id")
	}
	again, _ := b.FromRegistry(row)
	if again[0].ID != envs[0].ID || again[1].ID != envs[1].ID {
		t.Error("event ids are not stable for one outbox row")
	}
	other, _ := Builder{Account: "210987654321", Region: "us-west-2"}.FromRegistry(row)
	if other[0].ID == envs[0].ID {
		t.Error("two installations give the same event id")
	}

	// A push by digest: one event with an empty tag.
	row.Payload = []byte(`{"repository":"r","digest":"sha256:ab","mediaType":"application/vnd.oci.image.index.v1+json","size":1,"pushedAt":"x"}`)
	envs, err = b.FromRegistry(row)
	if err != nil || len(envs) != 1 {
		t.Fatalf("push by digest: %v, %d events", err, len(envs))
	}
	var d map[string]any
	json.Unmarshal(envs[0].Detail, &d)
	if tag, ok := d["image-tag"]; !ok || tag != "" {
		t.Errorf("push by digest: image-tag %v, want \"\"", tag)
	}
	if _, err := b.FromRegistry(store.OutboxEvent{ID: 1, Kind: store.OutboxImagePushed, Payload: []byte("{")}); err == nil {
		t.Error("broken payload accepted")
	}
	if envs, _ := b.FromRegistry(store.OutboxEvent{ID: 1, Kind: "registry.other"}); len(envs) != 0 {
		t.Error("unknown kind gave events")
	}
}

func TestFromScan(t *testing.T) {
	b := Builder{Account: "123456789012", Region: "us-east-1"}
	at := time.Date(2019, 10, 29, 2, 36, 48, 0, time.UTC)
	tests := []struct {
		detailType, detail string
		resources          []string
	}{
		{"ECR Image Scan", `{"scan-status":"COMPLETE","repository-name":"my-repository-name","finding-severity-counts":{"CRITICAL":10,"MEDIUM":9},"image-digest":"sha256:7f","image-tags":[]}`,
			[]string{"arn:aws:ecr:us-east-1:123456789012:repository/my-repository-name"}},
		{"Inspector2 Scan", `{"scan-status":"INITIAL_SCAN_COMPLETE","repository-name":"arn:aws:ecr:us-east-1:123456789012:repository/r","image-digest":"sha256:7f","image-tags":["a"],"version":"1.0"}`,
			[]string{"arn:aws:ecr:us-east-1:123456789012:repository/r"}},
		{"Inspector2 Finding", `{"awsAccountId":"123456789012","resources":[{"id":"arn:aws:ecr:us-east-1:123456789012:repository/r/sha256:7f","type":"AWS_ECR_CONTAINER_IMAGE"}]}`,
			[]string{"arn:aws:ecr:us-east-1:123456789012:repository/r/sha256:7f"}},
		{"ECR Scan Resource Change", `{"action-type":"SCAN_FREQUENCY_CHANGE","repositories":[]}`, []string{}},
	}
	for _, tt := range tests {
		env, err := b.FromScan(ScanEvent{ID: 3, CreatedAt: at, Source: "aws.x", DetailType: tt.detailType, Detail: json.RawMessage(tt.detail)})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(env.Resources, tt.resources) || env.Time != "2019-10-29T02:36:48Z" || env.Source != "aws.x" ||
			env.DetailType != tt.detailType || string(env.Detail) != tt.detail || env.Version != "0" {
			t.Errorf("%s: %+v", tt.detailType, env)
		}
	}
	if _, err := b.FromScan(ScanEvent{ID: 1, Detail: json.RawMessage("{")}); err == nil {
		t.Error("broken detail accepted")
	}
}
