package inspector_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/awsapi/inspector"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// raw sends a request signed with aws-sdk-go-v2's SigV4 signer (or
// unsigned when k is nil) and returns the answer.
func (s *stack) raw(t *testing.T, k *auth.AccessKey, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if k != nil {
		sum := sha256.Sum256([]byte(body))
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret},
			req, hex.EncodeToString(sum[:]), inspector.SigningName, "us-west-2", time.Now())
		if err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestProtocol(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newStack(t, db)
		admin := &s.admin
		wrong := s.admin
		wrong.Secret = "not-the-secret-not-the-secret-0000000000"
		for _, tc := range []struct {
			name         string
			key          *auth.AccessKey
			method, path string
			body         string
			status       int
			code         string
		}{
			{"get-configuration with no body", admin, "POST", "/configuration/get", "", 200, ""},
			{"list-filters", admin, "POST", "/filters/list", "{}", 200, ""},
			{"unsigned", nil, "POST", "/filters/list", "{}", 403, "AccessDeniedException"},
			{"wrong secret", &wrong, "POST", "/filters/list", "{}", 403, "InvalidSignatureException"},
			{"unknown member", admin, "POST", "/findings/list", `{"filterCritera":{}}`, 400, "ValidationException"},
			{"wrong type", admin, "POST", "/findings/list", `{"maxResults":"ten"}`, 400, "ValidationException"},
			{"not JSON", admin, "POST", "/findings/list", `{`, 400, "ValidationException"},
			{"bad comparison", admin, "POST", "/findings/list", `{"filterCriteria":{"severity":[{"comparison":"LIKE","value":"HIGH"}]}}`, 400, "ValidationException"},
			{"bad sort field", admin, "POST", "/findings/list", `{"sortCriteria":{"field":"NAME","sortOrder":"ASC"}}`, 400, "ValidationException"},
			{"unsupported aggregation", admin, "POST", "/findings/aggregation/list", `{"aggregationType":"AMI"}`, 400, "ValidationException"},
			{"mismatched aggregation request", admin, "POST", "/findings/aggregation/list",
				`{"aggregationType":"REPOSITORY","aggregationRequest":{"packageAggregation":{}}}`, 400, "ValidationException"},
			{"coverage PREFIX", admin, "POST", "/coverage/list", `{"filterCriteria":{"resourceType":[{"comparison":"PREFIX","value":"AWS"}]}}`, 400, "ValidationException"},
			{"delete unknown filter", admin, "POST", "/filters/delete", `{"arn":"arn:aws:inspector2:us-west-2:000000000000:owner/000000000000/filter/none"}`, 404, "ResourceNotFoundException"},
			{"filter without criteria", admin, "POST", "/filters/create", `{"action":"SUPPRESS","name":"x","filterCriteria":{}}`, 400, "ValidationException"},
			{"ec2 configuration", admin, "POST", "/configuration/update", `{"ecrConfiguration":{"rescanDuration":"DAYS_30"},"ec2Configuration":{"scanMode":"EC2_HYBRID"}}`, 400, "ValidationException"},
			{"GET", admin, "GET", "/filters/list", "", 400, "ValidationException"},
			{"not implemented", admin, "POST", "/reporting/create", "{}", 400, "ValidationException"},
		} {
			resp, body := s.raw(t, tc.key, tc.method, tc.path, tc.body)
			if resp.StatusCode != tc.status {
				t.Errorf("%s: HTTP %d (%s), want %d", tc.name, resp.StatusCode, body, tc.status)
				continue
			}
			if resp.Header.Get("x-amzn-RequestId") == "" || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s: headers %v", tc.name, resp.Header)
			}
			if got := resp.Header.Get("x-amzn-ErrorType"); got != tc.code {
				t.Errorf("%s: x-amzn-ErrorType %q, want %q", tc.name, got, tc.code)
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Errorf("%s: body %q: %v", tc.name, body, err)
				continue
			}
			if _, ok := m["message"].(string); tc.code != "" && !ok {
				t.Errorf("%s: error body %s has no message", tc.name, body)
			}
		}
		// Nothing a refused update sent was stored.
		_, body := s.raw(t, admin, "POST", "/configuration/get", "")
		if !bytes.Contains(body, []byte(`"rescanDuration":"LIFETIME"`)) {
			t.Errorf("configuration after refused updates: %s", body)
		}
	})
}
