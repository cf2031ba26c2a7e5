package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// Event sources and detail types written to the scan outbox.
const (
	SourceECR        = "aws.ecr"
	SourceInspector2 = "aws.inspector2"

	DetailECRImageScan          = "ECR Image Scan"
	DetailECRScanResourceChange = "ECR Scan Resource Change"
	DetailInspector2Scan        = "Inspector2 Scan"
	DetailInspector2Finding     = "Inspector2 Finding"
)

// Event is one event of the scan outbox: an EventBridge event's source,
// detail-type and detail; the delivery service adds the envelope. ID is
// its outbox row's, and Index its place among the row's events.
type Event struct {
	ID         int64
	Index      int
	CreatedAt  time.Time
	Source     string
	DetailType string
	Detail     json.RawMessage
}

// event is one outbox row to write. A detail that is a json.RawMessage
// is written as it is.
type event struct {
	source, detailType string
	detail             any
}

func (s *Service) repositoryArn(repo string) string {
	return fmt.Sprintf("arn:aws:ecr:%s:%s:repository/%s", s.opts.Region, s.opts.AccountID, repo)
}

// scanEvents writes a completed scan's events: ECR Image Scan for basic
// scans; Inspector2 Scan for an image's first enhanced scan and one
// Inspector2 Finding per finding new to the image or closed by the scan.
func (s *Service) scanEvents(ctx context.Context, tx *store.Tx, repo, dg string, p payload, fs []Finding, created map[string]bool, closed []Finding, now time.Time) error {
	tags := p.Tags
	if tags == nil {
		tags = []string{}
	}
	if p.ScanType == Basic {
		return insertEvent(ctx, tx, SourceECR, DetailECRImageScan, map[string]any{
			"scan-status":             StatusComplete,
			"repository-name":         repo,
			"finding-severity-counts": SeverityCounts(fs),
			"image-digest":            dg,
			"image-tags":              tags,
		}, now)
	}
	if p.Trigger != "rescan" && p.Trigger != triggerReindex { // re-scans are not initial scans
		counts := map[string]int{SevCritical: 0, SevHigh: 0, SevMedium: 0, "TOTAL": len(fs)}
		for _, f := range fs {
			if _, ok := counts[f.Severity]; ok {
				counts[f.Severity]++
			}
		}
		if err := insertEvent(ctx, tx, SourceInspector2, DetailInspector2Scan, map[string]any{
			"scan-status":             "INITIAL_SCAN_COMPLETE",
			"repository-name":         s.repositoryArn(repo),
			"finding-severity-counts": counts,
			"image-digest":            dg,
			"image-tags":              tags,
			"version":                 "1.0",
		}, now); err != nil {
			return err
		}
	}
	var events []event
	for i := range fs {
		if !created[fs[i].key] {
			continue
		}
		f := fs[i]
		f.Status, f.FirstObservedAt, f.LastObservedAt, f.UpdatedAt = FindingActive, now, now, now
		events = append(events, event{SourceInspector2, DetailInspector2Finding, f})
	}
	for _, f := range closed {
		events = append(events, event{SourceInspector2, DetailInspector2Finding, f})
	}
	return insertEvents(ctx, tx, s.packer, events, now)
}

// Events lists the scan outbox's events in rows with an id above after,
// oldest first: those of whole rows until there are at least limit (see
// ReadOutbox).
func (s *Service) Events(ctx context.Context, after int64, limit int) ([]Event, error) {
	return ReadOutbox(ctx, s.db, after, limit)
}
