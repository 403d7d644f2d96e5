-- reelbox schema: captions (WebVTT) of media items, one per language, and their full-text index;
-- playback positions (resume where you stopped).
-- The VTT text lives in the database rather than in the blob store: it is small (a lesson's
-- captions are tens of KB), it is replaced as a whole and must change in the same transaction
-- as its search index, and the database is replicated and backed up anyway.

CREATE TABLE captions (
    id         INTEGER PRIMARY KEY,
    media_id   INTEGER NOT NULL REFERENCES media_items(id) ON DELETE CASCADE,
    -- A BCP 47 language tag, normalised ("en", "pt-BR", "zh-Hant").
    lang       TEXT    NOT NULL CHECK (length(lang) BETWEEN 2 AND 35),
    label      TEXT    NOT NULL,
    vtt        TEXT    NOT NULL,
    -- The cue text alone (no timings or tags), for search.
    text       TEXT    NOT NULL,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (media_id, lang)
);

CREATE VIRTUAL TABLE caption_search USING fts5(
    text,
    content = 'captions', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER captions_search_insert AFTER INSERT ON captions
BEGIN
    INSERT INTO caption_search(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER captions_search_delete AFTER DELETE ON captions
BEGIN
    INSERT INTO caption_search(caption_search, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER captions_search_update AFTER UPDATE OF text ON captions
BEGIN
    INSERT INTO caption_search(caption_search, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO caption_search(rowid, text) VALUES (new.id, new.text);
END;

-- Where each person stopped watching each item, so the player resumes there.
CREATE TABLE playback_positions (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    media_id   INTEGER NOT NULL REFERENCES media_items(id) ON DELETE CASCADE,
    seconds    REAL    NOT NULL CHECK (seconds >= 0),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, media_id)
) WITHOUT ROWID;
CREATE INDEX playback_positions_by_media ON playback_positions(media_id);
