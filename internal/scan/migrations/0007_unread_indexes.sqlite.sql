-- Indexes of scan_findings that no query reads: every write of a finding
-- paid for them. Re-evaluation looks stored findings up by primary key
-- (the changed advisories' keys of the touched packages), not by package;
-- the APIs filter by vulnerability and by finding ARN after reading, not
-- in SQL. The finding id index was the dearest: its keys are hashes, so
-- each new finding landed on its own page of it, and with 10,000 stored
-- images it made a third of re-evaluation's write time.
DROP INDEX scan_findings_id;
DROP INDEX scan_findings_advisory;
DROP INDEX scan_findings_package;
