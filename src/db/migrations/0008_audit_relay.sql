-- reelbox schema: audit events a replica relays to its primary. A replica cannot write its own
-- copy of the database, so it numbers the read-side events it sees (playback, downloads,
-- exports) and sends them here; the primary records each number once per node, so a batch
-- resent after a lost answer is not counted twice. The row replicates back, which tells a
-- promoted replica which of its queued events its old primary already recorded.

CREATE TABLE audit_relay (
    node TEXT    PRIMARY KEY CHECK (length(node) BETWEEN 8 AND 64),
    seq  INTEGER NOT NULL CHECK (seq >= 0)
);
