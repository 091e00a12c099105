-- Sessions, their messages and files, each user's usage and upload reservations, and the
-- outbox of file bytes to delete.
--
-- user_id leads every key and index, so every lookup stays inside one tenant (and the schema
-- could later be distributed by user_id). Every table holding user data has row-level
-- security, forced so that not even the owner escapes it: a row is visible and writable only
-- while the transaction's app.user_id names its user. After a transaction that set it ends,
-- the setting reads '' rather than NULL; nullif turns that into "nobody".

CREATE TABLE sessions (
  user_id     text        NOT NULL,
  id          uuid        NOT NULL,
  title       text        NOT NULL,
  -- The state exactly as the service serialized it (key order kept, as the filesystem does).
  state       text        NOT NULL,
  version     integer     NOT NULL,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  -- The next message's seq: advanced in the transaction that stores the message, so seq is dense.
  next_seq    bigint      NOT NULL DEFAULT 1,
  -- What the session is charged: its document, its messages, its files (size + overhead).
  doc_bytes   bigint      NOT NULL,
  log_bytes   bigint      NOT NULL DEFAULT 0,
  file_bytes  bigint      NOT NULL DEFAULT 0,
  file_count  integer     NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, id)
);
-- Newest first, keyset-paged.
CREATE INDEX sessions_by_update ON sessions (user_id, updated_at DESC, id DESC);

CREATE TABLE messages (
  user_id     text        NOT NULL,
  session_id  uuid        NOT NULL,
  seq         bigint      NOT NULL,
  id          uuid        NOT NULL,
  role        text        NOT NULL,
  content     text        NOT NULL,
  metadata    text        NOT NULL,
  created_at  timestamptz NOT NULL,
  PRIMARY KEY (user_id, session_id, seq),
  FOREIGN KEY (user_id, session_id) REFERENCES sessions (user_id, id) ON DELETE CASCADE
);

CREATE TABLE files (
  user_id      text        NOT NULL,
  session_id   uuid        NOT NULL,
  id           uuid        NOT NULL,
  name         text        NOT NULL,
  size         bigint      NOT NULL,
  content_type text        NOT NULL,
  sha256       text        NOT NULL,
  created_at   timestamptz NOT NULL,
  -- The listing order: taken when the upload is recorded, under the user's usage-row lock,
  -- so it is the order uploads were recorded in, and request order within one upload.
  position     bigint      GENERATED ALWAYS AS IDENTITY,
  PRIMARY KEY (user_id, session_id, id),
  FOREIGN KEY (user_id, session_id) REFERENCES sessions (user_id, id) ON DELETE CASCADE
);
-- Oldest first, keyset-paged.
CREATE INDEX files_in_order ON files (user_id, session_id, position);

-- One row per user: the point every write of that user serializes on, which makes the quota
-- exact across processes. `reserved` is what uploads in flight hold.
CREATE TABLE usage (
  user_id   text    NOT NULL PRIMARY KEY,
  sessions  integer NOT NULL DEFAULT 0,
  files     integer NOT NULL DEFAULT 0,
  bytes     bigint  NOT NULL DEFAULT 0,
  reserved  bigint  NOT NULL DEFAULT 0
);

-- An upload in flight: what it holds of the quota and of the session's file count, and the
-- ids its bytes are put under, so that a sweeper on any process can give back the share of a
-- process that died mid-upload and delete its bytes. Extended while the upload makes progress.
CREATE TABLE upload_reservations (
  user_id     text        NOT NULL,
  id          uuid        NOT NULL,
  session_id  uuid        NOT NULL,
  files       integer     NOT NULL DEFAULT 0,
  bytes       bigint      NOT NULL DEFAULT 0,
  file_ids    uuid[]      NOT NULL DEFAULT '{}',
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (user_id, id)
);
CREATE INDEX upload_reservations_by_expiry ON upload_reservations (expires_at);

-- File bytes to delete, written in the transaction that deletes their records and drained by a
-- worker on any process. It names blobs only (user, session and file ids), never content.
CREATE TABLE blob_outbox (
  user_id     text        NOT NULL,
  session_id  uuid        NOT NULL,
  file_id     uuid        NOT NULL,
  enqueued_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, session_id, file_id)
);
CREATE INDEX blob_outbox_by_age ON blob_outbox (enqueued_at);

-- Keys the service keeps for itself (the listing-cursor key when CURSOR_SECRET is unset), so
-- that every process signs and checks cursors alike.
CREATE TABLE service_keys (
  name  text  NOT NULL PRIMARY KEY,
  key   bytea NOT NULL
);

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON sessions
  USING (user_id = nullif(current_setting('app.user_id', true), ''))
  WITH CHECK (user_id = nullif(current_setting('app.user_id', true), ''));

ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON messages
  USING (user_id = nullif(current_setting('app.user_id', true), ''))
  WITH CHECK (user_id = nullif(current_setting('app.user_id', true), ''));

ALTER TABLE files ENABLE ROW LEVEL SECURITY;
ALTER TABLE files FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON files
  USING (user_id = nullif(current_setting('app.user_id', true), ''))
  WITH CHECK (user_id = nullif(current_setting('app.user_id', true), ''));

ALTER TABLE usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON usage
  USING (user_id = nullif(current_setting('app.user_id', true), ''))
  WITH CHECK (user_id = nullif(current_setting('app.user_id', true), ''));

ALTER TABLE upload_reservations ENABLE ROW LEVEL SECURITY;
ALTER TABLE upload_reservations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON upload_reservations
  USING (user_id = nullif(current_setting('app.user_id', true), ''))
  WITH CHECK (user_id = nullif(current_setting('app.user_id', true), ''));
-- The sweeper finds expired reservations of any user (ids and sizes, no content), then gives
-- each back inside that user's own transaction, under the tenant policy above. Only a
-- transaction with no user sees them: a user's own sees their own rows and no one else's.
CREATE POLICY sweep ON upload_reservations FOR SELECT
  USING (expires_at < now() AND nullif(current_setting('app.user_id', true), '') IS NULL);

-- The outbox is a work queue of blob ids that every process drains (it holds no user data),
-- but only a user's own transaction can put that user's blobs in it.
ALTER TABLE blob_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE blob_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY enqueue ON blob_outbox FOR INSERT
  WITH CHECK (user_id = nullif(current_setting('app.user_id', true), ''));
CREATE POLICY drain_read ON blob_outbox FOR SELECT USING (true);
-- Workers claim rows with SELECT ... FOR UPDATE SKIP LOCKED, which needs an UPDATE policy;
-- no row may actually be changed.
CREATE POLICY drain_claim ON blob_outbox FOR UPDATE USING (true) WITH CHECK (false);
CREATE POLICY drain ON blob_outbox FOR DELETE USING (true);
