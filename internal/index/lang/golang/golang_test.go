package golang

import (
	"encoding/binary"
	"errors"
	"testing"
)

func block(version, modinfo string, flags byte) []byte {
	b := make([]byte, headerLen)
	copy(b, Magic)
	b[len(Magic)] = 8
	b[len(Magic)+1] = flags
	b = binary.AppendUvarint(b, uint64(len(version)))
	b = append(b, version...)
	b = binary.AppendUvarint(b, uint64(len(modinfo)))
	return append(b, modinfo...)
}

// modinfo is the text the go command embeds (between its sentinels) for a
// module with one replaced dependency, as `go version -m` prints it.
const modinfo = ModinfoStart + "path\texample.com/app\nmod\texample.com/app\tv1.0.0\th1:x=\ndep\tgolang.org/x/text\tv0.3.7\th1:y=\ndep\tgithub.com/google/uuid\tv1.3.0\n=>\tgithub.com/google/uuid\tv1.2.0\th1:z=\ndep\texample.com/local\tv0.1.0\n=>\t../local\t\t\nbuild\t-compiler=gc\n" + ModinfoEnd

func TestDecodeBlock(t *testing.T) {
	b := block("go1.22.3", modinfo, flagInline)
	for n := 0; n < len(b); n++ {
		_, _, need, err := DecodeBlock(b[:n])
		if err != nil || need <= n {
			t.Fatalf("prefix of %d bytes: need %d, err %v", n, need, err)
		}
	}
	v, m, need, err := DecodeBlock(b)
	if err != nil || need != 0 || v != "go1.22.3" || m != modinfo {
		t.Fatalf("%q %q %d %v", v, m, need, err)
	}
	if _, _, _, err := DecodeBlock(block("go1.16", "", 0)); !errors.Is(err, ErrNotInline) {
		t.Errorf("old block: %v", err)
	}
	if _, _, _, err := DecodeBlock(block("not a version", "", flagInline)); err == nil {
		t.Error("bad version accepted")
	}
}

func TestPackages(t *testing.T) {
	pkgs, err := Packages("go1.22.3 X:boringcrypto", modinfo, "app/server")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"stdlib":                 "1.22.3",
		"example.com/app":        "v1.0.0",
		"golang.org/x/text":      "v0.3.7",
		"github.com/google/uuid": "v1.2.0",
		"example.com/local":      "v0.1.0",
	}
	if len(pkgs) != len(want) {
		t.Fatalf("%+v", pkgs)
	}
	for _, p := range pkgs {
		if want[p.Name] != p.Version || p.Ecosystem != "Go" || p.Path != "app/server" {
			t.Errorf("%+v", p)
		}
		switch p.Name {
		case "stdlib":
			if p.PURL != "pkg:golang/stdlib@1.22.3" {
				t.Errorf("purl %q", p.PURL)
			}
		case "example.com/local":
			if p.Metadata["replacedBy"] != "../local" {
				t.Errorf("%+v", p)
			}
		case "golang.org/x/text":
			if p.PURL != "pkg:golang/golang.org/x/text@v0.3.7" {
				t.Errorf("purl %q", p.PURL)
			}
		}
	}
	for in, want := range map[string]string{"go1.22.3": "1.22.3", "go1.20": "1.20.0", "go1.21rc2": "1.21.0-rc.2", "go1.19beta1": "1.19.0-beta.1", "devel go1.23-abc": "", "": ""} {
		if got, _ := StdlibVersion(in); got != want {
			t.Errorf("StdlibVersion(%q) = %q", in, got)
		}
	}
}

func FuzzDecodeBlock(f *testing.F) {
	f.Add(block("go1.22.3", modinfo, flagInline))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < len(Magic) {
			return
		}
		copy(b, Magic)
		v, m, need, err := DecodeBlock(b)
		if err == nil && need == 0 {
			Packages(v, m, "x")
		}
	})
}
