package inspector

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/scan"
)

// EcrConfiguration is the stored ECR re-scan configuration.
type EcrConfiguration struct {
	RescanDuration         string `json:"rescanDuration"`
	PullDateRescanDuration string `json:"pullDateRescanDuration,omitempty"`
	PullDateRescanMode     string `json:"pullDateRescanMode,omitempty"`
}

// ecrConfigSetting is the inspector_settings row where the ECR
// configuration was kept before the scan domain owned it (see
// adoptEcrConfiguration).
const ecrConfigSetting = "ecr_configuration"

// EcrConfiguration returns the ECR re-scan configuration (the scan
// service's monitoring windows) and when it was last changed (zero if
// never).
func (s *Service) EcrConfiguration(ctx context.Context) (EcrConfiguration, time.Time, error) {
	w, err := s.scan.Windows(ctx)
	if err != nil {
		return EcrConfiguration{}, time.Time{}, fmt.Errorf("inspector: configuration: %w", err)
	}
	return EcrConfiguration{RescanDuration: w.RescanDuration, PullDateRescanDuration: w.PullDateRescanDuration,
		PullDateRescanMode: w.PullDateRescanMode}, w.UpdatedAt, nil
}

// adoptEcrConfiguration moves a configuration stored by an older Drydock
// in inspector_settings into the scan domain, unless the scan domain has
// one already, then forgets the old row. Run at every start; a crash
// between the two steps repeats them harmlessly.
func (s *Service) adoptEcrConfiguration(ctx context.Context) error {
	var v string
	var updated int64
	err := s.db.QueryRowContext(ctx, `SELECT value, updated_at FROM inspector_settings WHERE name = ?`, ecrConfigSetting).Scan(&v, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspector: stored configuration: %w", err)
	}
	var c EcrConfiguration
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return fmt.Errorf("inspector: stored configuration: %w", err)
	}
	adopted, err := s.scan.AdoptWindows(ctx, scan.Windows{RescanDuration: c.RescanDuration, PullDateRescanDuration: c.PullDateRescanDuration,
		PullDateRescanMode: c.PullDateRescanMode, UpdatedAt: time.UnixMilli(updated).UTC()})
	if err != nil {
		return fmt.Errorf("inspector: move the stored configuration to the scan service: %w", err)
	}
	if adopted {
		s.log.InfoContext(ctx, "inspector: ECR re-scan configuration moved to the scan service", "rescanDuration", c.RescanDuration)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM inspector_settings WHERE name = ?`, ecrConfigSetting); err != nil {
		return fmt.Errorf("inspector: forget the stored configuration: %w", err)
	}
	return nil
}

type rescanDurationState struct {
	RescanDuration         string      `json:"rescanDuration"`
	Status                 string      `json:"status"`
	UpdatedAt              awsapi.Time `json:"updatedAt,omitzero"`
	PullDateRescanDuration string      `json:"pullDateRescanDuration,omitempty"`
	PullDateRescanMode     string      `json:"pullDateRescanMode,omitempty"`
}

type getConfigurationOutput struct {
	EcrConfiguration struct {
		RescanDurationState rescanDurationState `json:"rescanDurationState"`
	} `json:"ecrConfiguration"`
}

func (s *Service) getConfigurationOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in struct{}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	c, updated, err := s.EcrConfiguration(ctx)
	if err != nil {
		return nil, err
	}
	var out getConfigurationOutput
	out.EcrConfiguration.RescanDurationState = rescanDurationState{
		RescanDuration: c.RescanDuration, Status: "SUCCESS", UpdatedAt: awsapi.At(updated),
		PullDateRescanDuration: c.PullDateRescanDuration, PullDateRescanMode: c.PullDateRescanMode,
	}
	return out, nil
}

type updateConfigurationInput struct {
	EcrConfiguration *EcrConfiguration `json:"ecrConfiguration,omitempty"`
	// Ec2Configuration is accepted by the model; Drydock scans no EC2
	// instances and refuses it rather than dropping it.
	Ec2Configuration json.RawMessage `json:"ec2Configuration,omitempty"`
}

func (s *Service) updateConfigurationOp(ctx context.Context, req *awsapi.Request) (any, error) {
	if err := requireAdmin(req); err != nil {
		return nil, err
	}
	var in updateConfigurationInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if len(in.Ec2Configuration) > 0 {
		return nil, validation("ec2Configuration: Drydock scans container images only")
	}
	if in.EcrConfiguration == nil {
		return nil, validation("ecrConfiguration is required")
	}
	c := *in.EcrConfiguration
	// The scan service validates (a *scan.ValidationError answers
	// ValidationException) and stores; its sweep enforces the windows.
	if _, err := s.scan.SetWindows(ctx, scan.Windows{RescanDuration: c.RescanDuration,
		PullDateRescanDuration: c.PullDateRescanDuration, PullDateRescanMode: c.PullDateRescanMode}); err != nil {
		return nil, fmt.Errorf("inspector: update configuration: %w", err)
	}
	return struct{}{}, nil
}
