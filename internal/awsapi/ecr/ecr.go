// Package ecr serves Drydock's Amazon ECR-compatible API: the AWS JSON 1.1
// operations (POST with X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Op>)
// that the AWS CLI and SDKs send, over Drydock's repositories and images,
// authenticated with SigV4 against Drydock's access keys.
package ecr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
)

// TargetPrefix is the service part of the X-Amz-Target header.
const TargetPrefix = "AmazonEC2ContainerRegistry_V20150921"

// SigningName is the SigV4 service name of the ECR API.
const SigningName = "ecr"

// Authenticator authenticates API requests and makes registry login
// passwords; *auth.Service is one.
type Authenticator interface {
	awsapi.Verifier
	LoginPassword(ctx context.Context, keyID string) (string, time.Time, error)
}

// Options configure a Service.
type Options struct {
	// Store is the metadata store. New applies the registry's, the shared
	// awsapi and the ECR migrations.
	Store *store.DB
	// Auth authenticates requests and makes login passwords.
	Auth Authenticator
	// Log receives internal errors (slog.Default() when nil).
	Log *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Scanner is the scanning service. Without it the scanning
	// operations are UnknownOperationException and DescribeImages shows
	// no scan members.
	Scanner *scan.Service
}

// Service is the ECR API. It is an http.Handler for the requests that
// carry an X-Amz-Target header.
type Service struct {
	db      *store.DB
	reg     *store.Registry
	auth    Authenticator
	account *awsapi.Account
	log     *slog.Logger
	now     func() time.Time
	api     *awsapi.JSONService
	scan    *scan.Service
}

// New prepares the store and returns the ECR API.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Store == nil || o.Auth == nil {
		return nil, errors.New("ecr: a store and an authenticator are required")
	}
	if err := o.Store.MigrateRegistry(ctx); err != nil {
		return nil, fmt.Errorf("ecr: %w", err)
	}
	account, err := awsapi.LoadAccount(ctx, o.Store)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, o.Store); err != nil {
		return nil, err
	}
	s := &Service{
		db:      o.Store,
		reg:     o.Store.Registry(),
		auth:    o.Auth,
		account: account,
		log:     o.Log,
		now:     o.Now,
		scan:    o.Scanner,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.api = &awsapi.JSONService{
		TargetPrefix:      TargetPrefix,
		SigningName:       SigningName,
		InternalErrorCode: CodeServer,
		Verifier:          o.Auth,
		Log:               s.log,
		Operations: map[string]awsapi.Operation{
			"CreateRepository":              s.createRepositoryOp,
			"DescribeRepositories":          s.describeRepositoriesOp,
			"DeleteRepository":              s.deleteRepositoryOp,
			"PutImageScanningConfiguration": s.putImageScanningConfigurationOp,
			"GetAuthorizationToken":         s.getAuthorizationTokenOp,
			"DescribeRegistry":              s.describeRegistryOp,
			"DescribeImages":                s.describeImagesOp,
			"ListImages":                    s.listImagesOp,
			"BatchGetImage":                 s.batchGetImageOp,
			"BatchDeleteImage":              s.batchDeleteImageOp,
		},
	}
	if s.scan != nil {
		// The scanning operations (scanning.go).
		for name, op := range s.scanOperations() {
			s.api.Operations[name] = op
		}
	}
	return s, nil
}

// ServeHTTP serves one ECR API call.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.api.ServeHTTP(w, withRetryIdentity(r))
}

// RegistryID is the installation's 12-digit registry id.
func (s *Service) RegistryID() string { return s.account.ID }

// arn is a repository's ARN in the request's region.
func (s *Service) arn(req *awsapi.Request, name string) string {
	return "arn:aws:ecr:" + req.Region + ":" + s.account.ID + ":repository/" + name
}

// notFound is the RepositoryNotFoundException for a repository.
func (s *Service) notFound(name string) *awsapi.Error {
	return awsapi.Errorf(CodeRepositoryNotFound, "The repository with name '%s' does not exist in the registry with id '%s'", name, s.account.ID)
}

// repoError maps a repository lookup error.
func (s *Service) repoError(name string, err error) error {
	if errors.Is(err, errRepoNotFound) {
		return s.notFound(name)
	}
	return err
}

// canRead reports whether a principal may see a repository and its
// images: with a pull grant (push implies pull) or a read-findings grant.
func canRead(p auth.Principal, repo string) bool {
	return p.Can(repo, auth.ActionPull) || p.Can(repo, auth.ActionReadFindings)
}

// requireAdmin refuses principals without the admin grant, which manages
// repositories and scanning configuration.
func (s *Service) requireAdmin(req *awsapi.Request, resource string) error {
	if req.Principal.Can("", auth.ActionAdmin) {
		return nil
	}
	return awsapi.Denied(req.Principal, "ecr:"+req.Operation, resource)
}

// require refuses a principal that may not do action on a repository,
// naming the ECR permission in the message.
func (s *Service) require(req *awsapi.Request, repo string, ok bool) error {
	if ok {
		return nil
	}
	return awsapi.Denied(req.Principal, "ecr:"+req.Operation, s.arn(req, repo))
}

// nextPage seals the cursor of the next page, or returns nil when the
// listing ended.
func (s *Service) nextPage(scope string, more bool, cursor any) (*string, error) {
	if !more {
		return nil, nil
	}
	t, err := s.account.Tokens().Seal(scope, cursor)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// openPage reads the cursor of a nextToken made for scope.
func (s *Service) openPage(scope string, token *string, cursor any) error {
	if token == nil {
		return nil
	}
	if err := s.account.Tokens().Open(scope, *token, cursor); err != nil {
		return invalid("nextToken", "Member must be a nextToken returned by a previous call with the same parameters, less than 24 hours ago")
	}
	return nil
}
