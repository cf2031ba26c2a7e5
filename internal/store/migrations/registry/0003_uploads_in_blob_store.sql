-- Upload sessions live with their bytes in the blob store (an owner file
-- beside the data): recording them here cost a durable commit per blob
-- pushed for nothing the blob store does not already know.
DROP TABLE registry_uploads;
