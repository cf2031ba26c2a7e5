package inspector

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/store"
)

// EcrConfiguration is the stored ECR re-scan configuration.
type EcrConfiguration struct {
	RescanDuration         string `json:"rescanDuration"`
	PullDateRescanDuration string `json:"pullDateRescanDuration,omitempty"`
	PullDateRescanMode     string `json:"pullDateRescanMode,omitempty"`
}

var (
	rescanDurations         = map[string]bool{"LIFETIME": true, "DAYS_14": true, "DAYS_30": true, "DAYS_60": true, "DAYS_90": true, "DAYS_180": true}
	pullDateRescanDurations = map[string]bool{"DAYS_14": true, "DAYS_30": true, "DAYS_60": true, "DAYS_90": true, "DAYS_180": true}
	pullDateRescanModes     = map[string]bool{"LAST_PULL_DATE": true, "LAST_IN_USE_AT": true}
)

// defaultEcrConfiguration is what an installation starts with: images
// stay eligible for continuous re-scans for their lifetime.
var defaultEcrConfiguration = EcrConfiguration{RescanDuration: "LIFETIME"}

const ecrConfigSetting = "ecr_configuration"

// EcrConfiguration returns the stored ECR re-scan configuration and when it
// was last changed (zero if never).
func (s *Service) EcrConfiguration(ctx context.Context) (EcrConfiguration, time.Time, error) {
	var v string
	var updated int64
	err := s.db.QueryRowContext(ctx, `SELECT value, updated_at FROM inspector_settings WHERE name = ?`, ecrConfigSetting).Scan(&v, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return defaultEcrConfiguration, time.Time{}, nil
	}
	if err != nil {
		return EcrConfiguration{}, time.Time{}, fmt.Errorf("inspector: configuration: %w", err)
	}
	var c EcrConfiguration
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return EcrConfiguration{}, time.Time{}, fmt.Errorf("inspector: stored configuration: %w", err)
	}
	return c, time.UnixMilli(updated).UTC(), nil
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
	if !rescanDurations[c.RescanDuration] {
		return nil, validation("ecrConfiguration.rescanDuration: %q is not one of LIFETIME, DAYS_14, DAYS_30, DAYS_60, DAYS_90, DAYS_180", c.RescanDuration)
	}
	if c.PullDateRescanDuration != "" && !pullDateRescanDurations[c.PullDateRescanDuration] {
		return nil, validation("ecrConfiguration.pullDateRescanDuration: %q is not one of DAYS_14, DAYS_30, DAYS_60, DAYS_90, DAYS_180", c.PullDateRescanDuration)
	}
	if c.PullDateRescanMode != "" && !pullDateRescanModes[c.PullDateRescanMode] {
		return nil, validation("ecrConfiguration.pullDateRescanMode: %q is not LAST_PULL_DATE or LAST_IN_USE_AT", c.PullDateRescanMode)
	}
	v, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM inspector_settings WHERE name = ?`, ecrConfigSetting); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO inspector_settings (name, value, updated_at) VALUES (?, ?, ?)`, ecrConfigSetting, string(v), now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("inspector: update configuration: %w", err)
	}
	return struct{}{}, nil
}
