// Package golang turns the build information the Go linker embeds in every
// binary (Go 1.18 and later write it inline after a "\xff Go buildinf:"
// header) into packages: the main module, each dependency (after replace
// directives), and the Go standard library as the package "stdlib".
//
// Binaries are found by the streaming scanner in package binary; this
// package decodes what it finds.
package golang

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/internal/langutil"
)

// Magic starts the build information block of a Go binary.
const Magic = "\xff Go buildinf:"

// headerLen is the size of the block's header: the magic, the pointer
// size, a flags byte, and padding.
const headerLen = 32

const (
	flagBigEndian = 0x1
	flagInline    = 0x2 // version and module strings follow the header (Go ≥ 1.18)
)

// MaxBlock bounds the strings of a build information block; the module
// list of the largest programs is a few hundred kilobytes.
const MaxBlock = 4 << 20

// ErrNotInline reports a block written by Go before 1.18, whose strings are
// pointers into the binary rather than inline: reading them needs random
// access to the whole file.
var ErrNotInline = errors.New("build information of Go before 1.18 (not inline)")

// errBadBlock reports bytes after a magic that are not a build information
// block (the magic string also appears as a constant in programs that read
// build information).
var errBadBlock = errors.New("not a build information block")

// DecodeBlock decodes the block starting at b[0] (b starts with Magic). It
// returns the Go version ("go1.22.3") and the module information text. If b
// is too short it returns need > len(b): the caller reads at least need
// bytes and calls again.
func DecodeBlock(b []byte) (goVersion, modinfo string, need int, err error) {
	if len(b) < headerLen {
		return "", "", headerLen, nil
	}
	if string(b[:len(Magic)]) != Magic {
		return "", "", 0, errBadBlock
	}
	ptrSize, flags := b[len(Magic)], b[len(Magic)+1]
	if (ptrSize != 4 && ptrSize != 8) || flags&^(flagBigEndian|flagInline) != 0 {
		return "", "", 0, errBadBlock
	}
	if flags&flagInline == 0 {
		return "", "", 0, ErrNotInline
	}
	rest := b[headerLen:]
	var strs [2]string
	used := headerLen
	for i := range strs {
		n, w := binary.Uvarint(rest)
		if w == 0 {
			return "", "", used + binary.MaxVarintLen64, nil
		}
		if w < 0 || n > MaxBlock {
			return "", "", 0, errBadBlock
		}
		if uint64(len(rest)-w) < n {
			return "", "", used + w + int(n), nil
		}
		strs[i] = string(rest[w : w+int(n)])
		rest = rest[w+int(n):]
		used += w + int(n)
	}
	if !strings.HasPrefix(strs[0], "go") && !strings.HasPrefix(strs[0], "devel") {
		return "", "", 0, errBadBlock
	}
	return strs[0], strs[1], 0, nil
}

// ModinfoStart and ModinfoEnd are the sentinels around the module
// information text.
const (
	ModinfoStart = "0w\xaf\f\x92t\b\x02A\xe1\xc1\a\xe6\xd6\x18\xe6"
	ModinfoEnd   = "\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2"
)

// Packages returns the packages of a binary at path from its Go version and
// module information. A binary built outside module mode has no modules:
// only the standard library is reported.
func Packages(goVersion, modinfo, path string) ([]index.Package, error) {
	if len(modinfo) >= 33 && modinfo[len(modinfo)-17] == '\n' {
		modinfo = modinfo[len(ModinfoStart) : len(modinfo)-len(ModinfoEnd)]
	}
	var pkgs []index.Package
	if v, ok := StdlibVersion(goVersion); ok {
		pkgs = append(pkgs, newPackage("stdlib", v, path, nil))
	}
	if modinfo == "" {
		return pkgs, nil
	}
	bi, err := debug.ParseBuildInfo(modinfo)
	if err != nil {
		return pkgs, fmt.Errorf("module information: %w", err)
	}
	if bi.Main.Path != "" {
		v := bi.Main.Version
		if v == "" {
			v = "(devel)"
		}
		pkgs = append(pkgs, newPackage(bi.Main.Path, v, path, map[string]string{"main": "true"}))
	}
	for _, d := range bi.Deps {
		if d.Path == "" {
			continue
		}
		name, version := d.Path, d.Version
		var meta map[string]string
		if r := d.Replace; r != nil {
			if r.Version != "" {
				// Replaced by another module version: that is the code
				// in the binary.
				meta = map[string]string{"replaces": d.Path + "@" + d.Version}
				name, version = r.Path, r.Version
			} else {
				// Replaced by a local directory: the code is whatever
				// that directory held; the required version is kept.
				meta = map[string]string{"replacedBy": r.Path}
			}
		}
		if version == "" {
			continue
		}
		pkgs = append(pkgs, newPackage(name, version, path, meta))
	}
	return pkgs, nil
}

// StdlibVersion turns a toolchain version ("go1.22.3", "go1.21.0
// X:boringcrypto", "go1.20", "go1.21rc2") into the SemVer form of the Go
// ecosystem's "stdlib" package in OSV ("1.22.3", "1.21.0", "1.20.0",
// "1.21.0-rc.2"). Development toolchains have none.
func StdlibVersion(goVersion string) (string, bool) {
	v, _, _ := strings.Cut(goVersion, " ")
	v, ok := strings.CutPrefix(v, "go")
	if !ok || v == "" || v[0] < '0' || v[0] > '9' {
		return "", false
	}
	pre := ""
	for _, p := range []string{"rc", "beta"} {
		if i := strings.Index(v, p); i > 0 {
			v, pre = v[:i], "-"+p+"."+v[i+len(p):]
			break
		}
	}
	if strings.Count(v, ".") == 1 {
		v += ".0"
	}
	return v + pre, true
}

func newPackage(name, version, path string, meta map[string]string) index.Package {
	ns, n := langutil.SplitLast(name)
	return index.Package{
		Type:      index.TypeGoBinary,
		Ecosystem: "Go",
		Name:      name,
		Version:   version,
		PURL:      langutil.PURL("golang", ns, n, version),
		Path:      path,
		Metadata:  meta,
	}
}
