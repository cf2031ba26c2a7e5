// Package events delivers Drydock's events to webhooks. It reads the
// transactional outboxes of the registry (registry_outbox) and of the
// scanning service (scan_outbox), wraps each event in an EventBridge
// envelope (version "0", id, detail-type, source, account, time, region,
// resources, detail), and POSTs it, signed with HMAC-SHA256, to every
// enabled target whose event pattern matches, with retries, leases and a
// dead-letter record (docs/events.md).
package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
)

// Envelope is an EventBridge event.
type Envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// Outbox names, used in event ids and cursor names.
const (
	RegistryOutbox = "registry_outbox"
	ScanOutbox     = "scan_outbox"
)

// idSpace is the UUID namespace of Drydock event ids.
var idSpace = uuid.MustParse("6f1e4a52-3c0b-4d9e-9a51-0d4f2b7c8e11")

// Builder turns outbox rows into envelopes.
type Builder struct {
	// Account is the registry (account) id of the envelope and of ARNs.
	Account string
	// Region is the envelope's region and the region of ARNs.
	Region string
	// Exploitability, when set, gives the EPSS score and KEV date of a
	// finding's CVEs for Inspector2 Finding events (the scan service's
	// Exploitability); unset, the events have no epss and no
	// exploitabilityDetails.
	Exploitability func(*scan.Finding) scan.Exploitability
}

// eventID is stable for one outbox row (and its n-th event), so a retry
// or a re-read after a restart carries the same id.
func (b Builder) eventID(outbox string, row int64, n int) string {
	return uuid.NewSHA1(idSpace, fmt.Appendf(nil, "%s/%s/%d/%d", b.Account, outbox, row, n)).String()
}

func eventTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func (b Builder) repositoryArn(repo string) string {
	return fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", b.Region, b.Account, repo)
}

// imageAction is the detail of an ECR Image Action event.
type imageAction struct {
	ActionType        string `json:"action-type"`
	Result            string `json:"result"`
	RepositoryName    string `json:"repository-name"`
	ImageDigest       string `json:"image-digest"`
	ImageTag          string `json:"image-tag"`
	ManifestMediaType string `json:"manifest-media-type,omitempty"`
	ArtifactMediaType string `json:"artifact-media-type,omitempty"`
}

// FromRegistry returns the events of one registry outbox row: an
// image push gives one ECR Image Action per pushed tag (one with an empty
// image-tag for a push by digest), an image deletion one DELETE per tag it
// had (one with an empty image-tag for an untagged image), a tag removed
// from an image that stays one DELETE for that tag. Kinds it does not know
// give none.
func (b Builder) FromRegistry(e store.OutboxEvent) ([]Envelope, error) {
	if e.Kind == store.OutboxImageDeleted || e.Kind == store.OutboxTagDeleted {
		return b.imageDeleted(e)
	}
	if e.Kind != store.OutboxImagePushed {
		return nil, nil
	}
	var p store.ImagePushed
	if err := json.Unmarshal(e.Payload, &p); err != nil {
		return nil, fmt.Errorf("events: registry outbox row %d: %w", e.ID, err)
	}
	tags := p.Tags
	if len(tags) == 0 {
		tags = []string{""}
	}
	out := make([]Envelope, 0, len(tags))
	for i, tag := range tags {
		detail, err := json.Marshal(imageAction{
			ActionType: "PUSH", Result: "SUCCESS", RepositoryName: p.Repository, ImageDigest: p.Digest,
			ImageTag: tag, ManifestMediaType: p.MediaType, ArtifactMediaType: p.ArtifactType,
		})
		if err != nil {
			return nil, fmt.Errorf("events: registry outbox row %d: %w", e.ID, err)
		}
		out = append(out, Envelope{
			Version: "0", ID: b.eventID(RegistryOutbox, e.ID, i), DetailType: "ECR Image Action", Source: "aws.ecr",
			Account: b.Account, Time: eventTime(e.CreatedAt), Region: b.Region, Resources: []string{}, Detail: detail,
		})
	}
	return out, nil
}

// ScanEvent is one event of the scan outbox: ID is its row's, and Index
// its place among the row's events (a row may hold many; see
// scan.ReadOutbox).
type ScanEvent struct {
	ID         int64
	Index      int
	CreatedAt  time.Time
	Source     string
	DetailType string
	Detail     json.RawMessage
	// Image is the registry's metadata of the image of an Inspector2
	// Finding row, read at delivery; nil when the image is gone.
	Image *Image
}

// FromScan wraps one scan outbox row, adding the resources AWS lists for
// its type. Most details are stored EventBridge-shaped; an Inspector2
// Finding row stores Drydock's scan.Finding, which becomes inspector2's
// Finding in its event form (contract §11.5: Java-style timestamps, the
// resource's provider fields and image copy) with the image ARN as the
// envelope's resource.
func (b Builder) FromScan(e ScanEvent) (Envelope, error) {
	if !json.Valid(e.Detail) {
		return Envelope{}, fmt.Errorf("events: scan outbox row %d: detail is not JSON", e.ID)
	}
	var d struct {
		RepositoryName string `json:"repository-name"`
		Resources      []struct {
			ID string `json:"id"`
		} `json:"resources"`
	}
	// The detail may be any JSON value; fields are looked up when it is
	// an object.
	_ = json.Unmarshal(e.Detail, &d)
	res := []string{}
	switch e.DetailType {
	case "ECR Image Scan":
		if d.RepositoryName != "" {
			res = append(res, b.repositoryArn(d.RepositoryName))
		}
	case "Inspector2 Scan":
		// Its repository-name is already the repository ARN.
		if d.RepositoryName != "" {
			res = append(res, d.RepositoryName)
		}
	case scan.DetailInspector2Finding:
		if f, ok := storedFinding(e.Detail); ok {
			detail, arn, err := b.findingEvent(f, e.Image)
			if err != nil {
				return Envelope{}, fmt.Errorf("events: scan outbox row %d: %w", e.ID, err)
			}
			e.Detail = detail
			if arn != "" {
				res = append(res, arn)
			}
			break
		}
		// A detail already in the event shape names its resources.
		for _, r := range d.Resources {
			if r.ID != "" {
				res = append(res, r.ID)
			}
		}
	case scan.DetailInspector2Coverage:
		detail, id, err := coverageDetail(e.Detail)
		if err != nil {
			return Envelope{}, fmt.Errorf("events: scan outbox row %d: %w", e.ID, err)
		}
		e.Detail = detail
		if id != "" {
			res = append(res, id)
		}
	}
	return Envelope{
		Version: "0", ID: b.eventID(ScanOutbox, e.ID, e.Index), DetailType: e.DetailType, Source: e.Source,
		Account: b.Account, Time: eventTime(e.CreatedAt), Region: b.Region, Resources: res, Detail: e.Detail,
	}, nil
}
