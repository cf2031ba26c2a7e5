package events

import (
	"testing"
)

// ec2Event is the example event of EventBridge's event pattern
// documentation (EC2 Instance State-change Notification), with a few
// fields added for the operators the documentation shows on other events.
const ec2Event = `{
  "version": "0",
  "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "111122223333",
  "time": "2017-12-22T18:43:48Z",
  "region": "us-west-1",
  "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
  "detail": {
    "instance-id": "i-1234567890abcdef0",
    "state": "terminated",
    "c-count": 5,
    "d-count": 3,
    "x-limit": 301.8,
    "source-ip": "10.0.0.123",
    "file-name": "photo.png",
    "response": null,
    "ok": true
  }
}`

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		want    bool
	}{
		{"empty matches all", ``, true},
		{"source", `{"source": ["aws.ec2"]}`, true},
		{"source other", `{"source": ["aws.ecr"]}`, false},
		{"source any of", `{"source": ["aws.ecr", "aws.ec2"]}`, true},
		{"detail-type and nested", `{"detail-type": ["EC2 Instance State-change Notification"], "detail": {"state": ["terminated"]}}`, true},
		{"nested mismatch", `{"detail": {"state": ["running", "pending"]}}`, false},
		{"all fields must match", `{"source": ["aws.ec2"], "detail": {"state": ["running"]}}`, false},
		{"array field any element", `{"resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0", "x"]}`, true},
		{"array field no element", `{"resources": ["x"]}`, false},
		{"prefix", `{"time": [{"prefix": "2017-12-22"}]}`, true},
		{"prefix no", `{"time": [{"prefix": "2018"}]}`, false},
		{"suffix", `{"detail": {"file-name": [{"suffix": ".png"}]}}`, true},
		{"suffix no", `{"detail": {"file-name": [{"suffix": ".jpg"}]}}`, false},
		{"equals-ignore-case", `{"detail": {"state": [{"equals-ignore-case": "TERMINATED"}]}}`, true},
		{"anything-but value", `{"detail": {"state": [{"anything-but": "initializing"}]}}`, true},
		{"anything-but same value", `{"detail": {"state": [{"anything-but": "terminated"}]}}`, false},
		{"anything-but list", `{"detail": {"state": [{"anything-but": ["stopped", "terminated"]}]}}`, false},
		{"anything-but numbers", `{"detail": {"c-count": [{"anything-but": [100, 200, 300]}]}}`, true},
		{"anything-but prefix", `{"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}`, true},
		{"anything-but prefix no", `{"detail": {"state": [{"anything-but": {"prefix": "term"}}]}}`, false},
		{"anything-but on missing field", `{"detail": {"nothere": [{"anything-but": "x"}]}}`, false},
		{"exists true", `{"detail": {"state": [{"exists": true}]}}`, true},
		{"exists true missing", `{"detail": {"nothere": [{"exists": true}]}}`, false},
		{"exists false missing", `{"detail": {"nothere": [{"exists": false}]}}`, true},
		{"exists false present", `{"detail": {"state": [{"exists": false}]}}`, false},
		{"numeric range", `{"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}], "x-limit": [{"numeric": ["=", 301.8]}]}}`, true},
		{"numeric out of range", `{"detail": {"c-count": [{"numeric": [">", 5]}]}}`, false},
		{"numeric on string", `{"detail": {"state": [{"numeric": [">", 0]}]}}`, false},
		{"number exact equals float form", `{"detail": {"c-count": [5.0]}}`, true},
		{"number is not its string", `{"detail": {"c-count": ["5"]}}`, false},
		{"null matches null", `{"detail": {"response": [null]}}`, true},
		{"null does not match missing", `{"detail": {"nothere": [null]}}`, false},
		{"bool", `{"detail": {"ok": [true]}}`, true},
		{"object pattern on scalar", `{"source": {"x": ["y"]}}`, false},
		{"or of conditions", `{"detail": {"state": [{"prefix": "run"}, "terminated"]}}`, true},
		{"missing field", `{"detail": {"nothere": ["x"]}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := CompilePattern(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Match([]byte(ec2Event)); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPatternInvalid(t *testing.T) {
	for _, p := range []string{
		`[]`,
		`{"source": "aws.ec2"}`,
		`{"source": []}`,
		`{"source": [{"prefix": 1}]}`,
		`{"source": [{"regex": "a.*"}]}`,
		`{"source": [{"prefix": "a", "suffix": "b"}]}`,
		`{"detail": {"n": [{"numeric": [">"]}]}}`,
		`{"detail": {"n": [{"numeric": ["!=", 1]}]}}`,
		`{"detail": {"n": [{"exists": "yes"}]}}`,
		`{"source": ["a"]} {}`,
		`{"source": [`,
	} {
		if _, err := CompilePattern(p); err == nil {
			t.Errorf("CompilePattern(%s) accepted", p)
		}
	}
}

// FuzzPattern: any pattern and event are judged without a panic.
func FuzzPattern(f *testing.F) {
	f.Add(`{"source": ["aws.ecr"], "detail": {"action-type": ["PUSH"], "image-tag": [{"prefix": "v"}]}}`, ec2Event)
	f.Add(`{"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "state": [{"anything-but": {"prefix": "x"}}]}}`, ec2Event)
	f.Add(`{"a": [{"exists": false}, null, 1, true]}`, `{"a": [1, {"b": 2}, null]}`)
	f.Fuzz(func(t *testing.T, pattern, event string) {
		p, err := CompilePattern(pattern)
		if err != nil {
			return
		}
		p.Match([]byte(event))
	})
}
