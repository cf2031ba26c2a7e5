// Package awsapi is the protocol plumbing of Drydock's AWS-compatible APIs:
// the AWS JSON 1.1 protocol (POST with X-Amz-Target, used by ECR), SigV4
// authentication through the auth package, the error shapes, strict input
// decoding, epoch-second timestamps, sealed pagination tokens and the
// installation's account (registry) id. The APIs themselves live in
// subpackages (ecr).
package awsapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/drydockhq/drydock/internal/auth"
)

// ContentTypeJSON11 is the media type of AWS JSON 1.1 requests and
// responses.
const ContentTypeJSON11 = "application/x-amz-json-1.1"

// MaxBody bounds a request body; SigV4 verification reads at most this
// much too.
const MaxBody = auth.MaxSignedBody

// Verifier authenticates a SigV4-signed request for a signing name;
// *auth.Service is one.
type Verifier interface {
	VerifySigV4(r *http.Request, service string) (auth.Principal, error)
}

// Operation serves one API operation. It returns the output structure (nil
// for an empty one) or an error: an *Error goes to the client as it is,
// anything else is logged and answered with the service's internal error.
type Operation func(ctx context.Context, req *Request) (any, error)

// Request is one authenticated API call as an Operation sees it.
type Request struct {
	// Operation is the operation's name (CreateRepository).
	Operation string
	// ID is the request id sent back in x-amzn-RequestId.
	ID string
	// Principal made the request.
	Principal auth.Principal
	// Region is the region of the request's SigV4 credential scope.
	Region string
	// Scheme and Host are how the client reached the server ("http",
	// "127.0.0.1:5000"); the Host header is signed, so a proxy in front
	// keeps it.
	Scheme, Host string
	// Body is the raw request body.
	Body []byte
}

// Decode reads the request body into v; see Decode.
func (r *Request) Decode(v any) error { return Decode(r.Body, v) }

// Endpoint is the URL the client reached the server at
// ("http://127.0.0.1:5000").
func (r *Request) Endpoint() string { return r.Scheme + "://" + r.Host }

// JSONService serves one API over the AWS JSON 1.1 protocol: every call is
// a POST (to any path: a prefix in the client's endpoint URL is kept) whose
// X-Amz-Target header is TargetPrefix + "." + operation. Requests must be
// signed with SigV4 for SigningName. Replies are JSON with Content-Type
// application/x-amz-json-1.1 and an x-amzn-RequestId; errors are HTTP 400
// (403 for failed authentication, 500 for internal errors) with the body
// {"__type": code, "message": text} and the code also in x-amzn-ErrorType
// (the AWS CLI reads only the body, the Go SDK prefers the header).
type JSONService struct {
	// TargetPrefix is the service part of X-Amz-Target
	// ("AmazonEC2ContainerRegistry_V20150921").
	TargetPrefix string
	// SigningName is the SigV4 service name ("ecr").
	SigningName string
	// InternalErrorCode is the service's code for internal errors, sent
	// with HTTP 500 ("ServerException" for ECR).
	InternalErrorCode string
	// Verifier authenticates requests.
	Verifier Verifier
	// Operations maps operation names to their implementations.
	Operations map[string]Operation
	// Log receives internal errors (slog.Default() when nil). Request
	// bodies and credentials are never logged.
	Log *slog.Logger
}

// ServeHTTP serves one API call.
func (s *JSONService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := &Request{ID: newRequestID(), Host: r.Host, Scheme: scheme(r)}
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

func (s *JSONService) serve(r *http.Request, req *Request) (any, error) {
	if r.Method != http.MethodPost {
		return nil, Errorf(CodeUnknownOperation, "the %s API takes POST requests", s.SigningName)
	}
	if r.Header.Get("Authorization") == "" {
		// --no-sign-request, or no client at all.
		return nil, &Error{Code: "MissingAuthenticationTokenException", Message: "Missing Authentication Token", Status: authStatus}
	}
	p, err := s.Verifier.VerifySigV4(r, s.SigningName)
	if err != nil {
		if ae := fromAuth(err); ae != nil {
			return nil, ae
		}
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	req.Principal = p
	req.Region = credentialRegion(r.Header.Get("Authorization"))
	name, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), s.TargetPrefix+".")
	op := s.Operations[name]
	if !ok || op == nil {
		return nil, Errorf(CodeUnknownOperation, "unknown operation %q", truncate(r.Header.Get("X-Amz-Target"), 200))
	}
	req.Operation = name
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return nil, Errorf(CodeSerialization, "cannot read the request body: %v", err)
	}
	if len(body) > MaxBody {
		return nil, Errorf(CodeSerialization, "the request body is larger than %d bytes", MaxBody)
	}
	req.Body = body
	return op(r.Context(), req)
}

func (s *JSONService) writeError(w http.ResponseWriter, r *http.Request, req *Request, err error) {
	var ae *Error
	if !errors.As(err, &ae) {
		log := s.Log
		if log == nil {
			log = slog.Default()
		}
		log.ErrorContext(r.Context(), "API request failed", "api", s.SigningName, "operation", req.Operation,
			"request_id", req.ID, "principal", req.Principal.Name, "err", err)
		code := s.InternalErrorCode
		if code == "" {
			code = "InternalFailure"
		}
		ae = &Error{Code: code, Message: "internal error; request id " + req.ID, Status: http.StatusInternalServerError}
	}
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{ae.Code, ae.Message})
	w.Header().Set("x-amzn-ErrorType", ae.Code)
	writeBody(w, ae.HTTPStatus(), b)
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", ContentTypeJSON11)
	h.Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = io.Copy(w, bytes.NewReader(b))
}

// newRequestID returns a random UUID (version 4) string.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// scheme is how the client reached the server: https when the connection
// is TLS or a proxy in front says so.
func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	switch strings.ToLower(r.Header.Get("X-Forwarded-Proto")) {
	case "https":
		return "https"
	}
	return "http"
}

// credentialRegion returns the region of a verified SigV4 Authorization
// header's credential scope (KEY/DATE/REGION/SERVICE/aws4_request).
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
