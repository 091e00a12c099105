/**
 * The limits the domain enforces. Config produces one `Limits`; app.ts hands it to the
 * store and `/me` shows it, both unchanged, so a limit has one name from the environment
 * variable's parse to the API (a new limit: one field here, one line in config.ts).
 */
export interface Limits {
  /** MAX_SESSIONS_PER_USER */
  sessions: number;
  /** USER_QUOTA_BYTES: everything a user stores, see Usage.bytes. */
  bytes: number;
  /** MAX_STATE_BYTES: a session's state as JSON. */
  stateBytes: number;
  /** MAX_MESSAGE_BYTES: a message's content and metadata as JSON. */
  messageBytes: number;
  /** MAX_UPLOAD_BYTES: one uploaded file. */
  uploadBytes: number;
  /** MAX_FILES_PER_UPLOAD */
  filesPerUpload: number;
  /** MAX_FILES_PER_SESSION */
  filesPerSession: number;
  /** UPLOAD_ALLOWED_TYPES */
  uploadTypes: string[];
}
