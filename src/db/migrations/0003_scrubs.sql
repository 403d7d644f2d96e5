-- reelbox schema: integrity scrubs (`reelbox verify` and the weekly job) and the damage they found.
-- Times are Unix seconds, UTC.

-- One row per scrub. `finished_at` stays NULL when a scrub was interrupted; its start still
-- counts for the weekly schedule, so a crash loop cannot turn into back-to-back scrubs.
CREATE TABLE scrubs (
    id           INTEGER PRIMARY KEY,
    trigger      TEXT    NOT NULL CHECK (trigger IN ('command', 'schedule')),
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    blobs        INTEGER NOT NULL DEFAULT 0 CHECK (blobs >= 0),
    bytes        INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    missing      INTEGER NOT NULL DEFAULT 0 CHECK (missing >= 0),
    corrupt      INTEGER NOT NULL DEFAULT 0 CHECK (corrupt >= 0),
    unreadable   INTEGER NOT NULL DEFAULT 0 CHECK (unreadable >= 0),
    -- Items marked damaged by this scrub.
    items_marked INTEGER NOT NULL DEFAULT 0 CHECK (items_marked >= 0)
);
CREATE INDEX scrubs_by_start ON scrubs(started_at);

-- Items whose original is missing or does not match its hash. Kept apart from the item's
-- status so that the item keeps its place in the lifecycle (ready, recycled, archived...) and
-- the mark goes away by itself once a scrub finds the blob intact again (restored from backup).
CREATE TABLE media_damage (
    media_id    INTEGER PRIMARY KEY REFERENCES media_items(id) ON DELETE CASCADE,
    problem     TEXT    NOT NULL CHECK (problem IN ('missing', 'corrupt', 'unreadable')),
    sha256      TEXT    NOT NULL CHECK (length(sha256) = 64),
    detail      TEXT    NOT NULL DEFAULT '',
    detected_at INTEGER NOT NULL,
    scrub_id    INTEGER NOT NULL REFERENCES scrubs(id) ON DELETE CASCADE
);
