// Package awstest holds what the tests of Drydock's AWS-compatible APIs
// (ECR, Inspector) share when they drive them with aws-sdk-go-v2's
// clients: the clients' credentials and retry policy, and the check of an
// API error's code.
package awstest

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"

	"github.com/drydockhq/drydock/internal/auth"
)

// Credentials signs with a Drydock access key.
func Credentials(k auth.AccessKey) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(k.ID, k.Secret, "")
}

// Retryer retries connection errors only, without a rate limit, so every
// API answer (errors included) is seen as the server sent it: the SDK's
// transport now and then closes a kept-alive connection under a request
// it is reading (aws-sdk-go-v2 issue 2737, "use of closed network
// connection"; a plain net/http client never sees it here), which its
// default retryer retries too.
func Retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
		o.RateLimiter = ratelimit.None
	})
}

// WantCode fails the test unless err is an API error with the given code.
func WantCode(t testing.TB, what string, err error, code string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Errorf("%s: got %v, want %s", what, err, code)
		return
	}
	if apiErr.ErrorCode() != code {
		t.Errorf("%s: got %s (%s), want %s", what, apiErr.ErrorCode(), apiErr.ErrorMessage(), code)
	}
}
