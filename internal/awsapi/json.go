package awsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Decode parses a JSON request body into v (a pointer to a struct) the way
// AWS JSON services read their input: an empty body is the empty object;
// anything that is not one JSON object, a member the structure does not
// define (names are case-sensitive, unlike encoding/json's matching), or a
// value of the wrong type is a SerializationException. null members count
// as absent.
//
// Unknown members are refused rather than ignored: the clients never send
// them (botocore refuses them locally and the SDKs cannot), so one only
// arrives from a hand-made or newer-than-Drydock request, and silently
// dropping a setting the caller asked for (tag immutability, say) is worse
// than saying so.
func Decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return Errorf(CodeSerialization, "the request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(CodeSerialization, "the request body holds more than one JSON value")
	}
	if _, ok := raw.(map[string]any); !ok {
		return Errorf(CodeSerialization, "the request body must be a JSON object")
	}
	if err := checkMembers(raw, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Errorf(CodeSerialization, "unexpected value at '%s': expected %s, got %s", te.Field, jsonKind(te.Type), te.Value)
		}
		return Errorf(CodeSerialization, "cannot read the request: %v", err)
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkMembers walks a decoded JSON value beside the Go type it will be
// read into and refuses object members that name no field exactly.
func checkMembers(val any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if val == nil || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := val.(map[string]any)
		if !ok {
			return nil // a type error, reported by json.Unmarshal
		}
		fields := jsonFields(t)
		for name, v := range obj {
			ft, ok := fields[name]
			if !ok {
				return Errorf(CodeSerialization, "unknown member '%s'", join(path, name))
			}
			if err := checkMembers(v, ft, join(path, name)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		list, ok := val.([]any)
		if !ok {
			return nil
		}
		for i, v := range list {
			if err := checkMembers(v, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, ok := val.(map[string]any)
		if !ok {
			return nil
		}
		for k, v := range obj {
			if err := checkMembers(v, t.Elem(), join(path, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// jsonFields maps the JSON member names of a struct type to their types,
// following encoding/json's rules for tags and embedded structs.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for n, typ := range jsonFields(ft) {
					if _, dup := out[n]; !dup {
						out[n] = typ
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// jsonKind names a Go type the way the JSON model would.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// Time is a timestamp on the wire of the AWS JSON protocols: a JSON number
// of seconds since the Unix epoch, with milliseconds as a fraction
// (1732600000.123). Clients accept any number form; aws-sdk-go-v2 refuses
// strings. Tag optional members `json:",omitzero"` so an unset time is
// left out.
type Time struct{ time.Time }

// At returns t as a wire timestamp.
func At(t time.Time) Time { return Time{t} }

// MarshalJSON writes the epoch seconds.
func (t Time) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads epoch seconds (integer or fractional).
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e13 {
		return fmt.Errorf("timestamp %s is not a number of seconds since the epoch", b)
	}
	t.Time = time.UnixMilli(int64(math.Round(f * 1000))).UTC()
	return nil
}
