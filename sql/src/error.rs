//! The query layer's error type. Variants are named by cause; the server
//! maps each to a SQLSTATE in one exhaustive match.

use datafusion::error::DataFusionError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed statement text (42601).
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A bad time literal (22007).
    #[error("invalid time literal: {0}")]
    InvalidTime(String),
    /// A value that cannot be read as the type it must have (22P02).
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// A value of the wrong type for an existing series or column (42804).
    #[error("type mismatch: {0}")]
    TypeMismatch(String),
    /// A table (device) that does not exist (42P01).
    #[error("relation {0} does not exist")]
    UnknownTable(String),
    /// A table (device) that exists already (42P07).
    #[error("{0}")]
    DuplicateTable(String),
    /// A column that exists already (42701).
    #[error("{0}")]
    DuplicateColumn(String),
    /// An `ON CONFLICT` target that is not the table's key (42P10).
    #[error("{0}")]
    InvalidConflictTarget(String),
    /// A column (measurement) that does not exist (42703).
    #[error("column {0} does not exist")]
    UnknownColumn(String),
    /// A function that does not exist (42883).
    #[error("{0}")]
    UndefinedFunction(String),
    /// A number out of its type's range (22003).
    #[error("{0}")]
    NumericOverflow(String),
    /// A NULL where a value is required, e.g. `time` (23502).
    #[error("{0}")]
    NotNull(String),
    /// A run-time parameter that does not exist (42704).
    #[error("{0}")]
    UnknownParameter(String),
    /// A value a run-time parameter cannot take (22023).
    #[error("{0}")]
    InvalidParameter(String),
    /// A parameter fixed for the server's life, e.g. `server_version` (55P02).
    #[error("{0}")]
    ReadOnlyParameter(String),
    /// A cursor name that is not open (34000).
    #[error("{0}")]
    UnknownCursor(String),
    /// A cursor name already open (42P03).
    #[error("{0}")]
    DuplicateCursor(String),
    /// A cursor asked to do what it cannot, e.g. move backward (55000).
    #[error("{0}")]
    CursorState(String),
    /// A statement that needs a transaction block outside one (25P01).
    #[error("{0}")]
    NoTransaction(String),
    /// An advisory lock another session holds (55P03).
    #[error("{0}")]
    LockNotAvailable(String),
    /// A LIKE pattern or escape string that cannot be read (22025).
    #[error("{0}")]
    InvalidEscapeSequence(String),
    /// A scalar subquery that returned more than one row (21000).
    #[error("{0}")]
    CardinalityViolation(String),
    /// Valid syntax that Arbor does not implement (0A000).
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Catalog(#[from] catalog::Error),
    #[error(transparent)]
    Storage(#[from] storage::Error),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

impl From<Box<DataFusionError>> for Error {
    fn from(e: Box<DataFusionError>) -> Self {
        Error::DataFusion(*e)
    }
}
