// Package epss reads FIRST's Exploit Prediction Scoring System daily file:
// a comment line "#model_version:v2023.03.01,score_date:2025-02-20T00:00:00+0000",
// a header "cve,epss,percentile", then one row per CVE. The live file is
// gzip-compressed; the fetch client decompresses it.
package epss

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

// DefaultURL is the current scores file as FIRST publishes it.
const DefaultURL = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"

var cveID = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

// Parse reads an EPSS file. The metadata line is optional (older files
// lack it); the header must name the cve, epss and percentile columns. A
// row with a bad CVE id or a score outside [0, 1] is rejected, naming its
// line; the rest is kept. feed names the feed in rejected records.
func Parse(r io.Reader, feed string) (*vulndb.FeedData, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var model string
	var date time.Time
	offset := 0 // lines before the CSV reader's first line
	if b, err := br.Peek(1); err == nil && b[0] == '#' {
		offset = 1
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("epss: metadata line: %w", err)
		}
		model, date, err = parseMeta(strings.TrimSpace(line))
		if err != nil {
			return nil, err
		}
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("epss: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	ci, ok1 := col["cve"]
	ei, ok2 := col["epss"]
	pi, ok3 := col["percentile"]
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("epss: header %q lacks cve, epss and percentile columns", strings.Join(header, ","))
	}
	width := max(ci, ei, pi) + 1
	out := &vulndb.FeedData{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && !errors.Is(err, io.ErrUnexpectedEOF) {
				out.Rejected = append(out.Rejected, vulndb.RecordError{Feed: feed, Record: fmt.Sprintf("line %d", pe.Line+offset), Err: err})
				continue
			}
			return nil, fmt.Errorf("epss: %w", err)
		}
		line, _ := cr.FieldPos(0)
		line += offset
		if len(rec) < width {
			out.Rejected = append(out.Rejected, vulndb.RecordError{Feed: feed, Record: fmt.Sprintf("line %d", line), Err: fmt.Errorf("%d fields, want %d", len(rec), width)})
			continue
		}
		e, err := parseRow(rec[ci], rec[ei], rec[pi])
		if err != nil {
			out.Rejected = append(out.Rejected, vulndb.RecordError{Feed: feed, Record: fmt.Sprintf("line %d %s", line, rec[ci]), Err: err})
			continue
		}
		e.Date, e.Model = date, model
		out.Enrichment = append(out.Enrichment, vulndb.Enrichment{CVE: rec[ci], EPSS: e})
	}
	if len(out.Enrichment) == 0 && len(out.Rejected) == 0 {
		return nil, errors.New("epss: no scores")
	}
	return out, nil
}

func parseRow(cve, score, pct string) (*vulndb.EPSS, error) {
	if !cveID.MatchString(cve) {
		return nil, fmt.Errorf("%q is not a CVE id", cve)
	}
	s, err := parseProbability(score)
	if err != nil {
		return nil, fmt.Errorf("epss: %w", err)
	}
	p, err := parseProbability(pct)
	if err != nil {
		return nil, fmt.Errorf("percentile: %w", err)
	}
	return &vulndb.EPSS{Score: s, Percentile: p}, nil
}

func parseProbability(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(f) || f < 0 || f > 1 {
		return 0, fmt.Errorf("%s is outside [0, 1]", s)
	}
	return f, nil
}

// parseMeta reads "#model_version:v2023.03.01,score_date:2025-02-20T00:00:00+0000".
func parseMeta(line string) (string, time.Time, error) {
	var model string
	var date time.Time
	for _, kv := range strings.Split(strings.TrimPrefix(line, "#"), ",") {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model_version":
			model = strings.TrimSpace(v)
		case "score_date":
			var err error
			date, err = parseDate(strings.TrimSpace(v))
			if err != nil {
				return "", time.Time{}, fmt.Errorf("epss: score_date: %w", err)
			}
		}
	}
	return model, date, nil
}

func parseDate(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05-0700", time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse %q", s)
}

// New returns the feed of the EPSS scores at url (DefaultURL for FIRST's
// current file; a file URL or path for a local copy, gzip or not), named
// name.
func New(name, url string, client *fetch.Client) *fetch.DocumentFeed {
	return fetch.NewDocumentFeed(name, url, client, Parse)
}
