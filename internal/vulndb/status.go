package vulndb

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DBStatus is the state of the database as a whole.
type DBStatus struct {
	Generation  int64          `json:"generation"`
	GeneratedAt time.Time      `json:"generated_at,omitzero"`
	Advisories  int            `json:"advisories"`
	Withdrawn   int            `json:"withdrawn"`
	Enrichment  int            `json:"enrichment_cves"`
	Keys        int            `json:"package_keys"`
	Sources     []SourceStatus `json:"sources"`
}

// Status reads the database's status.
func (db *DB) Status(ctx context.Context) (*DBStatus, error) {
	s := &DBStatus{}
	var created *int64
	err := db.st.QueryRowContext(ctx, `SELECT s.generation, g.created_at,
		(SELECT COUNT(*) FROM vulndb_advisories), (SELECT COUNT(*) FROM vulndb_advisories WHERE withdrawn = 1),
		(SELECT COUNT(DISTINCT cve) FROM vulndb_enrichment),
		(SELECT COUNT(*) FROM (SELECT DISTINCT ecosystem, package FROM vulndb_affected) k)
		FROM vulndb_state s LEFT JOIN vulndb_generations g ON g.id = s.generation WHERE s.id = 1`).
		Scan(&s.Generation, &created, &s.Advisories, &s.Withdrawn, &s.Enrichment, &s.Keys)
	if err != nil {
		return nil, fmt.Errorf("vulndb: status: %w", err)
	}
	if created != nil {
		s.GeneratedAt = time.UnixMilli(*created).UTC()
	}
	if s.Sources, err = db.Sources(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Collector exports the database's state as Prometheus metrics, read from
// the store at each scrape: the generation and its age, the advisories,
// and per source the advisories, rejected records, last success (and its
// age: the staleness) and whether the last attempt failed.
type Collector struct {
	db  *DB
	now func() time.Time

	generation, generatedAt, advisories                        *prometheus.Desc
	srcAdvisories, srcRejected, srcSuccess, srcAge, srcFailing *prometheus.Desc
}

// NewCollector returns the metrics collector of db.
func NewCollector(db *DB) *Collector {
	src := []string{"source"}
	return &Collector{
		db:            db,
		now:           time.Now,
		generation:    prometheus.NewDesc("drydock_vulndb_generation", "Current generation of the vulnerability database.", nil, nil),
		generatedAt:   prometheus.NewDesc("drydock_vulndb_generation_timestamp_seconds", "When the current generation was made.", nil, nil),
		advisories:    prometheus.NewDesc("drydock_vulndb_advisories", "Advisories in the current generation.", nil, nil),
		srcAdvisories: prometheus.NewDesc("drydock_vulndb_source_advisories", "Advisories held from a source.", src, nil),
		srcRejected:   prometheus.NewDesc("drydock_vulndb_source_rejected_records", "Records of a source's last fetch that failed to parse or validate.", src, nil),
		srcSuccess:    prometheus.NewDesc("drydock_vulndb_source_last_success_timestamp_seconds", "Last successful sync of a source.", src, nil),
		srcAge:        prometheus.NewDesc("drydock_vulndb_source_staleness_seconds", "Time since a source's last successful sync.", src, nil),
		srcFailing:    prometheus.NewDesc("drydock_vulndb_source_failing", "1 when a source's last sync attempt failed.", src, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.generation, c.generatedAt, c.advisories, c.srcAdvisories, c.srcRejected, c.srcSuccess, c.srcAge, c.srcFailing} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.db.Status(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.generation, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.generation, prometheus.GaugeValue, float64(st.Generation))
	if !st.GeneratedAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.generatedAt, prometheus.GaugeValue, float64(st.GeneratedAt.UnixMilli())/1000)
	}
	ch <- prometheus.MustNewConstMetric(c.advisories, prometheus.GaugeValue, float64(st.Advisories))
	now := c.now()
	for _, s := range st.Sources {
		ch <- prometheus.MustNewConstMetric(c.srcAdvisories, prometheus.GaugeValue, float64(s.Advisories), s.Name)
		ch <- prometheus.MustNewConstMetric(c.srcRejected, prometheus.GaugeValue, float64(s.Rejected), s.Name)
		failing := 0.0
		if s.Failing() {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(c.srcFailing, prometheus.GaugeValue, failing, s.Name)
		if !s.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.srcSuccess, prometheus.GaugeValue, float64(s.LastSuccess.UnixMilli())/1000, s.Name)
			ch <- prometheus.MustNewConstMetric(c.srcAge, prometheus.GaugeValue, now.Sub(s.LastSuccess).Seconds(), s.Name)
		}
	}
}
