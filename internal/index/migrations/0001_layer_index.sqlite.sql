-- One row per (layer digest, cataloger set): the layer's index result,
-- zstd-compressed JSON. A new cataloger set adds rows beside the old ones.
CREATE TABLE index_layers (
    digest     TEXT    NOT NULL,
    catalogers TEXT    NOT NULL,
    result     BLOB    NOT NULL,
    packages   INTEGER NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (digest, catalogers)
);
