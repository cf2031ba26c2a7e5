package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/drydockhq/drydock/internal/awsapi/inspector"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
)

// JavaTimeLayout is the layout of the timestamps inside an Inspector2
// Finding event's detail ("Wed Sep 04 16:55:38.411 UTC 2024"), always in
// UTC. The API gives the same times as epoch seconds; only the event
// writes them this way (contract §11.5).
const JavaTimeLayout = "Mon Jan 02 15:04:05.000 MST 2006"

// javaTime is a timestamp written in JavaTimeLayout.
type javaTime struct{ time.Time }

func javaAt(t time.Time) javaTime { return javaTime{t} }

// MarshalJSON writes the time as a JavaTimeLayout string in UTC.
func (t javaTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format(JavaTimeLayout))
}

// Image is what the registry knows, at delivery, of the image a finding
// event is about. A nil *Image (the image is gone) leaves its tags and
// push time out of the event.
type Image struct {
	Tags     []string
	PushedAt time.Time
}

// The event shape of inspector2's Finding: the API's shape with its
// timestamps overridden (a field of the outer struct hides the embedded
// one of the same JSON name) and the resource given its provider fields
// and the provider-agnostic image copy.
type (
	eventFinding struct {
		inspector.Finding
		FirstObservedAt             javaTime               `json:"firstObservedAt"`
		LastObservedAt              javaTime               `json:"lastObservedAt"`
		UpdatedAt                   javaTime               `json:"updatedAt,omitzero"`
		Resources                   []eventResource        `json:"resources"`
		PackageVulnerabilityDetails *eventVulnDetails      `json:"packageVulnerabilityDetails,omitempty"`
		ExploitabilityDetails       *eventExploitabilities `json:"exploitabilityDetails,omitempty"`
	}
	eventResource struct {
		Type              string               `json:"type"`
		ID                string               `json:"id"`
		Partition         string               `json:"partition"`
		Region            string               `json:"region"`
		Provider          string               `json:"provider"`
		ProviderAccountID string               `json:"providerAccountId"`
		Details           eventResourceDetails `json:"details"`
	}
	eventResourceDetails struct {
		AwsEcrContainerImage eventEcrImage `json:"awsEcrContainerImage"`
		Image                eventImage    `json:"image"`
	}
	eventEcrImage struct {
		inspector.EcrContainerImage
		PushedAt javaTime `json:"pushedAt,omitzero"`
	}
	eventImage struct {
		RepositoryName string   `json:"repositoryName"`
		Registry       string   `json:"registry"`
		ImageTags      []string `json:"imageTags,omitempty"`
		ImageDigest    string   `json:"imageDigest"`
		PushedAt       javaTime `json:"pushedAt,omitzero"`
		Architecture   string   `json:"architecture,omitempty"`
		Platform       string   `json:"platform,omitempty"`
	}
	eventVulnDetails struct {
		*inspector.PackageVulnerabilityDetails
		VendorCreatedAt javaTime `json:"vendorCreatedAt,omitzero"`
		VendorUpdatedAt javaTime `json:"vendorUpdatedAt,omitzero"`
	}
	eventExploitabilities struct {
		LastKnownExploitAt javaTime `json:"lastKnownExploitAt"`
	}
)

// findingEvent turns a stored scan.Finding into the detail of an
// Inspector2 Finding event and the image ARN for the envelope.
func (b Builder) findingEvent(f *scan.Finding, img *Image) (json.RawMessage, string, error) {
	o := inspector.ShapeOptions{Account: b.Account, Region: b.Region}
	if img != nil {
		o.Tags, o.PushedAt = img.Tags, img.PushedAt
	}
	if b.Exploitability != nil {
		o.Exploitability = b.Exploitability(f)
	}
	w := inspector.Shape(f, o)
	ev := eventFinding{
		Finding:         w,
		FirstObservedAt: javaAt(w.FirstObservedAt.Time),
		LastObservedAt:  javaAt(w.LastObservedAt.Time),
		UpdatedAt:       javaAt(w.UpdatedAt.Time),
	}
	if d := w.PackageVulnerabilityDetails; d != nil {
		ev.PackageVulnerabilityDetails = &eventVulnDetails{PackageVulnerabilityDetails: d,
			VendorCreatedAt: javaAt(d.VendorCreatedAt.Time), VendorUpdatedAt: javaAt(d.VendorUpdatedAt.Time)}
	}
	if x := w.ExploitabilityDetails; x != nil {
		ev.ExploitabilityDetails = &eventExploitabilities{LastKnownExploitAt: javaAt(x.LastKnownExploitAt.Time)}
	}
	arn := ""
	for _, r := range w.Resources {
		c := r.Details.AwsEcrContainerImage
		ev.Resources = append(ev.Resources, eventResource{
			Type: r.Type, ID: r.ID, Partition: r.Partition, Region: r.Region, Provider: "AWS", ProviderAccountID: b.Account,
			Details: eventResourceDetails{
				AwsEcrContainerImage: eventEcrImage{EcrContainerImage: c, PushedAt: javaAt(c.PushedAt.Time)},
				Image: eventImage{RepositoryName: c.RepositoryName, Registry: c.Registry, ImageTags: c.ImageTags,
					ImageDigest: c.ImageHash, PushedAt: javaAt(c.PushedAt.Time), Architecture: c.Architecture, Platform: c.Platform},
			},
		})
		if arn == "" {
			arn = r.ID
		}
	}
	detail, err := json.Marshal(ev)
	if err != nil {
		return nil, "", fmt.Errorf("finding %s: %w", f.FindingArn, err)
	}
	return detail, arn, nil
}

// storedFinding reads a scan outbox detail written as a scan.Finding
// (it names its image by repositoryName and imageDigest). ok is false
// for a detail already in the event shape.
func storedFinding(detail json.RawMessage) (*scan.Finding, bool) {
	var w struct {
		scan.Finding
		Resources json.RawMessage `json:"resources"`
	}
	if json.Unmarshal(detail, &w) != nil || w.Repository == "" || w.Digest == "" || w.Resources != nil {
		return nil, false
	}
	return &w.Finding, true
}

type imageKey struct{ repo, digest string }

// images looks up, and caches for one batch of outbox rows, the tags and
// push time of the images finding events are about.
type images struct {
	db    *store.DB
	cache map[imageKey]*Image
}

// get returns the image's registry metadata, or nil when the registry no
// longer holds it.
func (m *images) get(ctx context.Context, repo, digest string) (*Image, error) {
	k := imageKey{repo, digest}
	if img, ok := m.cache[k]; ok {
		return img, nil
	}
	var pushed int64
	err := m.db.QueryRowContext(ctx, `SELECT m.pushed_at FROM registry_manifests m
		JOIN registry_repositories r ON r.id = m.repository_id WHERE r.name = ? AND m.digest = ?`, repo, digest).Scan(&pushed)
	if errors.Is(err, sql.ErrNoRows) {
		m.cache[k] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("events: image %s@%s: %w", repo, digest, err)
	}
	img := &Image{PushedAt: time.UnixMilli(pushed).UTC()}
	rows, err := m.db.QueryContext(ctx, `SELECT t.name FROM registry_tags t
		JOIN registry_repositories r ON r.id = t.repository_id WHERE r.name = ? AND t.manifest_digest = ? ORDER BY t.name`, repo, digest)
	if err != nil {
		return nil, fmt.Errorf("events: image tags %s@%s: %w", repo, digest, err)
	}
	defer rows.Close()
	for rows.Next() {
		var tag string
		if err := rows.Scan(&tag); err != nil {
			return nil, fmt.Errorf("events: image tags %s@%s: %w", repo, digest, err)
		}
		img.Tags = append(img.Tags, tag)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events: image tags %s@%s: %w", repo, digest, err)
	}
	m.cache[k] = img
	return img, nil
}
