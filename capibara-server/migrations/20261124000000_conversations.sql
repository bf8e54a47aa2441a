-- Users, conversations, their messages and the files attached to them.
--
-- Portable SQL: this same file runs on SQLite and PostgreSQL. Ids are UUID v7 strings (TEXT),
-- integers are BIGINT, flags are BIGINT 0/1, and timestamps are TEXT in fixed-width UTC RFC 3339
-- with microseconds (2026-11-24T08:30:00.123456Z), which compare and sort like the instants they name.

CREATE TABLE users (
    id         TEXT NOT NULL PRIMARY KEY,
    -- NULL for users known by another credential; anonymous conversations have no user at all.
    email      TEXT UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE conversations (
    id            TEXT NOT NULL PRIMARY KEY,
    user_id       TEXT REFERENCES users (id),
    title         TEXT,
    -- The highest seq stored; appends bump it under a row lock, which serialises them.
    message_count BIGINT NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- A user's conversations, newest first; also keeps deleting a user from scanning every conversation.
CREATE INDEX conversations_by_user ON conversations (user_id, updated_at);

CREATE TABLE messages (
    id                TEXT NOT NULL PRIMARY KEY,
    conversation_id   TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- Position in the conversation, from 1, without gaps.
    seq               BIGINT NOT NULL CHECK (seq >= 1),
    role              TEXT NOT NULL,
    content           TEXT NOT NULL,
    -- The model's reasoning, never mixed into content.
    reasoning         TEXT,
    model             TEXT,
    prompt_tokens     BIGINT CHECK (prompt_tokens >= 0),
    completion_tokens BIGINT CHECK (completion_tokens >= 0),
    latency_ms        BIGINT CHECK (latency_ms >= 0),
    finish_reason     TEXT,
    -- 1 when the answer was interrupted and is incomplete.
    partial           BIGINT NOT NULL DEFAULT 0 CHECK (partial IN (0, 1)),
    -- A retried save carries the same key and is skipped.
    dedupe_key        TEXT UNIQUE,
    created_at        TEXT NOT NULL,
    -- Also the index for reading a conversation's newest messages.
    UNIQUE (conversation_id, seq)
);

CREATE TABLE uploads (
    id            TEXT NOT NULL PRIMARY KEY,
    message_id    TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    -- Order of the files within their message.
    position      BIGINT NOT NULL CHECK (position >= 0),
    original_name TEXT NOT NULL,
    -- Relative to the data dir.
    stored_path   TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL CHECK (size_bytes >= 0),
    content_type  TEXT,
    sha256        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    -- Also the index for reading a message's attachments.
    UNIQUE (message_id, position)
);
