package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Pattern is a compiled EventBridge event pattern. It supports the common
// subset of EventBridge's content filtering: nested objects, lists of
// exact values (strings, numbers, booleans, null), prefix, suffix,
// equals-ignore-case, anything-but (a value, a list of values or a
// prefix), exists, and numeric comparisons. A field matches when any of
// its listed conditions matches; an array in the event matches when any
// of its elements does; all fields of the pattern must match.
type Pattern struct {
	fields map[string]field
}

type field struct {
	nested   *Pattern  // set for an object in the pattern
	matchers []matcher // set for a list in the pattern
}

type matcher struct {
	kind    string // "exact", "prefix", "suffix", "equals-ignore-case", "anything-but", "anything-but-prefix", "exists", "numeric"
	values  []any  // exact/anything-but values (string, float64, bool, nil)
	text    string // prefix, suffix, equals-ignore-case, anything-but-prefix
	exists  bool
	numeric []numCond
}

type numCond struct {
	op string
	v  float64
}

// MatchAll is the pattern of a target with no filter.
var MatchAll = &Pattern{}

// CompilePattern parses an event pattern. An empty string matches every
// event.
func CompilePattern(s string) (*Pattern, error) {
	if strings.TrimSpace(s) == "" {
		return MatchAll, nil
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("event pattern: %w", err)
	}
	if dec.More() {
		return nil, errors.New("event pattern: trailing data after the JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("event pattern: must be a JSON object")
	}
	return compileObject(obj, "")
}

func compileObject(obj map[string]any, path string) (*Pattern, error) {
	p := &Pattern{fields: map[string]field{}}
	for k, v := range obj {
		at := k
		if path != "" {
			at = path + "." + k
		}
		switch v := v.(type) {
		case map[string]any:
			n, err := compileObject(v, at)
			if err != nil {
				return nil, err
			}
			p.fields[k] = field{nested: n}
		case []any:
			if len(v) == 0 {
				return nil, fmt.Errorf("event pattern: %s: empty list matches nothing", at)
			}
			var ms []matcher
			for _, c := range v {
				m, err := compileCondition(c, at)
				if err != nil {
					return nil, err
				}
				ms = append(ms, m)
			}
			p.fields[k] = field{matchers: ms}
		default:
			return nil, fmt.Errorf("event pattern: %s: values must be in a list or an object", at)
		}
	}
	return p, nil
}

func scalar(v any) (any, bool) {
	switch v := v.(type) {
	case string, bool, nil:
		return v, true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	return nil, false
}

func compileCondition(c any, at string) (matcher, error) {
	if v, ok := scalar(c); ok {
		return matcher{kind: "exact", values: []any{v}}, nil
	}
	obj, ok := c.(map[string]any)
	if !ok || len(obj) != 1 {
		return matcher{}, fmt.Errorf("event pattern: %s: a condition is a value or an object with one operator", at)
	}
	for op, arg := range obj {
		switch op {
		case "prefix", "suffix", "equals-ignore-case":
			s, ok := arg.(string)
			if !ok {
				return matcher{}, fmt.Errorf("event pattern: %s: %s takes a string", at, op)
			}
			return matcher{kind: op, text: s}, nil
		case "exists":
			b, ok := arg.(bool)
			if !ok {
				return matcher{}, fmt.Errorf("event pattern: %s: exists takes true or false", at)
			}
			return matcher{kind: op, exists: b}, nil
		case "anything-but":
			switch a := arg.(type) {
			case map[string]any:
				s, ok := a["prefix"].(string)
				if len(a) != 1 || !ok {
					return matcher{}, fmt.Errorf("event pattern: %s: anything-but takes a value, a list or {\"prefix\": string}", at)
				}
				return matcher{kind: "anything-but-prefix", text: s}, nil
			case []any:
				var vs []any
				for _, x := range a {
					v, ok := scalar(x)
					if !ok {
						return matcher{}, fmt.Errorf("event pattern: %s: anything-but lists values", at)
					}
					vs = append(vs, v)
				}
				return matcher{kind: op, values: vs}, nil
			default:
				v, ok := scalar(a)
				if !ok {
					return matcher{}, fmt.Errorf("event pattern: %s: anything-but takes a value", at)
				}
				return matcher{kind: op, values: []any{v}}, nil
			}
		case "numeric":
			a, ok := arg.([]any)
			if !ok || len(a) == 0 || len(a)%2 != 0 || len(a) > 4 {
				return matcher{}, fmt.Errorf("event pattern: %s: numeric takes one or two [operator, number] pairs", at)
			}
			m := matcher{kind: op}
			for i := 0; i < len(a); i += 2 {
				o, ok := a[i].(string)
				n, isNum := a[i+1].(json.Number)
				if !ok || !isNum {
					return matcher{}, fmt.Errorf("event pattern: %s: numeric takes [operator, number] pairs", at)
				}
				switch o {
				case "<", "<=", "=", ">", ">=":
				default:
					return matcher{}, fmt.Errorf("event pattern: %s: unknown numeric operator %q", at, o)
				}
				f, err := n.Float64()
				if err != nil {
					return matcher{}, fmt.Errorf("event pattern: %s: %w", at, err)
				}
				m.numeric = append(m.numeric, numCond{o, f})
			}
			return m, nil
		default:
			return matcher{}, fmt.Errorf("event pattern: %s: unsupported operator %q", at, op)
		}
	}
	return matcher{}, fmt.Errorf("event pattern: %s: empty condition", at)
}

// Match reports whether an event (JSON) matches the pattern.
func (p *Pattern) Match(event []byte) bool {
	if len(p.fields) == 0 {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(event))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return false
	}
	obj, ok := v.(map[string]any)
	return ok && p.matchObject(obj)
}

func (p *Pattern) matchObject(obj map[string]any) bool {
	for k, f := range p.fields {
		v, present := obj[k]
		if f.nested != nil {
			sub, ok := v.(map[string]any)
			if !ok || !f.nested.matchObject(sub) {
				return false
			}
			continue
		}
		if !f.matchValue(v, present) {
			return false
		}
	}
	return true
}

func (f field) matchValue(v any, present bool) bool {
	// An array in the event matches when any of its elements does.
	var vals []any
	if a, ok := v.([]any); ok {
		vals = a
	} else if present {
		vals = []any{v}
	}
	for _, m := range f.matchers {
		if m.kind == "exists" {
			if m.exists == present {
				return true
			}
			continue
		}
		for _, x := range vals {
			if m.match(x) {
				return true
			}
		}
	}
	return false
}

func (m matcher) match(x any) bool {
	x, ok := scalar(x)
	if !ok {
		return false
	}
	s, isString := x.(string)
	switch m.kind {
	case "exact":
		return m.values[0] == x
	case "prefix":
		return isString && strings.HasPrefix(s, m.text)
	case "suffix":
		return isString && strings.HasSuffix(s, m.text)
	case "equals-ignore-case":
		return isString && strings.EqualFold(s, m.text)
	case "anything-but":
		for _, v := range m.values {
			if v == x {
				return false
			}
		}
		return true
	case "anything-but-prefix":
		return isString && !strings.HasPrefix(s, m.text)
	case "numeric":
		f, ok := x.(float64)
		if !ok {
			return false
		}
		for _, c := range m.numeric {
			if !compare(f, c) {
				return false
			}
		}
		return true
	}
	return false
}

func compare(f float64, c numCond) bool {
	switch c.op {
	case "<":
		return f < c.v
	case "<=":
		return f <= c.v
	case "=":
		return f == c.v
	case ">":
		return f > c.v
	default:
		return f >= c.v
	}
}
