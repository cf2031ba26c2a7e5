package inspector

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/awsapi"
)

// Filter is inspector2's Filter (ListFilters).
type Filter struct {
	Arn         string            `json:"arn"`
	OwnerID     string            `json:"ownerId"`
	Name        string            `json:"name"`
	Criteria    FilterCriteria    `json:"criteria"`
	Action      string            `json:"action"`
	CreatedAt   awsapi.Time       `json:"createdAt"`
	UpdatedAt   awsapi.Time       `json:"updatedAt"`
	Description string            `json:"description,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

var filterActions = map[string]bool{"NONE": true, "SUPPRESS": true}

const filterSelect = `SELECT arn, name, action, criteria, description, reason, tags, created_at, updated_at FROM inspector_filters`

func (s *Service) queryFilters(ctx context.Context, q string, args ...any) ([]Filter, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("inspector: filters: %w", err)
	}
	defer rows.Close()
	var out []Filter
	for rows.Next() {
		f := Filter{OwnerID: s.account.ID}
		var crit, tags string
		var created, updated int64
		if err := rows.Scan(&f.Arn, &f.Name, &f.Action, &crit, &f.Description, &f.Reason, &tags, &created, &updated); err != nil {
			return nil, fmt.Errorf("inspector: filters: %w", err)
		}
		if err := json.Unmarshal([]byte(crit), &f.Criteria); err != nil {
			return nil, fmt.Errorf("inspector: stored filter %s: %w", f.Arn, err)
		}
		if err := json.Unmarshal([]byte(tags), &f.Tags); err != nil {
			return nil, fmt.Errorf("inspector: stored filter %s: %w", f.Arn, err)
		}
		f.CreatedAt, f.UpdatedAt = awsapi.At(time.UnixMilli(created).UTC()), awsapi.At(time.UnixMilli(updated).UTC())
		out = append(out, f)
	}
	return out, rows.Err()
}

// suppressors returns the criteria of the SUPPRESS filters.
func (s *Service) suppressors(ctx context.Context) ([]*FilterCriteria, error) {
	fs, err := s.queryFilters(ctx, filterSelect+` WHERE action = 'SUPPRESS'`)
	if err != nil {
		return nil, err
	}
	out := make([]*FilterCriteria, len(fs))
	for i := range fs {
		out[i] = &fs[i].Criteria
	}
	return out, nil
}

type createFilterInput struct {
	Action         string            `json:"action"`
	Name           string            `json:"name"`
	FilterCriteria *FilterCriteria   `json:"filterCriteria"`
	Description    *string           `json:"description,omitempty"`
	Reason         *string           `json:"reason,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
}

type arnOutput struct {
	Arn string `json:"arn"`
}

func checkText(field string, v *string, max int) error {
	if v != nil && (len(*v) < 1 || len(*v) > max) {
		return validation("%s: length must be 1 to %d", field, max)
	}
	return nil
}

func emptyCriteria(c *FilterCriteria) bool {
	b, _ := json.Marshal(c)
	return string(b) == "{}"
}

func (s *Service) createFilterOp(ctx context.Context, req *awsapi.Request) (any, error) {
	if err := requireAdmin(req); err != nil {
		return nil, err
	}
	var in createFilterInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if !filterActions[in.Action] {
		return nil, validation("action: %q is not NONE or SUPPRESS", in.Action)
	}
	if err := checkText("name", &in.Name, 128); err != nil {
		return nil, err
	}
	if in.FilterCriteria == nil || emptyCriteria(in.FilterCriteria) {
		return nil, validation("filterCriteria: at least one criterion is required")
	}
	if err := in.FilterCriteria.validate(); err != nil {
		return nil, err
	}
	if err := checkText("description", in.Description, 512); err != nil {
		return nil, err
	}
	if err := checkText("reason", in.Reason, 512); err != nil {
		return nil, err
	}
	if len(in.Tags) > 50 {
		return nil, validation("tags: at most 50")
	}
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(idb[:])
	arn := "arn:aws:inspector2:" + req.Region + ":" + s.account.ID + ":owner/" + s.account.ID + "/filter/" + id
	crit, err := json.Marshal(in.FilterCriteria)
	if err != nil {
		return nil, err
	}
	if in.Tags == nil {
		in.Tags = map[string]string{}
	}
	tags, err := json.Marshal(in.Tags)
	if err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	var dup int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM inspector_filters WHERE name = ?`, in.Name).Scan(&dup); err != nil {
		return nil, fmt.Errorf("inspector: create filter: %w", err)
	}
	if dup > 0 {
		return nil, validation("A filter named %q already exists", in.Name)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO inspector_filters (id, arn, name, action, criteria, description, reason, tags, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, arn, in.Name, in.Action, string(crit), deref(in.Description), deref(in.Reason), string(tags), now, now); err != nil {
		return nil, fmt.Errorf("inspector: create filter: %w", err)
	}
	return arnOutput{arn}, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

type updateFilterInput struct {
	FilterArn      string          `json:"filterArn"`
	Action         *string         `json:"action,omitempty"`
	Name           *string         `json:"name,omitempty"`
	FilterCriteria *FilterCriteria `json:"filterCriteria,omitempty"`
	Description    *string         `json:"description,omitempty"`
	Reason         *string         `json:"reason,omitempty"`
}

func (s *Service) filterByArn(ctx context.Context, arn string) (Filter, error) {
	fs, err := s.queryFilters(ctx, filterSelect+` WHERE arn = ?`, arn)
	if err != nil {
		return Filter{}, err
	}
	if len(fs) == 0 {
		return Filter{}, &awsapi.Error{Code: CodeResourceNotFound, Message: "No filter with ARN " + truncate(arn, 200), Status: http.StatusNotFound}
	}
	return fs[0], nil
}

func (s *Service) updateFilterOp(ctx context.Context, req *awsapi.Request) (any, error) {
	if err := requireAdmin(req); err != nil {
		return nil, err
	}
	var in updateFilterInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	f, err := s.filterByArn(ctx, in.FilterArn)
	if err != nil {
		return nil, err
	}
	if in.Action != nil {
		if !filterActions[*in.Action] {
			return nil, validation("action: %q is not NONE or SUPPRESS", *in.Action)
		}
		f.Action = *in.Action
	}
	if in.Name != nil {
		if err := checkText("name", in.Name, 128); err != nil {
			return nil, err
		}
		f.Name = *in.Name
	}
	if in.FilterCriteria != nil {
		if emptyCriteria(in.FilterCriteria) {
			return nil, validation("filterCriteria: at least one criterion is required")
		}
		if err := in.FilterCriteria.validate(); err != nil {
			return nil, err
		}
		f.Criteria = *in.FilterCriteria
	}
	for _, t := range []struct {
		field string
		v     *string
		dst   *string
	}{{"description", in.Description, &f.Description}, {"reason", in.Reason, &f.Reason}} {
		if err := checkText(t.field, t.v, 512); err != nil {
			return nil, err
		}
		if t.v != nil {
			*t.dst = *t.v
		}
	}
	crit, err := json.Marshal(f.Criteria)
	if err != nil {
		return nil, err
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE inspector_filters SET name = ?, action = ?, criteria = ?, description = ?, reason = ?, updated_at = ?
		WHERE arn = ?`, f.Name, f.Action, string(crit), f.Description, f.Reason, s.now().UnixMilli(), f.Arn); err != nil {
		return nil, fmt.Errorf("inspector: update filter: %w", err)
	}
	return arnOutput{f.Arn}, nil
}

type deleteFilterInput struct {
	Arn string `json:"arn"`
}

func (s *Service) deleteFilterOp(ctx context.Context, req *awsapi.Request) (any, error) {
	if err := requireAdmin(req); err != nil {
		return nil, err
	}
	var in deleteFilterInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM inspector_filters WHERE arn = ?`, in.Arn)
	if err != nil {
		return nil, fmt.Errorf("inspector: delete filter: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if n == 0 {
		return nil, &awsapi.Error{Code: CodeResourceNotFound, Message: "No filter with ARN " + truncate(in.Arn, 200), Status: http.StatusNotFound}
	}
	return arnOutput(in), nil
}

type listFiltersInput struct {
	Arns       []string `json:"arns,omitempty"`
	Action     *string  `json:"action,omitempty"`
	MaxResults *int     `json:"maxResults,omitempty"`
	NextToken  *string  `json:"nextToken,omitempty"`
}

type listFiltersOutput struct {
	Filters   []Filter `json:"filters"`
	NextToken *string  `json:"nextToken,omitempty"`
}

type arnCursor struct {
	After string `json:"a"`
}

func (s *Service) listFiltersOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in listFiltersInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	limit, err := maxResults(in.MaxResults, 100, 100)
	if err != nil {
		return nil, err
	}
	if in.Action != nil && !filterActions[*in.Action] {
		return nil, validation("action: %q is not NONE or SUPPRESS", *in.Action)
	}
	scope := scopeOf("ListFilters", []any{in.Arns, in.Action})
	var cur arnCursor
	if err := s.open(scope, in.NextToken, &cur); err != nil {
		return nil, err
	}
	q, args := filterSelect+` WHERE arn > ?`, []any{cur.After}
	if in.Action != nil {
		q, args = q+` AND action = ?`, append(args, *in.Action)
	}
	if len(in.Arns) > 0 {
		q += ` AND arn IN (?` + strRepeat(",?", len(in.Arns)-1) + `)`
		for _, a := range in.Arns {
			args = append(args, a)
		}
	}
	fs, err := s.queryFilters(ctx, q+` ORDER BY arn LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, err
	}
	out := listFiltersOutput{Filters: fs}
	if out.Filters == nil {
		out.Filters = []Filter{}
	}
	more := len(fs) > limit
	if more {
		out.Filters = fs[:limit]
	}
	if more {
		out.NextToken, err = s.seal(scope, true, arnCursor{out.Filters[limit-1].Arn})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func strRepeat(s string, n int) string { return strings.Repeat(s, n) }
