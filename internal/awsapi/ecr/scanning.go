package ecr

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
)

// This file holds the scanning operations: the registry scanning
// configuration, the effective configuration of repositories, manual
// basic scans and the findings of an image. The scanning itself (rules,
// the job queue, the findings store) is package scan's.

// The model's scanning enums and limits.
var (
	scanTypes        = []string{string(scan.Basic), string(scan.Enhanced)}
	ruleFrequencies  = []string{string(scan.ScanOnPush), string(scan.ContinuousScan), string(scan.Manual)}
	filterTypes      = []string{scan.FilterWildcard}
	maxScanRepoNames = 25
)

// enhancedStartMessage is the ValidationException StartImageScan answers
// under enhanced scanning. AWS documents that manual scans are not
// supported with enhanced scanning but not the error; ValidationException
// (the request is well formed but not valid in the registry's state) is
// not retried by the clients, so the CLI shows it at once.
const enhancedStartMessage = "This feature is disabled: the registry uses ENHANCED scanning, which does not support manual scans; images are scanned as the registry scanning rules say"

// RepositoryScanOnPush returns a lookup of repositories' deprecated
// per-repository scanOnPush setting (CreateRepository,
// PutImageScanningConfiguration) for scan.Options.RepositoryScanOnPush.
// The store must carry the ECR migrations (New applies them) by the time
// the lookup is called.
func RepositoryScanOnPush(db *store.DB) func(ctx context.Context, repository string) (bool, error) {
	return func(ctx context.Context, repository string) (bool, error) {
		var on int64
		err := db.QueryRowContext(ctx, `SELECT e.scan_on_push FROM registry_repositories r
			JOIN ecr_repositories e ON e.repository_id = r.id WHERE r.name = ?`, repository).Scan(&on)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("ecr: scanOnPush of %s: %w", repository, err)
		}
		return on != 0, nil
	}
}

// scanOperations are the operations that need the scanning service.
func (s *Service) scanOperations() map[string]awsapi.Operation {
	return map[string]awsapi.Operation{
		"PutRegistryScanningConfiguration":        s.putRegistryScanningConfigurationOp,
		"GetRegistryScanningConfiguration":        s.getRegistryScanningConfigurationOp,
		"BatchGetRepositoryScanningConfiguration": s.batchGetRepositoryScanningConfigurationOp,
		"StartImageScan":                          s.startImageScanOp,
		"DescribeImageScanFindings":               s.describeImageScanFindingsOp,
	}
}

// canReadFindings reports whether a principal may read a repository's
// scan results.
func canReadFindings(p auth.Principal, repo string) bool {
	return p.Can(repo, auth.ActionReadFindings)
}

// readsAnyFindings reports whether a principal may read findings of some
// repository (or is an admin): enough to read the registry's scanning
// configuration.
func readsAnyFindings(p auth.Principal) bool {
	for _, g := range p.Grants {
		if g.Action == auth.ActionAdmin || g.Action == auth.ActionReadFindings {
			return true
		}
	}
	return false
}

// ScanningRepositoryFilter is a repository filter of a scanning rule.
type ScanningRepositoryFilter struct {
	Filter     *string `json:"filter"`
	FilterType *string `json:"filterType"`
}

// RegistryScanningRule is one rule of the registry scanning configuration.
type RegistryScanningRule struct {
	ScanFrequency     *string                    `json:"scanFrequency"`
	RepositoryFilters []ScanningRepositoryFilter `json:"repositoryFilters"`
}

// RegistryScanningConfiguration is the registry's scan type and rules.
type RegistryScanningConfiguration struct {
	ScanType string                 `json:"scanType"`
	Rules    []RegistryScanningRule `json:"rules"`
}

func wireConfig(c scan.Config) RegistryScanningConfiguration {
	out := RegistryScanningConfiguration{ScanType: string(c.ScanType), Rules: []RegistryScanningRule{}}
	for _, r := range c.Rules {
		freq := string(r.ScanFrequency)
		rule := RegistryScanningRule{ScanFrequency: &freq, RepositoryFilters: wireFilters(r.RepositoryFilters)}
		out.Rules = append(out.Rules, rule)
	}
	return out
}

func wireFilters(fs []scan.Filter) []ScanningRepositoryFilter {
	out := make([]ScanningRepositoryFilter, 0, len(fs))
	for _, f := range fs {
		out = append(out, ScanningRepositoryFilter{Filter: &f.Filter, FilterType: &f.FilterType})
	}
	return out
}

// checkConfig checks the model's constraints on a configuration request
// (InvalidParameterException, as for the other operations) and converts
// it; package scan then checks its meaning (ValidationException).
func checkConfig(scanType *string, rules []RegistryScanningRule) (scan.Config, error) {
	var c scan.Config
	t, err := checkEnum("scanType", scanType, scanTypes, "")
	if err != nil {
		return c, err
	}
	c.ScanType = scan.ScanType(t)
	if len(rules) > scan.MaxRules {
		return c, invalid("rules", "Member must have length less than or equal to %d", scan.MaxRules)
	}
	for i, r := range rules {
		member := fmt.Sprintf("rules.%d.member", i+1)
		if r.ScanFrequency == nil {
			return c, required(member + ".scanFrequency")
		}
		freq, err := checkEnum(member+".scanFrequency", r.ScanFrequency, ruleFrequencies, "")
		if err != nil {
			return c, err
		}
		if r.RepositoryFilters == nil {
			return c, required(member + ".repositoryFilters")
		}
		if len(r.RepositoryFilters) > scan.MaxFilters {
			return c, invalid(member+".repositoryFilters", "Member must have length less than or equal to %d", scan.MaxFilters)
		}
		rule := scan.Rule{ScanFrequency: scan.Frequency(freq), RepositoryFilters: []scan.Filter{}}
		for j, f := range r.RepositoryFilters {
			fm := fmt.Sprintf("%s.repositoryFilters.%d.member", member, j+1)
			if f.Filter == nil {
				return c, required(fm + ".filter")
			}
			if f.FilterType == nil {
				return c, required(fm + ".filterType")
			}
			ft, err := checkEnum(fm+".filterType", f.FilterType, filterTypes, "")
			if err != nil {
				return c, err
			}
			if n := len(*f.Filter); n < 1 || n > scan.MaxFilterLength {
				return c, invalid(fm+".filter", "Member must have length between 1 and %d", scan.MaxFilterLength)
			}
			rule.RepositoryFilters = append(rule.RepositoryFilters, scan.Filter{Filter: *f.Filter, FilterType: ft})
		}
		c.Rules = append(c.Rules, rule)
	}
	return c, nil
}

// validation maps package scan's refusal of a configuration.
func validation(err error) error {
	var ve *scan.ValidationError
	if errors.As(err, &ve) {
		return awsapi.Errorf(CodeValidation, "%s", ve.Msg)
	}
	return err
}

// putRegistryScanningConfigurationOp serves PutRegistryScanningConfiguration:
// `{}` is BASIC without rules.
func (s *Service) putRegistryScanningConfigurationOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in struct {
		ScanType *string                `json:"scanType"`
		Rules    []RegistryScanningRule `json:"rules"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := s.requireAdmin(req, ""); err != nil {
		return nil, err
	}
	c, err := checkConfig(in.ScanType, in.Rules)
	if err != nil {
		return nil, err
	}
	stored, err := s.scan.PutRegistryScanningConfiguration(ctx, c)
	if err != nil {
		return nil, validation(err)
	}
	return struct {
		Config RegistryScanningConfiguration `json:"registryScanningConfiguration"`
	}{wireConfig(stored)}, nil
}

// getRegistryScanningConfigurationOp serves GetRegistryScanningConfiguration.
func (s *Service) getRegistryScanningConfigurationOp(ctx context.Context, req *awsapi.Request) (any, error) {
	if err := req.Decode(&struct{}{}); err != nil {
		return nil, err
	}
	if !readsAnyFindings(req.Principal) {
		return nil, awsapi.Denied(req.Principal, "ecr:"+req.Operation, "")
	}
	c, err := s.scan.RegistryScanningConfiguration(ctx)
	if err != nil {
		return nil, err
	}
	return struct {
		RegistryID string                        `json:"registryId"`
		Config     RegistryScanningConfiguration `json:"scanningConfiguration"`
	}{s.account.ID, wireConfig(c)}, nil
}

// RepositoryScanningConfiguration is a repository's effective scanning
// configuration.
type RepositoryScanningConfiguration struct {
	RepositoryArn      string                     `json:"repositoryArn"`
	RepositoryName     string                     `json:"repositoryName"`
	ScanOnPush         bool                       `json:"scanOnPush"`
	ScanFrequency      string                     `json:"scanFrequency"`
	AppliedScanFilters []ScanningRepositoryFilter `json:"appliedScanFilters"`
}

// RepositoryScanningConfigurationFailure reports a repository that has no
// configuration because it does not exist.
type RepositoryScanningConfigurationFailure struct {
	RepositoryName string `json:"repositoryName"`
	FailureCode    string `json:"failureCode"`
	FailureReason  string `json:"failureReason"`
}

// batchGetRepositoryScanningConfigurationOp serves
// BatchGetRepositoryScanningConfiguration: the effective configuration of
// each named repository, a REPOSITORY_NOT_FOUND failure for each that does
// not exist.
func (s *Service) batchGetRepositoryScanningConfigurationOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in struct {
		RepositoryNames []*string `json:"repositoryNames"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.RepositoryNames == nil {
		return nil, required("repositoryNames")
	}
	if len(in.RepositoryNames) < 1 || len(in.RepositoryNames) > maxScanRepoNames {
		return nil, invalid("repositoryNames", "Member must have length between 1 and %d", maxScanRepoNames)
	}
	var names []string
	seen := map[string]bool{}
	for i, n := range in.RepositoryNames {
		name, err := checkRepositoryName(fmt.Sprintf("repositoryNames.%d.member", i+1), n)
		if err != nil {
			return nil, err
		}
		if err := s.require(req, name, canReadFindings(req.Principal, name)); err != nil {
			return nil, err
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	out := struct {
		Configs  []RepositoryScanningConfiguration        `json:"scanningConfigurations"`
		Failures []RepositoryScanningConfigurationFailure `json:"failures"`
	}{[]RepositoryScanningConfiguration{}, []RepositoryScanningConfigurationFailure{}}
	var found []string
	for _, n := range names {
		_, err := s.repository(ctx, n)
		switch {
		case errors.Is(err, errRepoNotFound):
			out.Failures = append(out.Failures, RepositoryScanningConfigurationFailure{
				RepositoryName: n, FailureCode: "REPOSITORY_NOT_FOUND",
				FailureReason: s.notFound(n).Message,
			})
		case err != nil:
			return nil, err
		default:
			found = append(found, n)
		}
	}
	eff, err := s.scan.EffectiveConfiguration(ctx, found...)
	if err != nil {
		return nil, err
	}
	for _, e := range eff {
		out.Configs = append(out.Configs, RepositoryScanningConfiguration{
			RepositoryArn:      s.arn(req, e.RepositoryName),
			RepositoryName:     e.RepositoryName,
			ScanOnPush:         e.ScanOnPush,
			ScanFrequency:      string(e.ScanFrequency),
			AppliedScanFilters: wireFilters(e.AppliedScanFilters),
		})
	}
	return out, nil
}

// scannedImage resolves the required imageId of StartImageScan and
// DescribeImageScanFindings to an image of the repository.
func (s *Service) scannedImage(ctx context.Context, r repo, id *ImageIdentifier) (imageRef, error) {
	if id == nil {
		return imageRef{}, required("imageId")
	}
	ref, f := checkImageID(*id)
	if f != nil {
		return imageRef{}, awsapi.Errorf(CodeInvalidParameter, "%s", f.reason)
	}
	d, err := s.resolve(ctx, r, ref)
	if err != nil {
		return imageRef{}, err
	}
	if ref.tag == "" {
		found, err := s.imagesByDigest(ctx, r.ID, []string{d})
		if err != nil {
			return imageRef{}, err
		}
		if _, ok := found[d]; !ok {
			return imageRef{}, s.imageNotFound(r, ref)
		}
	}
	return imageRef{digest: d, tag: ref.tag}, nil
}

func scanStatus(st scan.Status) *ImageScanStatus {
	return &ImageScanStatus{Status: st.Status, Description: st.Description}
}

// retryKeyType keys the request's retry identity in its context.
type retryKeyType struct{}

// withRetryIdentity puts into the request's context what identifies one
// client invocation across its automatic retries: aws-sdk-go-v2 and newer
// botocore send the same amz-sdk-invocation-id on every attempt. Clients
// without it (the AWS CLI 2.9.19) cannot be told apart from a new call:
// their request signature repeats on a retry, but also on the same
// command run twice within one second, which must be refused.
func withRetryIdentity(r *http.Request) *http.Request {
	id := r.Header.Get("Amz-Sdk-Invocation-Id")
	if id == "" || len(id) > 128 {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), retryKeyType{}, id))
}

// retryKey is the stored key of a call's retry identity for a principal,
// or "" when the request carries none.
func retryKey(ctx context.Context, p auth.Principal) string {
	id, _ := ctx.Value(retryKeyType{}).(string)
	if id == "" {
		return ""
	}
	h := sha256.Sum256([]byte(p.KeyID + "\x00" + id))
	return hex.EncodeToString(h[:])
}

// startedBy reports whether the call with key already started the scan
// of the image less than 24 hours ago (this request is its retry).
func (s *Service) startedBy(ctx context.Context, key, repository, digest string) (bool, error) {
	if key == "" {
		return false, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ecr_scan_requests
		WHERE request_key = ? AND repository = ? AND image_digest = ? AND created_at > ?`,
		key, repository, digest, s.now().Add(-scan.ImageScanWindow).UnixMilli()).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("scan request: %w", err)
	}
	return n > 0, nil
}

// recordStart remembers the call that started a scan, and forgets calls
// older than the scan window.
func (s *Service) recordStart(ctx context.Context, key, repository, digest string) error {
	if key == "" {
		return nil
	}
	now := s.now()
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM ecr_scan_requests WHERE created_at <= ?`,
			now.Add(-scan.ImageScanWindow).UnixMilli()); err != nil {
			return fmt.Errorf("scan requests: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ecr_scan_requests (request_key, repository, image_digest, created_at)
			VALUES (?, ?, ?, ?) ON CONFLICT (request_key) DO NOTHING`, key, repository, digest, now.UnixMilli()); err != nil {
			return fmt.Errorf("scan requests: %w", err)
		}
		return nil
	})
}

// startImageScanOp serves StartImageScan: a basic scan of one image, at
// most once per image per 24 hours (LimitExceededException, which the
// clients retry: every retry of a refused call gets the same refusal, and
// a retry of the call that started the scan gets that call's answer).
func (s *Service) startImageScanOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in struct {
		RegistryID     *string          `json:"registryId"`
		RepositoryName *string          `json:"repositoryName"`
		ImageID        *ImageIdentifier `json:"imageId"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := s.checkRegistryID(in.RegistryID); err != nil {
		return nil, err
	}
	name, err := checkRepositoryName("repositoryName", in.RepositoryName)
	if err != nil {
		return nil, err
	}
	ok := canReadFindings(req.Principal, name) || req.Principal.Can(name, auth.ActionPush)
	if err := s.require(req, name, ok); err != nil {
		return nil, err
	}
	r, err := s.repository(ctx, name)
	if err != nil {
		return nil, s.repoError(name, err)
	}
	ref, err := s.scannedImage(ctx, r, in.ImageID)
	if err != nil {
		return nil, err
	}
	key := retryKey(ctx, req.Principal)
	var st scan.Status
	again, err := s.startedBy(ctx, key, r.Name, ref.digest)
	if err != nil {
		return nil, err
	}
	if again {
		st, err = s.scan.ScanStatus(ctx, r.Name, ref.digest)
	} else {
		st, err = s.scan.StartImageScan(ctx, r.Name, ref.digest)
		if err == nil {
			err = s.recordStart(ctx, key, r.Name, ref.digest)
		}
	}
	switch {
	case errors.Is(err, scan.ErrLimitExceeded):
		return nil, awsapi.Errorf(CodeLimitExceeded, "%s", scan.LimitExceededMessage)
	case errors.Is(err, scan.ErrNotSupported):
		return nil, awsapi.Errorf(CodeValidation, "%s", enhancedStartMessage)
	case errors.Is(err, scan.ErrUnsupportedImage):
		return nil, awsapi.Errorf(CodeUnsupportedImageType, "The image with imageId %s in the repository with name '%s' is not an image that can be scanned (an image index or an artifact); scan its platform images by their digests",
			describeID(ref), r.Name)
	case errors.Is(err, scan.ErrImageNotFound):
		return nil, s.imageNotFound(r, ref)
	case err != nil:
		return nil, err
	}
	return struct {
		RegistryID      string           `json:"registryId"`
		RepositoryName  string           `json:"repositoryName"`
		ImageID         ImageIdentifier  `json:"imageId"`
		ImageScanStatus *ImageScanStatus `json:"imageScanStatus"`
	}{s.account.ID, r.Name, idOf(ref.digest, ref.tag), scanStatus(st)}, nil
}

// scanNotFound is the ScanNotFoundException of an image never scanned.
func (s *Service) scanNotFound(r repo, ref imageRef) *awsapi.Error {
	return awsapi.Errorf(CodeScanNotFound, "Image scan does not exist for the image with '%s' in the repository with name '%s' in the registry with id '%s'",
		describeID(ref), r.Name, s.account.ID)
}

// findingsCursor is where the next page of DescribeImageScanFindings
// starts (package scan's page token).
type findingsCursor struct {
	After string `json:"a"`
}

// describeImageScanFindingsOp serves DescribeImageScanFindings: the scan
// status of an image and a page of its open findings, as basic `findings`
// or `enhancedFindings` by the type of the image's scan.
func (s *Service) describeImageScanFindingsOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in struct {
		RegistryID     *string          `json:"registryId"`
		RepositoryName *string          `json:"repositoryName"`
		ImageID        *ImageIdentifier `json:"imageId"`
		NextToken      *string          `json:"nextToken"`
		MaxResults     *int             `json:"maxResults"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	r, err := s.readableRepo(ctx, req, in.RegistryID, in.RepositoryName, auth.ActionReadFindings)
	if err != nil {
		return nil, err
	}
	size, err := checkMaxResults(in.MaxResults)
	if err != nil {
		return nil, err
	}
	ref, err := s.scannedImage(ctx, r, in.ImageID)
	if err != nil {
		return nil, err
	}
	scope := "DescribeImageScanFindings\x00" + r.Name + "\x00" + ref.digest
	var cur findingsCursor
	if err := s.openPage(scope, in.NextToken, &cur); err != nil {
		return nil, err
	}
	res, err := s.scan.Findings(ctx, r.Name, ref.digest, scan.Page{After: cur.After, Limit: size})
	if errors.Is(err, scan.ErrScanNotFound) {
		return nil, s.scanNotFound(r, ref)
	}
	if err != nil {
		var ve *scan.ValidationError
		if errors.As(err, &ve) {
			return nil, invalid("nextToken", "Member must be a nextToken returned by a previous call with the same parameters")
		}
		return nil, err
	}
	out := describeFindingsOutput{
		RegistryID:      s.account.ID,
		RepositoryName:  r.Name,
		ImageID:         idOf(ref.digest, ref.tag),
		ImageScanStatus: scanStatus(res.Scan),
	}
	if out.NextToken, err = s.nextPage(scope, res.Next != "", findingsCursor{After: res.Next}); err != nil {
		return nil, err
	}
	if res.Scan.CompletedAt.IsZero() {
		// No scan finished yet: no findings to show.
		return out, nil
	}
	fs := &ImageScanFindings{
		ImageScanCompletedAt:         awsapi.At(res.Scan.CompletedAt),
		FindingSeverityCounts:        res.SeverityCounts,
		VulnerabilitySourceUpdatedAt: at(res.Scan.VulnerabilitySourceUpdatedAt),
	}
	if res.Scan.ScanType == scan.Enhanced {
		var im image
		if found, err := s.imagesByDigest(ctx, r.ID, []string{ref.digest}); err != nil {
			return nil, err
		} else {
			im = found[ref.digest]
		}
		fs.EnhancedFindings = make([]EnhancedImageScanFinding, 0, len(res.Findings))
		for _, f := range res.Findings {
			fs.EnhancedFindings = append(fs.EnhancedFindings, s.enhancedFinding(req, f, im))
		}
	} else {
		fs.Findings = make([]ImageScanFinding, 0, len(res.Findings))
		for _, f := range res.Findings {
			fs.Findings = append(fs.Findings, basicFinding(f))
		}
	}
	out.ImageScanFindings = fs
	return out, nil
}

// at is an optional timestamp: the zero time stays unset.
func at(t time.Time) awsapi.Time {
	if t.IsZero() {
		return awsapi.Time{}
	}
	return awsapi.At(t)
}

func basicFinding(f scan.Finding) ImageScanFinding {
	attrs := make([]Attribute, 0, len(f.Attributes))
	for _, a := range f.Attributes {
		attrs = append(attrs, Attribute{Key: a.Key, Value: a.Value})
	}
	return ImageScanFinding{
		Name:        f.VulnerabilityID,
		Description: f.Description,
		URI:         f.URI,
		Severity:    f.Severity,
		Attributes:  attrs,
	}
}

// enhancedFinding is a stored finding in the shape of ECR's
// EnhancedImageScanFinding; im is the image, for the resource details.
func (s *Service) enhancedFinding(req *awsapi.Request, f scan.Finding, im image) EnhancedImageScanFinding {
	cvss := make([]CvssScore, 0, len(f.CVSS))
	for _, c := range f.CVSS {
		cvss = append(cvss, CvssScore(c))
	}
	p := f.Package
	out := EnhancedImageScanFinding{
		AwsAccountID: s.account.ID,
		Description:  f.Description,
		FindingArn:   f.FindingArn,
		Title:        f.Title,
		Severity:     f.Severity,
		Status:       f.Status,
		Type:         "PACKAGE_VULNERABILITY",
		FixAvailable: f.FixAvailable, ExploitAvailable: f.ExploitAvailable,
		FirstObservedAt: at(f.FirstObservedAt), LastObservedAt: at(f.LastObservedAt), UpdatedAt: at(f.UpdatedAt),
		PackageVulnerabilityDetails: &PackageVulnerabilityDetails{
			Cvss:                   cvss,
			ReferenceUrls:          nonNil(f.ReferenceURLs),
			RelatedVulnerabilities: nonNil(f.RelatedVulnerabilities),
			Source:                 f.Source,
			SourceURL:              f.SourceURL,
			VendorCreatedAt:        at(f.VendorCreatedAt),
			VendorSeverity:         f.VendorSeverity,
			VendorUpdatedAt:        at(f.VendorUpdatedAt),
			VulnerabilityID:        f.VulnerabilityID,
			VulnerablePackages: []VulnerablePackage{{
				Arch: p.Arch, Epoch: p.Epoch, FilePath: p.FilePath, Name: p.Name,
				PackageManager: p.PackageManager, Release: p.Release, SourceLayerHash: p.SourceLayerHash,
				Version: p.Version, FixedInVersion: p.FixedInVersion,
			}},
		},
		Remediation: &Remediation{Recommendation: Recommendation{Text: "None Provided"}},
		Resources: []Resource{{
			ID:   "arn:aws:ecr:" + req.Region + ":" + s.account.ID + ":repository/" + f.Repository + "/" + f.Digest,
			Type: "AWS_ECR_CONTAINER_IMAGE",
			Tags: map[string]string{},
			Details: ResourceDetails{AwsEcrContainerImage: &AwsEcrContainerImageDetails{
				Architecture:   f.Architecture,
				ImageHash:      f.Digest,
				ImageTags:      nonNil(im.Tags),
				Platform:       f.Platform,
				PushedAt:       at(im.PushedAt),
				Registry:       s.account.ID,
				RepositoryName: f.Repository,
			}},
		}},
	}
	if f.Remediation != "" {
		out.Remediation.Recommendation.Text = f.Remediation
	}
	if f.Score > 0 {
		score := f.Score
		out.Score = &score
		for _, c := range f.CVSS {
			if c.BaseScore == f.Score {
				out.ScoreDetails = &ScoreDetails{Cvss: &CvssScoreDetails{
					Adjustments: []CvssScoreAdjustment{}, Score: c.BaseScore, ScoreSource: c.Source,
					ScoringVector: c.ScoringVector, Version: c.Version,
				}}
				break
			}
		}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// fillScanSummaries sets the scan members of DescribeImages' details for
// a principal that may read the repository's findings.
func (s *Service) fillScanSummaries(ctx context.Context, req *awsapi.Request, r repo, details []ImageDetail) error {
	if s.scan == nil || len(details) == 0 || !canReadFindings(req.Principal, r.Name) {
		return nil
	}
	digests := make([]string, 0, len(details))
	for _, d := range details {
		digests = append(digests, d.ImageDigest)
	}
	sums, err := s.scan.Summaries(ctx, r.Name, digests)
	if err != nil {
		return err
	}
	for i := range details {
		sm, ok := sums[details[i].ImageDigest]
		if !ok {
			continue
		}
		details[i].ImageScanStatus = scanStatus(sm.Status)
		if !sm.Status.CompletedAt.IsZero() {
			details[i].ImageScanFindingsSummary = &ImageScanFindingsSummary{
				ImageScanCompletedAt:         awsapi.At(sm.Status.CompletedAt),
				VulnerabilitySourceUpdatedAt: at(sm.Status.VulnerabilitySourceUpdatedAt),
				FindingSeverityCounts:        sm.SeverityCounts,
			}
		}
	}
	return nil
}
