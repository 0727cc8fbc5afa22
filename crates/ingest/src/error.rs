//! The log's error type: one small enum, each variant a "cannot …: …" message with its
//! `std::io::Error` source, so the server can map each to a status without a catch-all.

use std::io;
use std::path::PathBuf;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The directory, lock, a segment or the writer thread could not be set up at open.
    #[error("cannot open the ingest log at {}: {source}", path.display())]
    Open {
        /// The log directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Another `Log` (in this or another process) has the directory open.
    #[error("cannot open the ingest log at {}: another process has it open", path.display())]
    Locked {
        /// The log directory.
        path: PathBuf,
    },
    /// The record's payload is above [`MAX_PAYLOAD_BYTES`]; nothing was written.
    #[error("cannot append to the ingest log: the record is {bytes} bytes, above the maximum")]
    TooLarge {
        /// The record's payload size.
        bytes: usize,
    },
    /// The disk is full; nothing of the batch was kept, later appends may succeed.
    #[error("cannot append to the ingest log: the disk is full: {source}")]
    DiskFull {
        /// The ENOSPC error.
        source: io::Error,
    },
    /// Writing the batch failed; nothing of it was kept, later appends may succeed.
    #[error("cannot append to the ingest log: {source}")]
    Write {
        /// The cause.
        source: io::Error,
    },
    /// An fsync failed; the batch failed and so will every later append until reopened.
    #[error("cannot sync the ingest log: {source}")]
    Sync {
        /// The cause.
        source: io::Error,
    },
    /// An earlier fsync failed: the log refuses appends until it is reopened and replayed.
    #[error("cannot append to the ingest log: an earlier sync failed, reopen it: {source}")]
    Failed {
        /// The kind of the earlier failure.
        source: io::Error,
    },
    /// Deleting released segments failed; the ones before the failure are gone.
    #[error("cannot release ingest log segments: {source}")]
    Release {
        /// The cause.
        source: io::Error,
    },
    /// The log was closed (or its writer stopped).
    #[error("cannot append to the ingest log: it is closed")]
    Closed,
}

impl LogError {
    /// A write error, typed `DiskFull` when the cause is ENOSPC.
    pub(crate) fn write(source: io::Error) -> Self {
        if source.raw_os_error() == Some(libc::ENOSPC)
            || source.kind() == io::ErrorKind::StorageFull
        {
            LogError::DiskFull { source }
        } else {
            LogError::Write { source }
        }
    }

    /// The same error again, for each append of a failed batch (`io::Error` is not `Clone`).
    pub(crate) fn duplicate(&self) -> Self {
        let dup = |e: &io::Error| match e.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(e.kind(), e.to_string()),
        };
        match self {
            LogError::Open { path, source } => LogError::Open {
                path: path.clone(),
                source: dup(source),
            },
            LogError::Locked { path } => LogError::Locked { path: path.clone() },
            LogError::TooLarge { bytes } => LogError::TooLarge { bytes: *bytes },
            LogError::DiskFull { source } => LogError::DiskFull {
                source: dup(source),
            },
            LogError::Write { source } => LogError::Write {
                source: dup(source),
            },
            LogError::Sync { source } => LogError::Sync {
                source: dup(source),
            },
            LogError::Failed { source } => LogError::Failed {
                source: dup(source),
            },
            LogError::Release { source } => LogError::Release {
                source: dup(source),
            },
            LogError::Closed => LogError::Closed,
        }
    }
}
