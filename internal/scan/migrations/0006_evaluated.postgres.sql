-- When an image's findings were last evaluated: by a scan that stored its
-- findings, or by a re-evaluation that re-matched the packages a
-- vulnerability-data change touched. An open finding was observed by that
-- evaluation even when its row was not rewritten (re-evaluation leaves
-- the rows of unchanged findings alone), so its lastObservedAt is the
-- later of its row's and this.
ALTER TABLE scan_scans ADD COLUMN evaluated_at BIGINT NOT NULL DEFAULT 0;
UPDATE scan_scans SET evaluated_at = completed_at WHERE status IN ('ACTIVE', 'COMPLETE');
