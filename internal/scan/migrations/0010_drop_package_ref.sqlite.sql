-- package_ref, the package part of finding_key, was kept for the package
-- index that 0007 dropped: nothing reads it, and it is derivable.
ALTER TABLE scan_findings DROP COLUMN package_ref;
