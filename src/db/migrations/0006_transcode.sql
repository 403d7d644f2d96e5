-- reelbox schema: the transcoder — its durable job queue, what ffprobe found in each original,
-- and the renditions published under <data>/media/<id>/. Times are Unix seconds, UTC.

-- One row per (item, kind): nothing can be queued or run twice. A worker claims a job by
-- writing its id and a heartbeat; a job whose heartbeat is older than the stale limit is put
-- back in the queue. `run_after` delays retries (exponential backoff).
CREATE TABLE transcode_jobs (
    id           INTEGER PRIMARY KEY,
    media_id     INTEGER NOT NULL REFERENCES media_items(id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL CHECK (kind IN ('ladder')),
    state        TEXT    NOT NULL CHECK (state IN ('waiting', 'queued', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    run_after    INTEGER NOT NULL,
    worker       TEXT,
    heartbeat_at INTEGER,
    progress     INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    eta_seconds  INTEGER,
    -- For people: why it failed, or why it waits.
    error        TEXT,
    -- For the log and administrators: ffmpeg's last lines.
    detail       TEXT    NOT NULL DEFAULT '',
    -- The source's own rung was packaged without re-encoding.
    remuxed      INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    UNIQUE (media_id, kind)
);
CREATE INDEX transcode_jobs_by_state ON transcode_jobs(state, run_after);

-- What ffprobe says about an original.
CREATE TABLE media_probes (
    media_id         INTEGER PRIMARY KEY REFERENCES media_items(id) ON DELETE CASCADE,
    format_name      TEXT    NOT NULL DEFAULT '',
    duration_seconds REAL,
    bit_rate         INTEGER,
    video_codec      TEXT,
    width            INTEGER,
    height           INTEGER,
    -- Degrees clockwise the picture must be turned for display (0, 90, 180, 270).
    rotation         INTEGER NOT NULL DEFAULT 0,
    frame_rate       REAL,
    variable_frame_rate INTEGER NOT NULL DEFAULT 0,
    pix_fmt          TEXT,
    audio_codec      TEXT,
    audio_channels   INTEGER,
    audio_sample_rate INTEGER,
    -- Every stream, as a JSON array of {index, type, codec, ...}.
    streams          TEXT    NOT NULL DEFAULT '[]',
    probed_at        INTEGER NOT NULL
);

-- Complete HLS rungs moved into <data>/media/<id>/hls/<name>/ and listed in master.m3u8.
CREATE TABLE media_rungs (
    media_id     INTEGER NOT NULL REFERENCES media_items(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL CHECK (name IN ('1080p', '720p', '480p', '360p', '240p', 'audio')),
    width        INTEGER NOT NULL CHECK (width >= 0),
    height       INTEGER NOT NULL CHECK (height >= 0),
    bandwidth    INTEGER NOT NULL CHECK (bandwidth >= 0),
    codecs       TEXT    NOT NULL DEFAULT '',
    remuxed      INTEGER NOT NULL DEFAULT 0,
    published_at INTEGER NOT NULL,
    PRIMARY KEY (media_id, name)
) WITHOUT ROWID;

-- Other published files: download.mp4 / download.m4a, poster.jpg, sprite (jpg + vtt).
CREATE TABLE media_assets (
    media_id     INTEGER NOT NULL REFERENCES media_items(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL CHECK (name IN ('download.mp4', 'download.m4a', 'poster.jpg', 'sprite')),
    published_at INTEGER NOT NULL,
    PRIMARY KEY (media_id, name)
) WITHOUT ROWID;
