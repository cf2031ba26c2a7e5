-- A run of events written together (a scan's or a re-evaluation batch's
-- findings) shares one row: packed holds their details, compressed (see
-- outbox.go), and detail is empty. Rows of one event keep packed NULL.
-- The value is compressed already: EXTERNAL keeps TOAST from trying again.
ALTER TABLE scan_outbox ADD COLUMN packed BYTEA;
ALTER TABLE scan_outbox ALTER COLUMN packed SET STORAGE EXTERNAL;
