package rpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Header tags Drydock reads (rpmtag.h).
const (
	tagName            = 1000
	tagVersion         = 1001
	tagRelease         = 1002
	tagEpoch           = 1003
	tagVendor          = 1011
	tagLicense         = 1014
	tagArch            = 1022
	tagSourceRPM       = 1044
	tagModularityLabel = 5096
)

// Header data types (rpmTagType_e).
const (
	typeInt32       = 4
	typeString      = 6
	typeStringArray = 8
	typeI18NString  = 9
)

const (
	entryInfoSize = 16
	// maxHeaderBytes and maxHeaderTags are rpm's own sanity limits on a
	// header blob.
	maxHeaderBytes = 256 << 20
	maxHeaderTags  = 0xffff
)

// Header is the part of an installed package's RPM header that
// vulnerability matching needs.
type Header struct {
	Name       string
	Epoch      *int
	Version    string
	Release    string
	Arch       string
	SourceRPM  string
	License    string
	Vendor     string
	Modularity string
}

var errShortHeader = errors.New("header blob too short")

// ParseHeader reads a header blob as rpm stores it in its databases: the
// big-endian index length and data length, the index entries (tag, type,
// offset, count), then the data store. Unknown tags are skipped; every
// offset is bounds-checked.
//
// go-rpmdb has a header parser, but it is unexported and reachable only
// through its Berkeley DB reader, so the NDB and SQLite readers here could
// not share it; this one reads only the tags above.
func ParseHeader(blob []byte) (*Header, error) {
	if len(blob) < 8 {
		return nil, errShortHeader
	}
	il := binary.BigEndian.Uint32(blob[0:4])
	dl := binary.BigEndian.Uint32(blob[4:8])
	if il == 0 || il > maxHeaderTags || dl > maxHeaderBytes {
		return nil, fmt.Errorf("header blob has implausible sizes (%d tags, %d bytes)", il, dl)
	}
	dataStart := 8 + uint64(il)*entryInfoSize
	if dataStart+uint64(dl) > uint64(len(blob)) {
		return nil, fmt.Errorf("header blob of %d bytes is shorter than its %d tags and %d data bytes", len(blob), il, dl)
	}
	data := blob[dataStart : dataStart+uint64(dl)]
	h := &Header{}
	for i := uint32(0); i < il; i++ {
		e := blob[8+i*entryInfoSize:]
		tag := binary.BigEndian.Uint32(e[0:4])
		typ := binary.BigEndian.Uint32(e[4:8])
		off := binary.BigEndian.Uint32(e[8:12])
		count := binary.BigEndian.Uint32(e[12:16])
		var dst *string
		switch tag {
		case tagName:
			dst = &h.Name
		case tagVersion:
			dst = &h.Version
		case tagRelease:
			dst = &h.Release
		case tagArch:
			dst = &h.Arch
		case tagSourceRPM:
			dst = &h.SourceRPM
		case tagLicense:
			dst = &h.License
		case tagVendor:
			dst = &h.Vendor
		case tagModularityLabel:
			dst = &h.Modularity
		case tagEpoch:
			if typ != typeInt32 || count < 1 {
				return nil, fmt.Errorf("epoch tag has type %d", typ)
			}
			if uint64(off)+4 > uint64(len(data)) {
				return nil, errors.New("epoch tag points outside the header")
			}
			n := int(int32(binary.BigEndian.Uint32(data[off : off+4])))
			h.Epoch = &n
			continue
		default:
			continue
		}
		if typ != typeString && typ != typeI18NString && typ != typeStringArray {
			return nil, fmt.Errorf("tag %d has type %d, not a string", tag, typ)
		}
		if uint64(off) >= uint64(len(data)) {
			return nil, fmt.Errorf("tag %d points outside the header", tag)
		}
		end := bytes.IndexByte(data[off:], 0)
		if end < 0 {
			return nil, fmt.Errorf("tag %d is not NUL-terminated", tag)
		}
		*dst = string(data[off : off+uint32(end)])
	}
	if h.Name == "" || h.Version == "" {
		return nil, errors.New("header has no name or version")
	}
	for _, s := range []*string{&h.SourceRPM, &h.License, &h.Vendor, &h.Modularity} {
		if *s == "(none)" {
			*s = ""
		}
	}
	return h, nil
}
