-- What retrieval ingested: documents and their chunks, per collection. The vector index is derived
-- from these rows and can be rebuilt from them.
--
-- A document is written as pending (indexed = 0) together with all of its chunks in one
-- transaction before anything is embedded, and set to indexed = 1 once every chunk is in the
-- index. Chunks an edit made obsolete wait in rag_stale_chunks until they are gone from the index.
-- Portable SQL, as the conversations schema: TEXT and BIGINT only, JSON stored as TEXT.

CREATE TABLE rag_documents (
    collection   TEXT NOT NULL,
    doc_id       TEXT NOT NULL,
    source       TEXT NOT NULL,
    title        TEXT,
    -- SHA-256 (hex) of title, text and metadata: an unchanged document is skipped.
    content_hash TEXT NOT NULL,
    -- A JSON object.
    metadata     TEXT NOT NULL,
    indexed      BIGINT NOT NULL DEFAULT 0 CHECK (indexed IN (0, 1)),
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (collection, doc_id)
);

-- Recovery looks for pending documents at every start.
CREATE INDEX rag_documents_pending ON rag_documents (collection, indexed);

CREATE TABLE rag_chunks (
    collection TEXT NOT NULL,
    -- Content-hash id, also the vector's id in the index.
    id         TEXT NOT NULL,
    doc_id     TEXT NOT NULL,
    position   BIGINT NOT NULL CHECK (position >= 0),
    text       TEXT NOT NULL,
    -- A JSON object.
    metadata   TEXT NOT NULL,
    PRIMARY KEY (collection, id),
    FOREIGN KEY (collection, doc_id) REFERENCES rag_documents (collection, doc_id) ON DELETE CASCADE
);

CREATE INDEX rag_chunks_by_document ON rag_chunks (collection, doc_id, position);

CREATE TABLE rag_stale_chunks (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    doc_id     TEXT NOT NULL,
    PRIMARY KEY (collection, id)
);

CREATE INDEX rag_stale_chunks_by_document ON rag_stale_chunks (collection, doc_id);
