// Package inspector serves Drydock's Amazon Inspector (inspector2)
// compatible API for container images: the REST-JSON operations the AWS
// CLI and SDKs send (POST /findings/list, /coverage/list, ...), over the
// findings and scan statuses of the scan package, authenticated with SigV4
// (signing name inspector2) against Drydock's access keys.
package inspector

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
)

// SigningName is the SigV4 service name of the Inspector API.
const SigningName = "inspector2"

// Error codes of the inspector2 model, with their HTTP statuses.
const (
	CodeValidation       = "ValidationException"       // 400
	CodeAccessDenied     = "AccessDeniedException"     // 403
	CodeResourceNotFound = "ResourceNotFoundException" // 404
	CodeInternal         = "InternalServerException"   // 500
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configure a Service.
type Options struct {
	// Store is the metadata store; New applies the Inspector migrations.
	Store *store.DB
	// Auth verifies SigV4 signatures; *auth.Service is one.
	Auth awsapi.Verifier
	// Scan is the scanning service whose findings and statuses are served.
	Scan *scan.Service
	// Log receives internal errors (slog.Default() when nil).
	Log *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// ExportDir is where CreateSbomExport writes: each bucket is a
	// directory under it (empty: SBOM export is refused).
	ExportDir string
}

// Service is the Inspector API, an http.Handler for the paths IsPath accepts.
type Service struct {
	db      *store.DB
	auth    awsapi.Verifier
	scan    *scan.Service
	account *awsapi.Account
	log     *slog.Logger
	now     func() time.Time
	ops     map[string]operation
	exports *sbomExports
}

type operation struct {
	name string
	fn   awsapi.Operation
}

// paths are the request paths the API implements (all POST).
var paths = []string{
	"/findings/list", "/coverage/list", "/findings/aggregation/list",
	"/filters/create", "/filters/update", "/filters/delete", "/filters/list",
	"/usage/list",
	"/configuration/get", "/configuration/update",
	"/sbomexport/create", "/sbomexport/get", "/sbomexport/cancel",
	ledgerPath, remediationPath,
}

// unsupported are the paths of inspector2 operations Drydock does not
// implement; they are answered with a ValidationException that says so,
// in the protocol's shape, rather than a bare 404.
var unsupported = map[string]string{
	"/coverage/statistics/list":   "ListCoverageStatistics",
	"/findings/details/batch/get": "BatchGetFindingDetails",
	"/reporting/create":           "CreateFindingsReport",
	"/reporting/status/get":       "GetFindingsReportStatus",
	"/reporting/cancel":           "CancelFindingsReport",
	"/enable":                     "Enable",
	"/disable":                    "Disable",
	"/status/batch/get":           "BatchGetAccountStatus",
}

// IsPath reports whether a request path is an inspector2 operation's, one
// Drydock implements or one it answers as not implemented.
func IsPath(p string) bool {
	if _, ok := unsupported[p]; ok {
		return true
	}
	for _, q := range paths {
		if p == q {
			return true
		}
	}
	return false
}

// New prepares the store and returns the Inspector API.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Store == nil || o.Auth == nil || o.Scan == nil {
		return nil, errors.New("inspector: a store, an authenticator and the scan service are required")
	}
	account, err := awsapi.LoadAccount(ctx, o.Store)
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("inspector: %w", err)
	}
	if err := o.Store.Migrate(ctx, "inspector", sub); err != nil {
		return nil, fmt.Errorf("inspector: migrate: %w", err)
	}
	s := &Service{db: o.Store, auth: o.Auth, scan: o.Scan, account: account, log: o.Log, now: o.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.adoptEcrConfiguration(ctx); err != nil {
		return nil, err
	}
	s.ops = map[string]operation{
		"/findings/list":             {"ListFindings", s.listFindingsOp},
		"/coverage/list":             {"ListCoverage", s.listCoverageOp},
		"/findings/aggregation/list": {"ListFindingAggregations", s.listFindingAggregationsOp},
		"/filters/create":            {"CreateFilter", s.createFilterOp},
		"/filters/update":            {"UpdateFilter", s.updateFilterOp},
		"/filters/delete":            {"DeleteFilter", s.deleteFilterOp},
		"/filters/list":              {"ListFilters", s.listFiltersOp},
		"/configuration/get":         {"GetConfiguration", s.getConfigurationOp},
		"/configuration/update":      {"UpdateConfiguration", s.updateConfigurationOp},
		"/usage/list":                {"ListUsageTotals", s.listUsageTotalsOp},
		ledgerPath:                   {"ListLedger", s.listLedgerOp},
		remediationPath:              {"ListRemediation", s.listRemediationOp},
	}
	s.initSbomExports(o.ExportDir)
	return s, nil
}

// ServeHTTP serves one Inspector API call (restJson1): the operation is the
// path; errors carry the model's HTTP status, the code in x-amzn-ErrorType
// and the body {"message": ...}.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := &awsapi.Request{ID: newRequestID(), Host: r.Host, Scheme: "http"}
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		req.Scheme = "https"
	}
	w.Header().Set("x-amzn-RequestId", req.ID)
	out, err := s.serve(r, req)
	if err != nil {
		s.writeError(w, r, req, err)
		return
	}
	if out == nil {
		out = struct{}{}
	}
	b, err := json.Marshal(out)
	if err != nil {
		s.writeError(w, r, req, fmt.Errorf("encode %s output: %w", req.Operation, err))
		return
	}
	writeBody(w, http.StatusOK, b)
}

func (s *Service) serve(r *http.Request, req *awsapi.Request) (any, error) {
	op, ok := s.ops[r.URL.Path]
	missing, unimplemented := unsupported[r.URL.Path]
	if unimplemented {
		op.name = missing
	}
	if !ok && !unimplemented {
		return nil, &awsapi.Error{Code: CodeResourceNotFound, Message: "no inspector2 operation at " + truncate(r.URL.Path, 200), Status: http.StatusNotFound}
	}
	if r.Method != http.MethodPost {
		return nil, &awsapi.Error{Code: CodeValidation, Message: "the inspector2 API takes POST requests", Status: http.StatusBadRequest}
	}
	req.Operation = op.name
	if r.Header.Get("Authorization") == "" {
		return nil, &awsapi.Error{Code: CodeAccessDenied, Message: "Missing Authentication Token", Status: http.StatusForbidden}
	}
	p, err := s.auth.VerifySigV4(r, SigningName)
	if err != nil {
		var ae *auth.Error
		switch {
		case errors.As(err, &ae):
			return nil, &awsapi.Error{Code: ae.Code, Message: ae.Message, Status: http.StatusForbidden}
		case errors.Is(err, auth.ErrDenied), errors.Is(err, auth.ErrUnauthenticated):
			return nil, &awsapi.Error{Code: CodeAccessDenied, Message: err.Error(), Status: http.StatusForbidden}
		}
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	req.Principal = p
	req.Region = credentialRegion(r.Header.Get("Authorization"))
	if unimplemented {
		return nil, validation("Drydock does not implement the inspector2 operation %s", missing)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, awsapi.MaxBody+1))
	if err != nil {
		return nil, validation("cannot read the request body: %v", err)
	}
	if len(body) > awsapi.MaxBody {
		return nil, validation("the request body is larger than %d bytes", awsapi.MaxBody)
	}
	req.Body = body
	return op.fn(r.Context(), req)
}

func (s *Service) writeError(w http.ResponseWriter, r *http.Request, req *awsapi.Request, err error) {
	var ae *awsapi.Error
	if !errors.As(err, &ae) {
		var ve *scan.ValidationError
		if errors.As(err, &ve) {
			ae = validation("%s", ve.Msg)
		} else {
			s.log.ErrorContext(r.Context(), "API request failed", "api", SigningName, "operation", req.Operation,
				"request_id", req.ID, "principal", req.Principal.Name, "err", err)
			ae = &awsapi.Error{Code: CodeInternal, Message: "internal error; request id " + req.ID, Status: http.StatusInternalServerError}
		}
	}
	status := ae.HTTPStatus()
	code := ae.Code
	// The shared decoder reports SerializationException; inspector2's
	// model has no such error, its clients expect ValidationException.
	if code == awsapi.CodeSerialization {
		code = CodeValidation
	}
	if code == awsapi.CodeAccessDenied {
		status = http.StatusForbidden
	}
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{ae.Message})
	w.Header().Set("x-amzn-ErrorType", code)
	writeBody(w, status, b)
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = io.Copy(w, bytes.NewReader(b))
}

// validation is a ValidationException (HTTP 400).
func validation(format string, args ...any) *awsapi.Error {
	return &awsapi.Error{Code: CodeValidation, Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

// requireAdmin refuses principals without the admin grant, which manages
// suppression rules and the configuration.
func requireAdmin(req *awsapi.Request) error {
	if req.Principal.Can("", auth.ActionAdmin) {
		return nil
	}
	return &awsapi.Error{Code: CodeAccessDenied, Message: fmt.Sprintf("User: %s is not authorized to perform: inspector2:%s", req.Principal.Name, req.Operation), Status: http.StatusForbidden}
}

// canRead reports whether a principal may read a repository's findings.
func canRead(p auth.Principal, repo string) bool {
	return p.Can(repo, auth.ActionReadFindings) || p.Can(repo, auth.ActionPull)
}

// seal makes the nextToken of a listing, or nil when it ended.
func (s *Service) seal(scope string, more bool, cursor any) (*string, error) {
	if !more {
		return nil, nil
	}
	t, err := s.account.Tokens().Seal(scope, cursor)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// open reads the cursor of a nextToken made for scope.
func (s *Service) open(scope string, token *string, cursor any) error {
	if token == nil {
		return nil
	}
	if err := s.account.Tokens().Open(scope, *token, cursor); err != nil {
		return validation("Invalid nextToken: it must come from a previous call with the same parameters, less than 24 hours ago")
	}
	return nil
}

// scopeOf binds a token to an operation and its parameters.
func scopeOf(op string, params any) string {
	b, _ := json.Marshal(params)
	return op + ":" + string(b)
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func credentialRegion(h string) string {
	_, rest, _ := strings.Cut(h, "Credential=")
	cred, _, _ := strings.Cut(rest, ",")
	f := strings.Split(strings.TrimSpace(cred), "/")
	if len(f) != 5 {
		return ""
	}
	return f[2]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
