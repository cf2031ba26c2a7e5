package java

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
)

// pomProperties is what Maven writes into META-INF/maven/G/A/pom.properties.
type pomProperties struct {
	groupID, artifactID, version string
	path                         string
}

func (p pomProperties) valid() bool {
	return p.groupID != "" && p.artifactID != "" && p.version != "" &&
		!strings.Contains(p.groupID+p.artifactID+p.version, "${")
}

// parsePomProperties reads the Java properties lines Drydock needs
// ("key=value" or "key: value", '#' and '!' comments).
func parsePomProperties(b []byte) pomProperties {
	var p pomProperties
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' || s[0] == '!' {
			continue
		}
		i := strings.IndexAny(s, "=:")
		if i < 0 {
			continue
		}
		k, v := strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
		switch k {
		case "groupId":
			p.groupID = v
		case "artifactId":
			p.artifactID = v
		case "version":
			p.version = v
		}
	}
	return p
}

// parseManifest reads the main section of a MANIFEST.MF: "Name: value"
// lines, where a line starting with one space continues the previous value
// (the format wraps lines at 72 bytes), ending at the first blank line.
func parseManifest(b []byte) map[string]string {
	m := make(map[string]string, 16)
	var key string
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' {
			if key != "" {
				m[key] += string(line[1:])
			}
			continue
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			key = ""
			continue
		}
		key = string(k)
		m[key] = strings.TrimPrefix(string(v), " ")
	}
	for k, v := range m {
		m[k] = strings.TrimSpace(v)
	}
	return m
}

// entryCount returns the number of entries an archive's end of central
// directory record declares (zip64 included), so an archive whose directory
// alone would exhaust memory is refused before it is loaded.
func entryCount(data []byte) (uint64, error) {
	const eocdLen = 22
	if len(data) < eocdLen {
		return 0, errors.New("not a zip archive: too short")
	}
	lo := max(0, len(data)-eocdLen-0xFFFF)
	i := bytes.LastIndex(data[lo:], []byte("PK\x05\x06"))
	if i < 0 {
		return 0, errors.New("not a zip archive: no end of central directory")
	}
	i += lo
	if len(data)-i < eocdLen {
		return 0, errors.New("truncated end of central directory")
	}
	n := uint64(binary.LittleEndian.Uint16(data[i+10:]))
	if n != 0xFFFF {
		return n, nil
	}
	// zip64: the locator sits just before the record and points at the
	// zip64 end of central directory.
	loc := i - 20
	if loc < 0 || string(data[loc:loc+4]) != "PK\x06\x07" {
		return n, nil
	}
	off := binary.LittleEndian.Uint64(data[loc+8:])
	if len(data) < 56 || off > uint64(len(data)-56) || string(data[off:off+4]) != "PK\x06\x06" {
		return 0, errors.New("bad zip64 end of central directory")
	}
	return binary.LittleEndian.Uint64(data[off+32:]), nil
}
