-- The advisories that findings have ever been stored for, so that
-- re-evaluation looks up stored findings only for the advisories that
-- may have some: most advisories a change set adds are new, and looking
-- up their candidate findings one by one found nothing. reeval names the
-- re-evaluation run that stored the advisory's first findings, while only
-- that run has stored any; '' once anything else has (or the findings
-- predate this table). A row is never deleted: the table says "may have
-- findings", never "has none" wrongly.
CREATE TABLE scan_finding_advisories (
	advisory TEXT PRIMARY KEY,
	reeval TEXT NOT NULL
);
INSERT INTO scan_finding_advisories (advisory, reeval)
	SELECT DISTINCT split_part(finding_key, '|', 1), '' FROM scan_findings;
