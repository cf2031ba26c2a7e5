package awsapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	smithytime "github.com/aws/smithy-go/time"

	"github.com/drydockhq/drydock/internal/testutil"
)

type filterIn struct {
	TagStatus *string `json:"tagStatus"`
}

type idIn struct {
	ImageDigest *string `json:"imageDigest"`
	ImageTag    *string `json:"imageTag"`
}

type tagIn struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value"`
}

var typeOfSample = reflect.TypeFor[sampleIn]()

type sampleIn struct {
	RepositoryName *string           `json:"repositoryName"`
	MaxResults     *int              `json:"maxResults"`
	Force          bool              `json:"force"`
	Filter         *filterIn         `json:"filter"`
	ImageIDs       []idIn            `json:"imageIds"`
	Tags           []tagIn           `json:"tags"`
	Counts         map[string]int    `json:"counts"`
	Since          *Time             `json:"since"`
	Labels         map[string]string `json:"labels"`
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		name, body string
		code       string // "" for success
	}{
		{"empty body", ``, ""},
		{"whitespace", " \n", ""},
		{"empty object", `{}`, ""},
		{"members", `{"repositoryName":"a/b","maxResults":5,"force":true,"filter":{"tagStatus":"TAGGED"},"imageIds":[{"imageTag":"x"}],"tags":[{"Key":"k","Value":"v"}],"counts":{"HIGH":1},"since":1732600000.5,"labels":{"any key":"v"}}`, ""},
		{"python separators", `{"repositoryName": "a", "imageIds": [{"imageDigest": "sha256:ab"}]}`, ""},
		{"null members", `{"repositoryName":null,"filter":null,"imageIds":null}`, ""},
		{"unknown member", `{"repositoryName":"a","bogus":1}`, CodeSerialization},
		{"unknown nested member", `{"filter":{"tagStatus":"ANY","extra":true}}`, CodeSerialization},
		{"unknown member in a list", `{"imageIds":[{"imageTag":"x"},{"imageDigest":"d","tag":"y"}]}`, CodeSerialization},
		{"case differs", `{"RepositoryName":"a"}`, CodeSerialization},
		{"case differs the other way", `{"tags":[{"key":"k","Value":"v"}]}`, CodeSerialization},
		{"string for integer", `{"maxResults":"5"}`, CodeSerialization},
		{"fraction for integer", `{"maxResults":1.5}`, CodeSerialization},
		{"huge integer", `{"maxResults":1e30}`, CodeSerialization},
		{"object for string", `{"repositoryName":{}}`, CodeSerialization},
		{"string for list", `{"imageIds":"x"}`, CodeSerialization},
		{"string for timestamp", `{"since":"2024-11-26T05:46:40Z"}`, CodeSerialization},
		{"array body", `[]`, CodeSerialization},
		{"null body", `null`, CodeSerialization},
		{"scalar body", `"x"`, CodeSerialization},
		{"two values", `{} {}`, CodeSerialization},
		{"truncated", `{"repositoryName":`, CodeSerialization},
		{"not JSON", `repositoryName=a`, CodeSerialization},
	} {
		t.Run(c.name, func(t *testing.T) {
			var v sampleIn
			err := Decode([]byte(c.body), &v)
			if c.code == "" {
				if err != nil {
					t.Fatalf("Decode(%q): %v", c.body, err)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != c.code || ae.HTTPStatus() != 400 {
				t.Fatalf("Decode(%q) = %v, want %s", c.body, err, c.code)
			}
		})
	}
	var v sampleIn
	if err := Decode([]byte(`{"repositoryName":"a/b","since":1732600000.5,"tags":[{"Key":"k","Value":""}]}`), &v); err != nil {
		t.Fatal(err)
	}
	if *v.RepositoryName != "a/b" || !v.Since.Equal(time.UnixMilli(1732600000500)) || *v.Tags[0].Value != "" {
		t.Errorf("decoded %+v", v)
	}
}

// TestTimeWire checks our epoch numbers against smithy-go's own timestamp
// codec (what aws-sdk-go-v2 uses to read them).
func TestTimeWire(t *testing.T) {
	for _, tm := range []time.Time{
		time.Unix(1732600000, 0),
		time.UnixMilli(1732600000123),
		time.UnixMilli(1579839105001),
		time.Unix(0, 0),
		time.Date(2099, 12, 31, 23, 59, 59, 999e6, time.UTC),
	} {
		b, err := json.Marshal(struct {
			T Time `json:"t"`
		}{At(tm)})
		if err != nil {
			t.Fatal(err)
		}
		var wire struct {
			T json.Number `json:"t"`
		}
		if err := json.Unmarshal(b, &wire); err != nil {
			t.Fatalf("%s is not a JSON number: %v", b, err)
		}
		f, err := wire.T.Float64()
		if err != nil {
			t.Fatal(err)
		}
		if got := smithytime.ParseEpochSeconds(f); !got.Equal(tm) {
			t.Errorf("%v went over the wire as %s and smithy-go read %v", tm, wire.T, got)
		}
		if want := smithytime.FormatEpochSeconds(tm); f != want {
			t.Errorf("%v: we sent %v, smithy-go would send %v", tm, f, want)
		}
	}
	// Unset optional times are left out.
	b, _ := json.Marshal(struct {
		T Time `json:"t,omitzero"`
	}{})
	if string(b) != `{}` {
		t.Errorf("zero time marshals as %s", b)
	}
}

// realBodies are the request bodies the AWS CLI v1, v2 and aws-sdk-go-v2
// sent in the contract's captures.
func realBodies(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, run := range []string{"cliv2", "cliv2-edge", "cliv1-botocore-1.43.11", "go-sdk-v2", "pagination"} {
		f, err := os.Open(testutil.RepoRoot(t) + "/../shared/contract/logs/" + run + "/requests.jsonl")
		if err != nil {
			t.Fatalf("contract captures: %v", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r struct {
				Body string `json:"body"`
			}
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				out = append(out, r.Body)
			}
		}
		f.Close()
	}
	if len(out) == 0 {
		t.Fatal("no captured bodies")
	}
	return out
}

func FuzzDecode(f *testing.F) {
	for _, b := range realBodies(f) {
		f.Add([]byte(b))
	}
	f.Add([]byte(`{"imageIds":[{"imageTag":"x","bogus":1}],"since":1e400}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var v sampleIn
		err := Decode(body, &v)
		if err == nil {
			// Whatever Decode accepts is a JSON object whose every member
			// the structure names exactly.
			var m map[string]json.RawMessage
			if len(strings.TrimSpace(string(body))) > 0 {
				if json.Unmarshal(body, &m) != nil {
					t.Fatalf("accepted a body that is not a JSON object: %q", body)
				}
				for k := range m {
					if _, ok := jsonFields(typeOfSample)[k]; !ok {
						t.Fatalf("accepted unknown member %q", k)
					}
				}
			}
			return
		}
		var ae *Error
		if !errors.As(err, &ae) || ae.Code != CodeSerialization {
			t.Fatalf("Decode error %v is not a SerializationException", err)
		}
	})
}
