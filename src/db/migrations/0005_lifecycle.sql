-- reelbox schema: the recycle bin, the archive and the purge.

-- What a recycled item was before (`processing` or `ready`), so restoring puts it back exactly.
ALTER TABLE media_items ADD COLUMN status_before_recycle TEXT
    CHECK (status_before_recycle IS NULL OR status_before_recycle IN ('processing', 'ready'));

-- The purge looks for archived items past retention; the recycle bin lists by status.
CREATE INDEX media_items_by_status ON media_items(status, archived_at, recycled_at);

-- Blobs whose last item was purged. A blob leaves this queue when it is removed from the store,
-- or when an item refers to it again; it stays while an upload may have just been told the
-- content is already stored (see `library::lifecycle`). Survives restarts, so nothing leaks.
CREATE TABLE blob_removals (
    sha256    TEXT    PRIMARY KEY CHECK (length(sha256) = 64),
    queued_at INTEGER NOT NULL
) WITHOUT ROWID;
