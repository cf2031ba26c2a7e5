package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
	// MaxClockSkew is how far a SigV4 request's X-Amz-Date may be from the
	// server's clock, as AWS allows.
	MaxClockSkew = 15 * time.Minute
	// MaxSignedBody bounds the body the server reads to hash a SigV4
	// request. The ECR and Inspector JSON requests are far smaller.
	MaxSignedBody = 8 << 20
)

// ecrTargetPrefix starts the X-Amz-Target of every ECR API request.
const ecrTargetPrefix = "AmazonEC2ContainerRegistry_V20150921."

// sigV4Auth is a parsed SigV4 Authorization header.
type sigV4Auth struct {
	keyID, date, region, service string
	signedHeaders                []string
	signature                    string
}

// parseSigV4Authorization parses
//
//	AWS4-HMAC-SHA256 Credential=ID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b, Signature=HEX
func parseSigV4Authorization(h string) (sigV4Auth, error) {
	bad := func(msg string) (sigV4Auth, error) {
		return sigV4Auth{}, authError("IncompleteSignatureException", "%s", msg)
	}
	rest, ok := strings.CutPrefix(h, sigV4Algorithm+" ")
	if !ok {
		return bad("the authorization header must start with " + sigV4Algorithm)
	}
	if len(rest) > 4096 {
		return bad("the authorization header is too long")
	}
	var a sigV4Auth
	var haveCred, haveSigned, haveSig bool
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return bad("malformed authorization header element")
		}
		switch k {
		case "Credential":
			if haveCred {
				return bad("duplicate Credential")
			}
			haveCred = true
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" || f[0] == "" || len(f[1]) != 8 || f[2] == "" || f[3] == "" {
				return bad("the Credential must be KEY/YYYYMMDD/REGION/SERVICE/aws4_request")
			}
			a.keyID, a.date, a.region, a.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			if haveSigned {
				return bad("duplicate SignedHeaders")
			}
			haveSigned = true
			a.signedHeaders = strings.Split(v, ";")
			for i, name := range a.signedHeaders {
				if name == "" || name != strings.ToLower(name) || i > 0 && a.signedHeaders[i-1] >= name {
					return bad("SignedHeaders must be lower-case header names, sorted, without repeats")
				}
			}
		case "Signature":
			if haveSig {
				return bad("duplicate Signature")
			}
			haveSig = true
			if len(v) != 2*sha256.Size {
				return bad("the Signature must be 64 hexadecimal digits")
			}
			if _, err := hex.DecodeString(v); err != nil || v != strings.ToLower(v) {
				return bad("the Signature must be 64 hexadecimal digits")
			}
			a.signature = v
		default:
			return bad("unknown authorization header element " + k)
		}
	}
	if !haveCred || !haveSigned || !haveSig {
		return bad("the authorization header needs Credential, SignedHeaders and Signature")
	}
	if !contains(a.signedHeaders, "host") || !contains(a.signedHeaders, "x-amz-date") {
		return bad("host and x-amz-date must be signed")
	}
	return a, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// expectedService is the SigV4 signing name a request must carry: ecr for
// the ECR JSON API (X-Amz-Target), inspector2 for everything else.
func expectedService(r *http.Request) string {
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), ecrTargetPrefix) {
		return "ecr"
	}
	return "inspector2"
}

func (s *Service) authenticateSigV4(r *http.Request, h string) (Principal, error) {
	return s.VerifySigV4(r, expectedService(r))
}

// VerifySigV4 authenticates a request signed with AWS Signature Version 4
// for the given signing name ("ecr", "inspector2"). The body is read (at
// most MaxSignedBody bytes), hashed by the server and put back, so the
// handler can still read it. The expected signature is computed with
// aws-sdk-go-v2's signer over exactly the headers the client signed, and
// compared in constant time.
func (s *Service) VerifySigV4(r *http.Request, service string) (Principal, error) {
	a, err := parseSigV4Authorization(r.Header.Get("Authorization"))
	if err != nil {
		return Principal{}, err
	}
	if a.service != service {
		return Principal{}, authError("InvalidSignatureException", "credential should be scoped to correct service: '%s'", service)
	}
	t, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return Principal{}, authError("IncompleteSignatureException", "missing or malformed X-Amz-Date")
	}
	if t.Format("20060102") != a.date {
		return Principal{}, authError("InvalidSignatureException", "the credential date does not match X-Amz-Date")
	}
	now := s.now()
	if d := now.Sub(t); d > MaxClockSkew || d < -MaxClockSkew {
		return Principal{}, authError("InvalidSignatureException",
			"signature expired: %s is not within %v of the server time %s", t.Format(amzDateFormat), MaxClockSkew, now.UTC().Format(amzDateFormat))
	}
	k, err := s.lookupKey(r.Context(), a.keyID)
	if errors.Is(err, ErrNotFound) {
		s.log.Debug("SigV4 request with an unknown or disabled key", "key_id", a.keyID)
		return Principal{}, authError("UnrecognizedClientException", "the security token included in the request is invalid")
	}
	if err != nil {
		return Principal{}, err
	}
	payloadHash, err := hashBody(r)
	if err != nil {
		return Principal{}, err
	}
	want, signed, err := expectedSignature(r.Context(), r, a, k.secret, payloadHash, t)
	if err != nil {
		return Principal{}, err
	}
	if signed != strings.Join(a.signedHeaders, ";") ||
		subtle.ConstantTimeCompare([]byte(want), []byte(a.signature)) != 1 {
		s.log.Debug("SigV4 signature mismatch", "key_id", a.keyID)
		return Principal{}, authError("InvalidSignatureException",
			"the request signature we calculated does not match the signature you provided; check your secret access key and signing method")
	}
	return k.principal, nil
}

// hashBody reads the body, puts it back and returns its hex SHA-256.
func hashBody(r *http.Request) (string, error) {
	if r.Body == nil || r.Body == http.NoBody {
		sum := sha256.Sum256(nil)
		return hex.EncodeToString(sum[:]), nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxSignedBody+1))
	r.Body.Close()
	if err != nil {
		return "", authError("IncompleteSignatureException", "reading the request body: %v", err)
	}
	if len(body) > MaxSignedBody {
		return "", authError("IncompleteSignatureException", "a signed request body is limited to %d bytes", MaxSignedBody)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:]), nil
}

// expectedSignature signs a copy of r that carries only the headers the
// client signed, and returns the signature and signed-header list the
// signer produced.
func expectedSignature(ctx context.Context, r *http.Request, a sigV4Auth, secret, payloadHash string, t time.Time) (sig, signedHeaders string, err error) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), nil)
	if err != nil {
		return "", "", authError("IncompleteSignatureException", "cannot rebuild the request: %v", err)
	}
	req.URL = u
	req.Host = r.Host
	creds := aws.Credentials{AccessKeyID: a.keyID, SecretAccessKey: secret}
	for _, name := range a.signedHeaders {
		switch name {
		case "host", "x-amz-date":
			// the signer writes these itself
		case "content-length":
			req.ContentLength = r.ContentLength
		case "x-amz-security-token":
			// Drydock issues no session tokens; a client configured with one
			// signs it, and the signature with the key's secret is what
			// authenticates.
			creds.SessionToken = r.Header.Get("X-Amz-Security-Token")
		default:
			vals := r.Header.Values(name)
			if len(vals) == 0 {
				return "", "", authError("IncompleteSignatureException", "signed header %s is missing", name)
			}
			req.Header[http.CanonicalHeaderKey(name)] = vals
		}
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, payloadHash, a.service, a.region, t); err != nil {
		return "", "", authError("IncompleteSignatureException", "cannot sign: %v", err)
	}
	got, err := parseSigV4Authorization(req.Header.Get("Authorization"))
	if err != nil {
		return "", "", err
	}
	return got.signature, strings.Join(got.signedHeaders, ";"), nil
}
