-- reelbox schema: renditions — files derived from an item's original (thumbnails now; HLS,
-- posters and progressive MP4 with the transcoder). Their bytes are blobs in the store like
-- originals, so replication, backups and the scrub treat them the same way; the purge job must
-- count `renditions.sha256` as a reference before it removes a blob.

CREATE TABLE renditions (
    media_id   INTEGER NOT NULL REFERENCES media_items(id) ON DELETE CASCADE,
    -- What it is, e.g. 'thumb-320', 'thumb-960'.
    name       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL CHECK (length(sha256) = 64),
    mime       TEXT    NOT NULL,
    width      INTEGER NOT NULL CHECK (width >= 0),
    height     INTEGER NOT NULL CHECK (height >= 0),
    size       INTEGER NOT NULL CHECK (size >= 0),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (media_id, name)
) WITHOUT ROWID;
CREATE INDEX renditions_by_sha256 ON renditions(sha256);
