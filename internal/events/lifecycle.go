package events

import (
	"encoding/json"
	"fmt"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
)

// imageDeleted returns the ECR Image Action DELETE events of an image
// deletion: one per tag the image had, or one with an empty image-tag for
// an untagged image. Their detail has the five fields of AWS's DELETE
// example (contract §11.1): no media types.
func (b Builder) imageDeleted(e store.OutboxEvent) ([]Envelope, error) {
	var p store.ImageDeleted
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
			ActionType: "DELETE", Result: "SUCCESS", RepositoryName: p.Repository, ImageDigest: p.Digest, ImageTag: tag,
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

// coverageDetail takes the resource id out of a stored Inspector2
// Coverage detail: it returns the detail as AWS shapes it and the id for
// the envelope's resources.
func coverageDetail(raw json.RawMessage) (json.RawMessage, string, error) {
	var d scan.CoverageDetail
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, "", fmt.Errorf("coverage detail: %w", err)
	}
	id := d.ResourceID
	d.ResourceID = ""
	out, err := json.Marshal(d)
	if err != nil {
		return nil, "", fmt.Errorf("coverage detail: %w", err)
	}
	return out, id, nil
}
