-- reelbox schema version 2: media items, their full-text index, and resumable uploads.
-- Times are Unix seconds, UTC. Bytes live in the blob store, named by `sha256`.

CREATE TABLE media_items (
    id                INTEGER PRIMARY KEY,
    category_id       INTEGER NOT NULL REFERENCES categories(id) ON DELETE RESTRICT,
    owner_id          INTEGER REFERENCES users(id) ON DELETE SET NULL,
    title             TEXT    NOT NULL,
    description       TEXT    NOT NULL DEFAULT '',
    tags              TEXT    NOT NULL DEFAULT '',
    original_filename TEXT    NOT NULL,
    -- Unknown while a resumable upload has not sent its first bytes.
    kind              TEXT    CHECK (kind IS NULL OR kind IN ('video', 'audio', 'image', 'document')),
    mime              TEXT,
    size              INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
    -- 64 lowercase hex digits; NULL until the bytes are stored and verified.
    sha256            TEXT    CHECK (sha256 IS NULL OR length(sha256) = 64),
    status            TEXT    NOT NULL
                      CHECK (status IN ('uploading', 'processing', 'ready', 'failed', 'recycled', 'archived')),
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    recycled_at       INTEGER,
    archived_at       INTEGER,
    CHECK (status IN ('uploading', 'failed') OR (sha256 IS NOT NULL AND kind IS NOT NULL))
);
CREATE INDEX media_items_by_category ON media_items(category_id, status, created_at);
CREATE INDEX media_items_by_owner ON media_items(owner_id);
CREATE INDEX media_items_by_sha256 ON media_items(sha256);

-- Full-text search over what people type; kept in step with media_items by the triggers.
CREATE VIRTUAL TABLE media_search USING fts5(
    title, description, tags,
    content = 'media_items', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER media_items_search_insert AFTER INSERT ON media_items
BEGIN
    INSERT INTO media_search(rowid, title, description, tags)
    VALUES (new.id, new.title, new.description, new.tags);
END;
CREATE TRIGGER media_items_search_delete AFTER DELETE ON media_items
BEGIN
    INSERT INTO media_search(media_search, rowid, title, description, tags)
    VALUES ('delete', old.id, old.title, old.description, old.tags);
END;
CREATE TRIGGER media_items_search_update AFTER UPDATE OF title, description, tags ON media_items
BEGIN
    INSERT INTO media_search(media_search, rowid, title, description, tags)
    VALUES ('delete', old.id, old.title, old.description, old.tags);
    INSERT INTO media_search(rowid, title, description, tags)
    VALUES (new.id, new.title, new.description, new.tags);
END;

-- tus uploads in progress. The partial file is `<data>/uploads/<partial_name>`; `received` is
-- the offset last made durable (fsynced), so a restart resumes from there.
CREATE TABLE uploads (
    id              TEXT    PRIMARY KEY,
    media_id        INTEGER NOT NULL UNIQUE REFERENCES media_items(id) ON DELETE CASCADE,
    owner_id        INTEGER REFERENCES users(id) ON DELETE CASCADE,
    length          INTEGER NOT NULL CHECK (length >= 0),
    received        INTEGER NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= length),
    expected_sha256 TEXT    NOT NULL CHECK (length(expected_sha256) = 64),
    metadata        TEXT    NOT NULL DEFAULT '{}',
    partial_name    TEXT    NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX uploads_by_expiry ON uploads(expires_at);
