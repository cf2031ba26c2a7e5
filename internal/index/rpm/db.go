package rpm

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"testing/fstest"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
	"modernc.org/sqlite/vfs"
)

// Format is an on-disk rpm database format.
type Format string

// The three formats rpm has used.
const (
	// FormatBDB is Berkeley DB hash (rpm before 4.16; RHEL/CentOS 7 and 8,
	// Amazon Linux 2).
	FormatBDB Format = "bdb"
	// FormatNDB is rpm's own format (SUSE).
	FormatNDB Format = "ndb"
	// FormatSQLite is rpm 4.16 and later (RHEL 9, Fedora, Azure Linux).
	FormatSQLite Format = "sqlite"
)

// DetectFormat recognises a database from its first bytes.
func DetectFormat(b []byte) (Format, error) {
	switch {
	case bytes.HasPrefix(b, []byte("SQLite format 3\x00")):
		return FormatSQLite, nil
	case len(b) >= 4 && binary.LittleEndian.Uint32(b) == ndbHeaderMagic:
		return FormatNDB, nil
	case len(b) >= 16 && (binary.LittleEndian.Uint32(b[12:]) == bdbHashMagic || binary.BigEndian.Uint32(b[12:]) == bdbHashMagic):
		return FormatBDB, nil
	}
	return "", errors.New("not an rpm database (Berkeley DB hash, NDB or SQLite)")
}

// Blobs returns the header blobs of every installed package in an rpm
// database held in memory.
func Blobs(ctx context.Context, db []byte) ([][]byte, Format, error) {
	f, err := DetectFormat(db)
	if err != nil {
		return nil, "", err
	}
	var blobs [][]byte
	switch f {
	case FormatBDB:
		blobs, err = bdbBlobs(db)
	case FormatNDB:
		blobs, err = ndbBlobs(db)
	case FormatSQLite:
		blobs, err = sqliteBlobs(ctx, db)
	}
	return blobs, f, err
}

// Berkeley DB hash database (db_page.h). The file is written in the byte
// order of the machine that made it; the magic number tells which.
//
// go-rpmdb (v0.0.0-20210911072402, the only version available) reads this
// format, but only from a file path on disk, and only values stored on
// overflow pages; Drydock never extracts layer files to disk, so this
// reads the same structure from memory, inline values included.
const (
	bdbHashMagic     = 0x061561
	bdbPageHeader    = 26
	bdbPageHash      = 13 // P_HASH
	bdbPageUnsorted  = 2  // P_HASH_UNSORTED
	bdbPageOverflow  = 7  // P_OVERFLOW
	bdbItemKeyData   = 1  // H_KEYDATA
	bdbItemOffPage   = 3  // H_OFFPAGE
	bdbMaxOverflowPg = 1 << 20
)

func bdbBlobs(db []byte) ([][]byte, error) {
	var order binary.ByteOrder = binary.LittleEndian
	if binary.LittleEndian.Uint32(db[12:]) != bdbHashMagic {
		order = binary.BigEndian
	}
	if len(db) < 512 {
		return nil, errors.New("berkeley db: file shorter than its metadata page")
	}
	pageSize := order.Uint32(db[20:])
	lastPage := order.Uint32(db[32:])
	switch pageSize {
	case 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536:
	default:
		return nil, fmt.Errorf("berkeley db: page size %d", pageSize)
	}
	npages := uint64(len(db)) / uint64(pageSize)
	if uint64(lastPage) >= npages {
		return nil, fmt.Errorf("berkeley db: last page %d beyond the file's %d pages", lastPage, npages)
	}
	page := func(n uint32) []byte {
		off := uint64(n) * uint64(pageSize)
		return db[off : off+uint64(pageSize)]
	}
	var out [][]byte
	for pg := uint32(1); pg <= lastPage; pg++ {
		p := page(pg)
		typ := p[25]
		if typ != bdbPageHash && typ != bdbPageUnsorted {
			continue
		}
		entries := int(order.Uint16(p[20:]))
		if bdbPageHeader+2*entries > len(p) {
			return nil, fmt.Errorf("berkeley db: page %d claims %d entries", pg, entries)
		}
		offsets := make([]int, entries)
		for i := range offsets {
			offsets[i] = int(order.Uint16(p[bdbPageHeader+2*i:]))
			if offsets[i] >= len(p) || offsets[i] < bdbPageHeader+2*entries {
				return nil, fmt.Errorf("berkeley db: page %d item %d at offset %d", pg, i, offsets[i])
			}
		}
		// Items come in key/value pairs; each item runs to the start of the
		// previous one (items fill the page from its end).
		for i := 1; i < entries; i += 2 {
			start := offsets[i]
			end := len(p)
			if i > 0 {
				end = offsets[i-1]
			}
			if end <= start {
				return nil, fmt.Errorf("berkeley db: page %d item %d is empty", pg, i)
			}
			item := p[start:end]
			switch item[0] {
			case bdbItemKeyData:
				v := item[1:]
				if len(v) <= 8 {
					continue // rpm's record 0: the next header instance counter
				}
				out = append(out, append([]byte(nil), v...))
			case bdbItemOffPage:
				if len(item) < 12 {
					return nil, fmt.Errorf("berkeley db: page %d: short overflow reference", pg)
				}
				v, err := bdbOverflow(db, order, pageSize, order.Uint32(item[4:]), order.Uint32(item[8:]), npages)
				if err != nil {
					return nil, fmt.Errorf("berkeley db: page %d: %w", pg, err)
				}
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// bdbOverflow reads a value stored on a chain of overflow pages.
func bdbOverflow(db []byte, order binary.ByteOrder, pageSize, pg, total uint32, npages uint64) ([]byte, error) {
	// A value cannot be larger than the file holding it.
	if total > maxHeaderBytes || uint64(total) > uint64(len(db)) {
		return nil, fmt.Errorf("overflow value of %d bytes", total)
	}
	out := make([]byte, 0, total)
	for hops := 0; uint32(len(out)) < total; hops++ {
		if pg == 0 || uint64(pg) >= npages || hops > bdbMaxOverflowPg {
			return nil, fmt.Errorf("overflow chain broken at page %d", pg)
		}
		off := uint64(pg) * uint64(pageSize)
		p := db[off : off+uint64(pageSize)]
		if p[25] != bdbPageOverflow {
			return nil, fmt.Errorf("page %d in an overflow chain has type %d", pg, p[25])
		}
		used := uint32(order.Uint16(p[22:])) // hf_offset: bytes used on this page
		if bdbPageHeader+used > pageSize {
			return nil, fmt.Errorf("overflow page %d claims %d bytes", pg, used)
		}
		if rest := total - uint32(len(out)); used > rest {
			used = rest
		}
		out = append(out, p[bdbPageHeader:bdbPageHeader+used]...)
		pg = order.Uint32(p[16:]) // next_pgno
	}
	return out, nil
}

// NDB (rpm's lib/backend/ndb/rpmpkg.c): little-endian, a header, a table
// of 16-byte slots over the first pages, and blobs in 16-byte blocks.
const (
	ndbHeaderMagic  = 'R' | 'p'<<8 | 'm'<<16 | 'P'<<24
	ndbSlotMagic    = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	ndbBlobMagic    = 'B' | 'l'<<8 | 'b'<<16 | 'S'<<24
	ndbPageSize     = 4096
	ndbBlockSize    = 16
	ndbSlotSize     = 16
	ndbSlotsStart   = 2 // the file header takes the first two slot positions
	ndbBlobHeadSize = 16
)

func ndbBlobs(db []byte) ([][]byte, error) {
	if len(db) < 16 {
		return nil, errors.New("ndb: file too short")
	}
	slotPages := binary.LittleEndian.Uint32(db[12:])
	if slotPages == 0 || uint64(slotPages)*ndbPageSize > uint64(len(db)) {
		return nil, fmt.Errorf("ndb: %d slot pages in a file of %d bytes", slotPages, len(db))
	}
	nslots := int(slotPages)*ndbPageSize/ndbSlotSize - ndbSlotsStart
	var out [][]byte
	for i := 0; i < nslots; i++ {
		s := db[(ndbSlotsStart+i)*ndbSlotSize:]
		if binary.LittleEndian.Uint32(s) != ndbSlotMagic {
			return nil, fmt.Errorf("ndb: slot %d has a bad magic number", i)
		}
		pkgIdx := binary.LittleEndian.Uint32(s[4:])
		blkOff := uint64(binary.LittleEndian.Uint32(s[8:]))
		blkCnt := uint64(binary.LittleEndian.Uint32(s[12:]))
		if pkgIdx == 0 {
			continue // a free slot
		}
		start := blkOff * ndbBlockSize
		end := start + blkCnt*ndbBlockSize
		if blkOff == 0 || end > uint64(len(db)) || blkCnt*ndbBlockSize < ndbBlobHeadSize {
			return nil, fmt.Errorf("ndb: slot %d points outside the file", i)
		}
		b := db[start:end]
		if binary.LittleEndian.Uint32(b) != ndbBlobMagic || binary.LittleEndian.Uint32(b[4:]) != pkgIdx {
			return nil, fmt.Errorf("ndb: blob of package %d has a bad header", pkgIdx)
		}
		n := uint64(binary.LittleEndian.Uint32(b[12:]))
		if ndbBlobHeadSize+n > uint64(len(b)) {
			return nil, fmt.Errorf("ndb: blob of package %d is %d bytes in %d blocks", pkgIdx, n, blkCnt)
		}
		out = append(out, b[ndbBlobHeadSize:ndbBlobHeadSize+n])
	}
	return out, nil
}

// sqliteBlobs reads the Packages table of an rpmdb.sqlite held in memory,
// through a read-only SQLite VFS over it (nothing is written to disk).
func sqliteBlobs(ctx context.Context, db []byte) ([][]byte, error) {
	vname, fsys, err := vfs.New(fstest.MapFS{"rpmdb.sqlite": {Data: db, Mode: 0o444}})
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	defer fsys.Close()
	conn, err := sql.Open("sqlite", "file:rpmdb.sqlite?vfs="+vname+"&mode=ro&immutable=1")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	defer conn.Close()
	conn.SetMaxOpenConns(1)
	rows, err := conn.QueryContext(ctx, `SELECT blob FROM Packages`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return out, nil
}
