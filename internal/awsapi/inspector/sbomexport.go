package inspector

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/report"
	"github.com/drydockhq/drydock/internal/scan"
)

// SBOM export formats (inspector2's SbomReportFormat).
const (
	FormatCycloneDX14 = "CYCLONEDX_1_4"
	FormatSPDX23      = "SPDX_2_3"
)

// SBOM export statuses (ExternalReportStatus) and error codes
// (ReportingErrorCode).
const (
	exportInProgress = "IN_PROGRESS"
	exportSucceeded  = "SUCCEEDED"
	exportFailed     = "FAILED"
	exportCancelled  = "CANCELLED"

	exportErrInternal  = "INTERNAL_ERROR"
	exportErrNoMatches = "NO_FINDINGS_FOUND"
)

// exportStale is how long an IN_PROGRESS export may go without writing an
// image before it is reported FAILED: the server that ran it stopped.
const exportStale = 10 * time.Minute

// exportTimeout bounds one export.
const exportTimeout = time.Hour

// ResourceStringFilter is inspector2's ResourceStringFilter.
type ResourceStringFilter struct {
	Comparison string `json:"comparison"`
	Value      string `json:"value"`
}

// ResourceMapFilter is inspector2's ResourceMapFilter.
type ResourceMapFilter struct {
	Comparison string `json:"comparison"`
	Key        string `json:"key"`
	Value      string `json:"value,omitempty"`
}

// ResourceFilterCriteria is inspector2's ResourceFilterCriteria: which
// resources an SBOM export covers. The Lambda and EC2 members name
// resources Drydock does not have.
type ResourceFilterCriteria struct {
	AccountID          []ResourceStringFilter `json:"accountId,omitempty"`
	ResourceID         []ResourceStringFilter `json:"resourceId,omitempty"`
	ResourceType       []ResourceStringFilter `json:"resourceType,omitempty"`
	EcrRepositoryName  []ResourceStringFilter `json:"ecrRepositoryName,omitempty"`
	LambdaFunctionName []ResourceStringFilter `json:"lambdaFunctionName,omitempty"`
	EcrImageTags       []ResourceStringFilter `json:"ecrImageTags,omitempty"`
	Ec2InstanceTags    []ResourceMapFilter    `json:"ec2InstanceTags,omitempty"`
	LambdaFunctionTags []ResourceMapFilter    `json:"lambdaFunctionTags,omitempty"`
}

// Destination is inspector2's Destination. Drydock is self-hosted: a
// bucket is a directory under the server's export directory and keyPrefix
// a path under it; kmsKeyArn is required by the API and not used (files
// are written readable by the server's user and group only).
type Destination struct {
	BucketName string `json:"bucketName"`
	KeyPrefix  string `json:"keyPrefix,omitempty"`
	KmsKeyArn  string `json:"kmsKeyArn"`
}

// bucketRE is S3's bucket naming rule (3 to 63 lowercase letters, digits,
// dots and hyphens, starting and ending with a letter or digit).
var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// reportIDRE is the model's ReportId pattern, anchored.
var reportIDRE = regexp.MustCompile(`^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$`)

// validate checks the destination and returns the key prefix's path
// segments. Nothing in it may leave the bucket's directory.
func (d *Destination) validate() ([]string, error) {
	if d.BucketName == "" {
		return nil, validation("s3Destination.bucketName is required")
	}
	if !bucketRE.MatchString(d.BucketName) || strings.Contains(d.BucketName, "..") {
		return nil, validation("s3Destination.bucketName %q is not a valid bucket name (3 to 63 lowercase letters, digits, dots and hyphens)", truncate(d.BucketName, 100))
	}
	if d.KmsKeyArn == "" {
		return nil, validation("s3Destination.kmsKeyArn is required")
	}
	if len(d.KeyPrefix) > 1024 {
		return nil, validation("s3Destination.keyPrefix is longer than 1024 characters")
	}
	var segs []string
	for _, s := range strings.Split(d.KeyPrefix, "/") {
		switch {
		case s == "":
		case s == "." || s == "..":
			return nil, validation("s3Destination.keyPrefix may not hold a %q segment", s)
		case strings.ContainsAny(s, "\\\x00") || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			return nil, validation("s3Destination.keyPrefix may not hold backslashes or control characters")
		default:
			segs = append(segs, s)
		}
	}
	return segs, nil
}

func (c *ResourceFilterCriteria) validate() error {
	for _, m := range []struct {
		name string
		fs   []ResourceStringFilter
	}{
		{"accountId", c.AccountID}, {"resourceId", c.ResourceID}, {"resourceType", c.ResourceType},
		{"ecrRepositoryName", c.EcrRepositoryName}, {"lambdaFunctionName", c.LambdaFunctionName}, {"ecrImageTags", c.EcrImageTags},
	} {
		if len(m.fs) > 10 {
			return validation("resourceFilterCriteria.%s: at most 10 filters", m.name)
		}
		for _, f := range m.fs {
			if f.Comparison != "EQUALS" && f.Comparison != "NOT_EQUALS" {
				return validation("resourceFilterCriteria.%s.comparison: %q is not EQUALS or NOT_EQUALS", m.name, truncate(f.Comparison, 100))
			}
			if len(f.Value) < 1 || len(f.Value) > 1024 {
				return validation("resourceFilterCriteria.%s.value: length must be 1 to 1024", m.name)
			}
		}
	}
	for _, m := range []struct {
		name string
		fs   []ResourceMapFilter
	}{{"ec2InstanceTags", c.Ec2InstanceTags}, {"lambdaFunctionTags", c.LambdaFunctionTags}} {
		if len(m.fs) > 10 {
			return validation("resourceFilterCriteria.%s: at most 10 filters", m.name)
		}
		for _, f := range m.fs {
			if f.Comparison != "EQUALS" {
				return validation("resourceFilterCriteria.%s.comparison: %q is not EQUALS", m.name, truncate(f.Comparison, 100))
			}
			if f.Key == "" {
				return validation("resourceFilterCriteria.%s.key is required", m.name)
			}
		}
	}
	return nil
}

// matcher returns the predicate over covered resources that selects the
// ECR images the criteria name. A positive filter on a Lambda function or
// an EC2 instance selects no image.
func (c *ResourceFilterCriteria) matcher() (func(r *CoveredResource) bool, error) {
	conv := func(fs []ResourceStringFilter) []CoverageStringFilter {
		out := make([]CoverageStringFilter, len(fs))
		for i, f := range fs {
			out[i] = CoverageStringFilter(f)
		}
		return out
	}
	cov := CoverageFilterCriteria{AccountID: conv(c.AccountID), ResourceID: conv(c.ResourceID), ResourceType: conv(c.ResourceType),
		EcrRepositoryName: conv(c.EcrRepositoryName), EcrImageTags: conv(c.EcrImageTags)}
	match, err := cov.matcher()
	if err != nil {
		return nil, err
	}
	none := len(c.Ec2InstanceTags) > 0 || len(c.LambdaFunctionTags) > 0
	for _, f := range c.LambdaFunctionName {
		none = none || f.Comparison == "EQUALS"
	}
	return func(r *CoveredResource) bool {
		return !none && r.ResourceType == "AWS_ECR_CONTAINER_IMAGE" && match(r)
	}, nil
}

// sbomExports runs exports in the background; cancel holds the running
// ones of this process.
type sbomExports struct {
	dir    string
	mu     sync.Mutex
	cancel map[string]context.CancelFunc
	wg     sync.WaitGroup
}

type createSbomExportInput struct {
	ResourceFilterCriteria *ResourceFilterCriteria `json:"resourceFilterCriteria,omitempty"`
	ReportFormat           string                  `json:"reportFormat"`
	S3Destination          *Destination            `json:"s3Destination"`
}

type reportIDOutput struct {
	ReportID string `json:"reportId"`
}

// exportTarget is one image to export.
type exportTarget struct {
	repo, digest, resourceID string
	tags                     []string
}

func (s *Service) createSbomExportOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in createSbomExportInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	switch in.ReportFormat {
	case FormatCycloneDX14, FormatSPDX23:
	case "":
		return nil, validation("reportFormat is required")
	default:
		return nil, validation("reportFormat %q is not one of %s, %s", truncate(in.ReportFormat, 100), FormatCycloneDX14, FormatSPDX23)
	}
	if in.S3Destination == nil {
		return nil, validation("s3Destination is required")
	}
	prefix, err := in.S3Destination.validate()
	if err != nil {
		return nil, err
	}
	criteria := in.ResourceFilterCriteria
	if criteria == nil {
		criteria = &ResourceFilterCriteria{}
	}
	if err := criteria.validate(); err != nil {
		return nil, err
	}
	match, err := criteria.matcher()
	if err != nil {
		return nil, err
	}
	if s.exports.dir == "" {
		return nil, validation("SBOM export is not configured on this server (drydock serve --sbom-export-dir)")
	}
	// The images are chosen now, among those the caller may read.
	all, err := s.coverage(ctx, req)
	if err != nil {
		return nil, err
	}
	var targets []exportTarget
	for i := range all {
		r := &all[i]
		if !match(r) {
			continue
		}
		dg := r.ResourceID[strings.LastIndexByte(r.ResourceID, '/')+1:]
		targets = append(targets, exportTarget{repo: r.repository, digest: dg, resourceID: r.ResourceID, tags: r.tags})
	}
	dest, err := json.Marshal(in.S3Destination)
	if err != nil {
		return nil, err
	}
	crit, err := json.Marshal(criteria)
	if err != nil {
		return nil, err
	}
	id := newRequestID()
	now := s.now().UnixMilli()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO inspector_sbom_exports (id, principal, format, status, destination, criteria, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, req.Principal.Name, in.ReportFormat, exportInProgress, string(dest), string(crit), now, now); err != nil {
		return nil, fmt.Errorf("inspector: record SBOM export: %w", err)
	}
	root := filepath.Join(append([]string{s.exports.dir, in.S3Destination.BucketName}, append(prefix, id)...)...)
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), exportTimeout)
	s.exports.mu.Lock()
	s.exports.cancel[id] = cancel
	s.exports.mu.Unlock()
	s.exports.wg.Add(1)
	go func() {
		defer s.exports.wg.Done()
		defer func() {
			s.exports.mu.Lock()
			delete(s.exports.cancel, id)
			s.exports.mu.Unlock()
			cancel()
		}()
		s.runSbomExport(bctx, id, in.ReportFormat, root, targets)
	}()
	return reportIDOutput{ReportID: id}, nil
}

// runSbomExport writes one document per image under root and records
// the outcome.
func (s *Service) runSbomExport(ctx context.Context, id, format, root string, targets []exportTarget) {
	n, code, err := s.writeSbomExport(ctx, id, format, root, targets)
	status, msg := exportSucceeded, ""
	switch {
	case err != nil && ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled):
		// Cancelled: CancelSbomExport recorded it.
		return
	case err != nil:
		status, msg = exportFailed, err.Error()
		if code == "" {
			code = exportErrInternal
			s.log.Error("inspector: SBOM export failed", "report_id", id, "err", err)
		}
	}
	// A fresh context: the export's own may have timed out.
	uctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.db.ExecContext(uctx, `UPDATE inspector_sbom_exports SET status = ?, error_code = ?, error_message = ?, images = ?, updated_at = ?
		WHERE id = ? AND status = ?`, status, code, truncate(msg, 1000), n, s.now().UnixMilli(), id, exportInProgress); err != nil {
		s.log.Error("inspector: record SBOM export outcome", "report_id", id, "err", err)
	}
}

// writeSbomExport writes the documents and returns how many it wrote, and
// the error code of a failure the caller can act on.
func (s *Service) writeSbomExport(ctx context.Context, id, format, root string, targets []exportTarget) (int, string, error) {
	tool := report.Tool{Name: "drydock", Version: toolVersion()}
	n := 0
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return n, "", err
		}
		inv, err := s.scan.StoredInventory(ctx, t.digest)
		if errors.Is(err, scan.ErrInventoryNotFound) {
			// Not scanned (yet), or not an image the scan could read.
			continue
		}
		if err != nil {
			return n, "", err
		}
		ext := ".cyclonedx.json"
		if format == FormatSPDX23 {
			ext = ".spdx.json"
		}
		algo, hex, _ := strings.Cut(t.digest, ":")
		path := filepath.Join(root, filepath.FromSlash(t.repo), algo+"_"+hex+ext)
		if rel, err := filepath.Rel(root, path); err != nil || strings.HasPrefix(rel, "..") {
			return n, "", fmt.Errorf("repository %q leaves the export directory", t.repo)
		}
		err = writeFileAtomic(path, func(w io.Writer) error {
			return s.writeSbom(w, format, t, inv, report.Options{Tool: tool, Now: s.now()})
		})
		if err != nil {
			return n, "", fmt.Errorf("write the SBOM of %s@%s: %w", t.repo, t.digest, err)
		}
		n++
		if _, err := s.db.ExecContext(ctx, `UPDATE inspector_sbom_exports SET images = ?, updated_at = ? WHERE id = ?`, n, s.now().UnixMilli(), id); err != nil {
			return n, "", fmt.Errorf("record progress: %w", err)
		}
	}
	if n == 0 {
		return 0, exportErrNoMatches, errors.New("no scanned image matches the resource filter criteria")
	}
	return n, "", nil
}

// writeSbom writes one image's document: CycloneDX 1.4 JSON with the
// properties Amazon Inspector puts in its metadata, or SPDX 2.3 JSON.
func (s *Service) writeSbom(w io.Writer, format string, t exportTarget, inv *index.Inventory, o report.Options) error {
	target := t.repo + "@" + t.digest
	if format == FormatSPDX23 {
		return report.WriteSPDX(w, target, []*index.Inventory{inv}, o)
	}
	bom := report.CycloneDXBOM(target, []*index.Inventory{inv}, o)
	props := []cdx.Property{
		{Name: "imageId", Value: t.digest},
		{Name: "accountId", Value: s.account.ID},
		{Name: "resourceType", Value: "AWS_ECR_CONTAINER_IMAGE"},
		{Name: "resourceId", Value: t.resourceID},
		{Name: "repositoryName", Value: t.repo},
	}
	if _, arch, ok := strings.Cut(inv.Platform, "/"); ok {
		arch, _, _ = strings.Cut(arch, "/")
		props = append(props, cdx.Property{Name: "architecture", Value: arch})
	}
	for _, tag := range t.tags {
		props = append(props, cdx.Property{Name: "imageTag", Value: tag})
	}
	bom.Metadata.Properties = &props
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true).SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_4); err != nil {
		return fmt.Errorf("write CycloneDX: %w", err)
	}
	return nil
}

// writeFileAtomic writes a file through a temporary file in the same
// directory, synced and renamed into place (mode 0640).
func writeFileAtomic(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".export-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o640); err != nil {
		f.Close()
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func toolVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return strings.TrimPrefix(bi.Main.Version, "v")
	}
	return "devel"
}

type reportIDInput struct {
	ReportID string `json:"reportId"`
}

func (in *reportIDInput) validate() error {
	if in.ReportID == "" {
		return validation("reportId is required")
	}
	if !reportIDRE.MatchString(in.ReportID) {
		return validation("reportId %q is not a report id", truncate(in.ReportID, 100))
	}
	return nil
}

type getSbomExportOutput struct {
	ReportID       string                  `json:"reportId"`
	Format         string                  `json:"format"`
	Status         string                  `json:"status"`
	ErrorCode      string                  `json:"errorCode,omitempty"`
	ErrorMessage   string                  `json:"errorMessage,omitempty"`
	S3Destination  *Destination            `json:"s3Destination"`
	FilterCriteria *ResourceFilterCriteria `json:"filterCriteria"`
}

// exportRow reads an export the caller may see: its own, or any for an
// admin. Others' are not found.
func (s *Service) exportRow(ctx context.Context, req *awsapi.Request, id string) (*getSbomExportOutput, int64, error) {
	out := &getSbomExportOutput{ReportID: id}
	var principal, dest, crit string
	var updated int64
	err := s.db.QueryRowContext(ctx, `SELECT principal, format, status, error_code, error_message, destination, criteria, updated_at
		FROM inspector_sbom_exports WHERE id = ?`, id).Scan(&principal, &out.Format, &out.Status, &out.ErrorCode, &out.ErrorMessage, &dest, &crit, &updated)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && principal != req.Principal.Name && requireAdmin(req) != nil) {
		return nil, 0, &awsapi.Error{Code: CodeResourceNotFound, Message: "no SBOM export " + id, Status: http.StatusNotFound}
	}
	if err != nil {
		return nil, 0, fmt.Errorf("inspector: SBOM export %s: %w", id, err)
	}
	if err := json.Unmarshal([]byte(dest), &out.S3Destination); err != nil {
		return nil, 0, fmt.Errorf("inspector: SBOM export %s: %w", id, err)
	}
	if err := json.Unmarshal([]byte(crit), &out.FilterCriteria); err != nil {
		return nil, 0, fmt.Errorf("inspector: SBOM export %s: %w", id, err)
	}
	return out, updated, nil
}

func (s *Service) getSbomExportOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in reportIDInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	out, updated, err := s.exportRow(ctx, req, in.ReportID)
	if err != nil {
		return nil, err
	}
	if out.Status == exportInProgress && s.now().Sub(time.UnixMilli(updated)) > exportStale {
		out.Status, out.ErrorCode, out.ErrorMessage = exportFailed, exportErrInternal, "the export stopped making progress (the server running it stopped)"
	}
	return out, nil
}

func (s *Service) cancelSbomExportOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in reportIDInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	out, _, err := s.exportRow(ctx, req, in.ReportID)
	if err != nil {
		return nil, err
	}
	if out.Status != exportInProgress {
		return nil, validation("the SBOM export %s is %s, not IN_PROGRESS", in.ReportID, out.Status)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE inspector_sbom_exports SET status = ?, updated_at = ? WHERE id = ? AND status = ?`,
		exportCancelled, s.now().UnixMilli(), in.ReportID, exportInProgress); err != nil {
		return nil, fmt.Errorf("inspector: cancel SBOM export: %w", err)
	}
	s.exports.mu.Lock()
	if cancel := s.exports.cancel[in.ReportID]; cancel != nil {
		cancel()
	}
	s.exports.mu.Unlock()
	return reportIDOutput(in), nil
}

// WaitExports waits for the SBOM exports running in this process.
func (s *Service) WaitExports() { s.exports.wg.Wait() }

// initSbomExports sets the export directory and registers the SBOM
// export operations.
func (s *Service) initSbomExports(dir string) {
	s.exports = &sbomExports{dir: dir, cancel: map[string]context.CancelFunc{}}
	s.ops["/sbomexport/create"] = operation{"CreateSbomExport", s.createSbomExportOp}
	s.ops["/sbomexport/get"] = operation{"GetSbomExport", s.getSbomExportOp}
	s.ops["/sbomexport/cancel"] = operation{"CancelSbomExport", s.cancelSbomExportOp}
}
