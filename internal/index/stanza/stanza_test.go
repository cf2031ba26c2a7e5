package stanza_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index/stanza"
	"github.com/drydockhq/drydock/internal/testutil"
)

// records reads in with Read and returns each record's lines, each line
// prefixed by its number.
func records(in string, maxLine int) ([][]string, error) {
	var out [][]string
	var cur []string
	err := stanza.Read(strings.NewReader(in), maxLine, func(n int, line []byte) error {
		cur = append(cur, strconv.Itoa(n)+":"+string(line))
		return nil
	}, func() error {
		out = append(out, cur)
		cur = nil
		return nil
	})
	if cur != nil {
		out = append(out, append([]string{"UNCLOSED"}, cur...))
	}
	return out, err
}

func TestRead(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     [][]string
	}{
		{"empty", "", nil},
		{"only blank lines", "\n \n\t\n", nil},
		{"one record, no final newline", "P:a\nV:1", [][]string{{"1:P:a", "2:V:1"}}},
		{"two records", "P:a\nV:1\n\nP:b\nV:2\n", [][]string{{"1:P:a", "2:V:1"}, {"4:P:b", "5:V:2"}}},
		{"runs of blank lines, white space only", "\n\nP:a\n \t\n\r\n\nP:b\n\n\n", [][]string{{"3:P:a"}, {"7:P:b"}}},
		{"CRLF line ends", "P:a\r\nV:1\r\n\r\nP:b\r\n", [][]string{{"1:P:a", "2:V:1"}, {"4:P:b"}}},
		{"continuation lines are lines", "Package: a\nDescription: x\n more\n", [][]string{{"1:Package: a", "2:Description: x", "3: more"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := records(c.in, 1<<10)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, c.want, slices.Equal) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	long := "P:a\n\nP:" + strings.Repeat("x", 100) + "\n"
	if _, err := records(long, 64); err == nil || !strings.Contains(err.Error(), "line 3") || !errors.Is(err, bufio.ErrTooLong) {
		t.Errorf("line over the bound: %v", err)
	}
	stop := errors.New("stop")
	calls := 0
	err := stanza.Read(strings.NewReader("a\nb\n\nc\n"), 64, func(n int, _ []byte) error {
		calls++
		if n == 2 {
			return stop
		}
		return nil
	}, func() error { t.Error("end called after a field error"); return nil })
	if !errors.Is(err, stop) || calls != 2 {
		t.Errorf("field error: %v after %d calls", err, calls)
	}
	ends := 0
	err = stanza.Read(strings.NewReader("a\n\nb\n"), 64, func(int, []byte) error { return nil },
		func() error { ends++; return stop })
	if !errors.Is(err, stop) || ends != 1 {
		t.Errorf("end error: %v after %d ends", err, ends)
	}
}

// The real dpkg status of a Debian bookworm minbase root file system: one
// record per "Package:" line, each starting at that line.
func TestReadRealStatus(t *testing.T) {
	data, err := os.ReadFile(testutil.Fixture(t, "rootfs/bookworm-minbase.dpkg-status"))
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for i, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "Package: ") {
			want = append(want, i+1)
		}
	}
	if len(want) < 50 {
		t.Fatalf("the fixture has %d Package lines", len(want))
	}
	var starts []int
	first := true
	err = stanza.Read(bytes.NewReader(data), 1<<20, func(n int, _ []byte) error {
		if first {
			starts = append(starts, n)
			first = false
		}
		return nil
	}, func() error { first = true; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(starts, want) {
		t.Errorf("%d records starting at %v..., want %d at %v...", len(starts), starts[:min(5, len(starts))], len(want), want[:5])
	}
}

// FuzzRead checks Read against a plain split of the input into lines:
// the same non-blank lines in order, numbered as they stand, grouped into
// the same records.
func FuzzRead(f *testing.F) {
	data, err := os.ReadFile(testutil.Fixture(f, "rootfs/bookworm-minbase.dpkg-status"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[:4096])
	f.Add([]byte("P:musl\nV:1.1.22-r3\no:musl\n\nP:zlib\nV:1.2.11-r1\n"))
	f.Add([]byte("\r\n \n\tx\n\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxLine = 256
		var want [][]string
		var cur []string
		for i, line := range strings.Split(string(in), "\n") {
			if len(line)+1 >= maxLine {
				return // near the bound; TestReadErrors checks Read refuses longer lines
			}
			line = strings.TrimSuffix(line, "\r")
			if strings.TrimSpace(line) == "" {
				if cur != nil {
					want, cur = append(want, cur), nil
				}
				continue
			}
			cur = append(cur, strconv.Itoa(i+1)+":"+line)
		}
		if cur != nil {
			want = append(want, cur)
		}
		got, err := records(string(in), maxLine)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}
