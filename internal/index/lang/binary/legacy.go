package binary

import (
	"bytes"
	"encoding/binary"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/golang"
)

// Go before 1.18 wrote a build information header whose version and module
// strings are pointers to string headers elsewhere in the binary. In an ELF
// file, the string headers lie after the build information section (in
// .noptrdata or .data), and the bytes they point at lie before it (in
// .rodata), which the stream has already passed. So, while scanning, the
// scanner remembers the module information text (found by its sentinels)
// and every "go1." string with its file offset; when it meets an old
// header it reads ahead to the version's string header and looks the
// version up at the offset it points to. Addresses are mapped to file
// offsets with the program headers from the start of the file.

// maxHead is how much of the file start is kept for the program headers.
const maxHead = 16 << 10

// maxVersions bounds the "go1." strings remembered.
const maxVersions = 1024

// maxReadAhead bounds the read ahead to the version's string header.
const maxReadAhead = 32 << 20

// legacy is what the scanner remembers for old build information.
type legacy struct {
	head     []byte
	modinfo  string
	versions map[int64]string
}

// collect remembers the module information and the "go1." strings of the
// window buf (which starts at file offset base).
func (s *scanner) collect() error {
	if s.old.versions == nil {
		s.old.versions = make(map[int64]string)
	}
	b := s.buf
	for i := 0; len(s.old.versions) < maxVersions; {
		j := bytes.Index(b[i:], []byte("go1."))
		if j < 0 {
			break
		}
		i += j
		end := i + 4
		for end < len(b) && end-i < 32 && isVersionByte(b[end]) {
			end++
		}
		s.old.versions[s.base+int64(i)] = string(b[i:end])
		i = end
	}
	if s.old.modinfo != "" {
		return nil
	}
	i := bytes.Index(b, []byte(golang.ModinfoStart))
	if i < 0 {
		return nil
	}
	for {
		j := bytes.Index(s.buf[i+len(golang.ModinfoStart):], []byte(golang.ModinfoEnd))
		if j >= 0 {
			end := i + len(golang.ModinfoStart) + j + len(golang.ModinfoEnd)
			s.old.modinfo = string(s.buf[i:end])
			return nil
		}
		if s.eof || len(s.buf)-i > golang.MaxBlock {
			return nil
		}
		if err := s.fill(len(s.buf) + chunkSize); err != nil {
			return err
		}
	}
}

func isVersionByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '.' || 'a' <= c && c <= 'z'
}

// oldBlock reads the build information of a binary from Go before 1.18
// whose header is at buf[at].
func (s *scanner) oldBlock(at int, path string) ([]index.Package, error) {
	hdr := s.buf[at:]
	ptrSize := int(hdr[len(golang.Magic)])
	var bo binary.ByteOrder = binary.LittleEndian
	if hdr[len(golang.Magic)+1]&1 != 0 {
		bo = binary.BigEndian
	}
	if len(hdr) < 16+2*ptrSize {
		return nil, errNotGo
	}
	ptr := func(b []byte) uint64 {
		if ptrSize == 4 {
			return uint64(bo.Uint32(b))
		}
		return bo.Uint64(b)
	}
	version := ""
	if off, ok := s.fileOffset(ptr(hdr[16:])); ok {
		// The version's string header {data, len}.
		if h, err := s.readAt(off, 2*ptrSize); err == nil {
			data, n := ptr(h), ptr(h[ptrSize:])
			if voff, ok := s.fileOffset(data); ok {
				if v := s.old.versions[voff]; n <= uint64(len(v)) && n > 0 {
					version = v[:n]
				}
			}
		}
	}
	if version == "" && s.old.modinfo == "" {
		return nil, golang.ErrNotInline
	}
	return golang.Packages(version, s.old.modinfo, path)
}

// readAt returns n bytes at file offset off, which must not be behind the
// window; the stream is read ahead as needed, within maxReadAhead.
func (s *scanner) readAt(off int64, n int) ([]byte, error) {
	rel := off - s.base
	if rel < 0 || rel+int64(n) > int64(len(s.buf))+maxReadAhead {
		return nil, errNotGo
	}
	if err := s.fill(int(rel) + n); err != nil {
		return nil, err
	}
	if int(rel)+n > len(s.buf) {
		return nil, errNotGo
	}
	return s.buf[rel : int(rel)+n], nil
}

// fileOffset maps a virtual address to a file offset with the ELF program
// headers (PT_LOAD segments). Other formats are not mapped.
func (s *scanner) fileOffset(addr uint64) (int64, bool) {
	h := s.old.head
	if len(h) < 52 || string(h[:4]) != "\x7fELF" {
		return 0, false
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if h[5] == 2 {
		bo = binary.BigEndian
	}
	is64 := h[4] == 2
	var phoff uint64
	var phentsize, phnum int
	if is64 {
		if len(h) < 64 {
			return 0, false
		}
		phoff, phentsize, phnum = bo.Uint64(h[32:]), int(bo.Uint16(h[54:])), int(bo.Uint16(h[56:]))
	} else {
		phoff, phentsize, phnum = uint64(bo.Uint32(h[28:])), int(bo.Uint16(h[42:])), int(bo.Uint16(h[44:]))
	}
	for i := 0; i < phnum; i++ {
		start := phoff + uint64(i*phentsize)
		if phentsize < 32 || start+uint64(phentsize) > uint64(len(h)) {
			return 0, false
		}
		p := h[start : start+uint64(phentsize)]
		if bo.Uint32(p) != 1 { // PT_LOAD
			continue
		}
		var off, vaddr, filesz uint64
		if is64 {
			if len(p) < 56 {
				return 0, false
			}
			off, vaddr, filesz = bo.Uint64(p[8:]), bo.Uint64(p[16:]), bo.Uint64(p[32:])
		} else {
			off, vaddr, filesz = uint64(bo.Uint32(p[4:])), uint64(bo.Uint32(p[8:])), uint64(bo.Uint32(p[16:]))
		}
		if addr >= vaddr && addr-vaddr < filesz && off+(addr-vaddr) < 1<<62 {
			return int64(off + (addr - vaddr)), true
		}
	}
	return 0, false
}

// keepHead copies the start of the file for fileOffset.
func (s *scanner) keepHead() {
	s.old.head = bytes.Clone(s.buf[:min(len(s.buf), maxHead)])
}
