package ecr

import (
	"context"
	"fmt"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/awsapi"
)

// getAuthorizationTokenOp serves GetAuthorizationToken (and so `aws ecr
// get-login-password`): a login password for the access key that signed
// the request, valid 12 hours, as base64("AWS:" + password), with the
// registry URL the client reached as proxyEndpoint. The password has no
// ':' (the CLI splits on it).
func (s *Service) getAuthorizationTokenOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in struct {
		RegistryIDs []string `json:"registryIds"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.RegistryIDs != nil {
		if len(in.RegistryIDs) < 1 || len(in.RegistryIDs) > 10 {
			return nil, invalid("registryIds", "Member must have length between 1 and 10")
		}
		for i := range in.RegistryIDs {
			if err := s.checkRegistryID(&in.RegistryIDs[i]); err != nil {
				return nil, err
			}
		}
	}
	if req.Principal.KeyID == "" {
		return nil, awsapi.Denied(req.Principal, "ecr:GetAuthorizationToken", "")
	}
	pw, exp, err := s.auth.LoginPassword(ctx, req.Principal.KeyID)
	if err != nil {
		return nil, fmt.Errorf("login password: %w", err)
	}
	// One entry per registry asked for; they are all this one.
	n := max(1, len(uniq(in.RegistryIDs)))
	data := make([]AuthorizationData, n)
	for i := range data {
		data[i] = AuthorizationData{
			AuthorizationToken: auth.AuthorizationToken(pw),
			ExpiresAt:          awsapi.At(exp),
			ProxyEndpoint:      req.Endpoint(),
		}
	}
	return struct {
		AuthorizationData []AuthorizationData `json:"authorizationData"`
	}{data}, nil
}

func uniq(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range list {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// describeRegistryOp serves DescribeRegistry: the registry id and an empty
// replication configuration (Drydock does not replicate).
func (s *Service) describeRegistryOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in struct{}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	return struct {
		RegistryID               string                   `json:"registryId"`
		ReplicationConfiguration ReplicationConfiguration `json:"replicationConfiguration"`
	}{s.account.ID, ReplicationConfiguration{Rules: []struct{}{}}}, nil
}
