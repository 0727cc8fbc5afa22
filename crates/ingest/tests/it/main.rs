// The ingest log's integration tests, one binary: records and frames, appends and batching,
// replay of torn and corrupt logs, and a full disk.

mod append;
mod disk_full;
mod record;
mod replay;
mod util;
