//! The executor's two error kinds. [`StmtError`]: a statement failed; reported in-band
//! (HTTP 200) with a Hrana error code. [`ProtocolError`]: the client broke the protocol
//! (unknown `sql_id`, bad batch condition, request after `close`); the server answers HTTP 400
//! and the stream is not continued.

use std::time::Duration;

use rusqlite::ErrorCode;

use crate::guard;
use crate::proto;

/// A statement failed; the stream stays usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StmtError {
    /// The SQL text has no statement.
    #[error("SQL string does not contain any statement")]
    NoStatement,
    /// The SQL text has more than one statement (use `sequence` or a batch).
    #[error("SQL string contains more than one statement")]
    ManyStatements,
    /// Arguments do not match the statement's parameters.
    #[error("arguments do not match SQL parameters: {0}")]
    ArgsInvalid(String),
    /// The rows would exceed the result-size cap.
    #[error(
        "result too large: the response would exceed {limit} bytes; \
         select fewer rows or columns (e.g. with LIMIT)"
    )]
    ResponseTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The tenant SQL guard refused the statement.
    #[error("not authorized: {reason}")]
    NotAuthorized {
        /// Why (from the guard's policy).
        reason: String,
    },
    /// The request's statements ran past the guard's time budget: the running one was
    /// interrupted, later ones do not start.
    #[error("time budget exceeded: the SQL of this request ran longer than {} ms (one budget for all its statements); this statement was interrupted or not started. Make the query cheaper or split the work over several requests", budget.as_millis())]
    TimeBudgetExceeded {
        /// The budget.
        budget: Duration,
    },
    /// The request was cancelled (its client disconnected) and the statement interrupted.
    #[error("interrupted: the client of this request disconnected")]
    Cancelled,
    /// Transaction control is not allowed in this endpoint.
    #[error("transaction statements (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, END) are not allowed here: {0}")]
    TransactionControl(String),
    /// SQLite rejected the SQL text at a position.
    #[error("SQL input error: {message} (at offset {offset})")]
    SqlInput {
        /// SQLite's message.
        message: String,
        /// Byte offset in the SQL text.
        offset: i32,
    },
    /// Any other SQLite error.
    #[error("SQLite error: {message}")]
    Sqlite {
        /// Hrana code (`SQLITE_CONSTRAINT`, …).
        code: &'static str,
        /// SQLite's message.
        message: String,
    },
}

impl StmtError {
    /// The machine-readable Hrana error code.
    pub fn code(&self) -> &'static str {
        match self {
            StmtError::NoStatement => "SQL_NO_STATEMENT",
            StmtError::ManyStatements => "SQL_MANY_STATEMENTS",
            StmtError::ArgsInvalid(_) => "ARGS_INVALID",
            StmtError::ResponseTooLarge { .. } => "RESPONSE_TOO_LARGE",
            StmtError::NotAuthorized { .. } => "SQLITE_AUTH",
            StmtError::TimeBudgetExceeded { .. } | StmtError::Cancelled => "SQLITE_INTERRUPT",
            StmtError::TransactionControl(_) => "TRANSACTION_NOT_ALLOWED",
            StmtError::SqlInput { .. } => "SQL_INPUT_ERROR",
            StmtError::Sqlite { code, .. } => code,
        }
    }

    /// The wire form.
    pub fn to_proto(&self) -> proto::Error {
        proto::Error {
            message: self.to_string(),
            code: Some(self.code().to_owned()),
        }
    }
}

impl From<rusqlite::Error> for StmtError {
    fn from(e: rusqlite::Error) -> Self {
        // A denial recorded while preparing this statement is why it failed, whatever code
        // SQLite chose (SQLITE_AUTH, or SQLITE_ERROR for functions).
        if let Some(reason) = guard::take_denial() {
            return StmtError::NotAuthorized { reason };
        }
        match e {
            rusqlite::Error::SqliteFailure(err, message) => {
                let message = message.unwrap_or_else(|| err.to_string());
                match err.code {
                    ErrorCode::AuthorizationForStatementDenied => {
                        StmtError::NotAuthorized { reason: message }
                    }
                    ErrorCode::OperationInterrupted => match guard::take_interrupt() {
                        Some(why) => why.into(),
                        None => StmtError::Sqlite {
                            code: "SQLITE_INTERRUPT",
                            message,
                        },
                    },
                    code => StmtError::Sqlite {
                        code: sqlite_code(code),
                        message,
                    },
                }
            }
            rusqlite::Error::SqlInputError {
                error, msg, offset, ..
            } => {
                if error.code == ErrorCode::AuthorizationForStatementDenied {
                    StmtError::NotAuthorized {
                        reason: guard::take_denial().unwrap_or(msg),
                    }
                } else {
                    StmtError::SqlInput {
                        message: msg,
                        offset,
                    }
                }
            }
            rusqlite::Error::MultipleStatement => StmtError::ManyStatements,
            rusqlite::Error::Empty => StmtError::NoStatement,
            other => StmtError::Sqlite {
                code: "SQLITE_ERROR",
                message: other.to_string(),
            },
        }
    }
}

impl From<guard::Interrupt> for StmtError {
    fn from(why: guard::Interrupt) -> Self {
        match why {
            guard::Interrupt::Budget(budget) => StmtError::TimeBudgetExceeded { budget },
            guard::Interrupt::Cancelled => StmtError::Cancelled,
        }
    }
}

fn sqlite_code(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InternalMalfunction => "SQLITE_INTERNAL",
        ErrorCode::PermissionDenied => "SQLITE_PERM",
        ErrorCode::OperationAborted => "SQLITE_ABORT",
        ErrorCode::DatabaseBusy => "SQLITE_BUSY",
        ErrorCode::DatabaseLocked => "SQLITE_LOCKED",
        ErrorCode::OutOfMemory => "SQLITE_NOMEM",
        ErrorCode::ReadOnly => "SQLITE_READONLY",
        ErrorCode::OperationInterrupted => "SQLITE_INTERRUPT",
        ErrorCode::SystemIoFailure => "SQLITE_IOERR",
        ErrorCode::DatabaseCorrupt => "SQLITE_CORRUPT",
        ErrorCode::NotFound => "SQLITE_NOTFOUND",
        ErrorCode::DiskFull => "SQLITE_FULL",
        ErrorCode::CannotOpen => "SQLITE_CANTOPEN",
        ErrorCode::FileLockingProtocolFailed => "SQLITE_PROTOCOL",
        ErrorCode::SchemaChanged => "SQLITE_SCHEMA",
        ErrorCode::TooBig => "SQLITE_TOOBIG",
        ErrorCode::ConstraintViolation => "SQLITE_CONSTRAINT",
        ErrorCode::TypeMismatch => "SQLITE_MISMATCH",
        ErrorCode::ApiMisuse => "SQLITE_MISUSE",
        ErrorCode::NoLargeFileSupport => "SQLITE_NOLFS",
        ErrorCode::AuthorizationForStatementDenied => "SQLITE_AUTH",
        ErrorCode::ParameterOutOfRange => "SQLITE_RANGE",
        ErrorCode::NotADatabase => "SQLITE_NOTADB",
        _ => "SQLITE_ERROR",
    }
}

/// The client violated the protocol; the server answers HTTP 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Both `sql` and `sql_id` were given.
    #[error("either `sql` or `sql_id` is required, but not both")]
    SqlAndSqlId,
    /// Neither `sql` nor `sql_id` was given.
    #[error("either `sql` or `sql_id` is required")]
    NoSql,
    /// `sql_id` names no stored text.
    #[error("SQL text {sql_id} not found")]
    SqlNotFound {
        /// The id.
        sql_id: i32,
    },
    /// `store_sql` with an id already in use.
    #[error("SQL text {sql_id} already exists")]
    SqlExists {
        /// The id.
        sql_id: i32,
    },
    /// Too many stored SQL texts on one stream.
    #[error("too many stored SQL texts on this stream (at most {max})")]
    TooManySqls {
        /// The cap.
        max: usize,
    },
    /// A batch condition refers to a step that is not earlier than its own.
    #[error("batch step {step} has a condition on step {cond_step}, which is not an earlier step")]
    BatchCondBadStep {
        /// The step holding the condition.
        step: u32,
        /// The step it refers to.
        cond_step: u32,
    },
    /// `store_sql` with a text longer than the SQL length limit.
    #[error("stored SQL text is {len} bytes, over the SQL length limit of {max} bytes")]
    StoredSqlTooLong {
        /// The text's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `store_sql` would pass the stream's byte cap on stored texts.
    #[error("the SQL texts stored on this stream would exceed {max} bytes; send `close_sql` for texts no longer needed, or send the SQL inline")]
    StoredSqlFull {
        /// The cap in bytes.
        max: usize,
    },
    /// A request arrived after the stream's `close`.
    #[error("the stream is closed")]
    StreamClosed,
}

impl ProtocolError {
    /// A machine-readable code for the HTTP 400 body.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::SqlAndSqlId | ProtocolError::NoSql => "SQL_OR_SQL_ID",
            ProtocolError::SqlNotFound { .. } => "SQL_NOT_FOUND",
            ProtocolError::SqlExists { .. } => "SQL_EXISTS",
            ProtocolError::TooManySqls { .. } | ProtocolError::StoredSqlFull { .. } => {
                "SQL_STORE_FULL"
            }
            ProtocolError::StoredSqlTooLong { .. } => "SQL_TOO_LONG",
            ProtocolError::BatchCondBadStep { .. } => "BATCH_COND_BAD_STEP",
            ProtocolError::StreamClosed => "STREAM_CLOSED",
        }
    }

    /// The wire form, for an HTTP 400 JSON body.
    pub fn to_proto(&self) -> proto::Error {
        proto::Error {
            message: self.to_string(),
            code: Some(self.code().to_owned()),
        }
    }
}
