-- A run of events written together (a scan's or a re-evaluation batch's
-- findings) shares one row: packed holds their details, compressed (see
-- outbox.go), and detail is empty. Rows of one event keep packed NULL.
ALTER TABLE scan_outbox ADD COLUMN packed BLOB;
