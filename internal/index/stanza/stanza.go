// Package stanza reads the text databases of OS package managers (dpkg's
// status file, apk's installed file): records of one-line fields,
// separated by blank lines. What a field line says is the caller's
// business; this package finds the records and bounds the lines.
package stanza

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// Read calls field for each non-blank line of r, with its 1-based line
// number, and end after the last line of each record: at the blank line
// that closes it, or at the end of r. A line holding only white space is
// blank; runs of blank lines make no empty records. The line passed to
// field is valid only during the call. A line that does not fit in
// maxLine bytes with its line end is an error naming it. An error from field or end stops the reading and
// is returned as it is.
func Read(r io.Reader, maxLine int, field func(n int, line []byte) error, end func() error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(64<<10, maxLine)), maxLine)
	n, open := 0, false
	for sc.Scan() {
		n++
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			if open {
				open = false
				if err := end(); err != nil {
					return err
				}
			}
			continue
		}
		open = true
		if err := field(n, b); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	if open {
		return end()
	}
	return nil
}
