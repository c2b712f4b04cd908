//! The one place where errors become SQLSTATEs (DESIGN §7). Every error a
//! client sees is an ErrorResponse with a code and a message naming the
//! offending path or token; the connection stays usable.

use datafusion::error::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};

/// The SQLSTATE of an error from the query layer.
pub(crate) fn sqlstate(err: &sql::Error) -> &'static str {
    match err {
        sql::Error::Syntax(_) => "42601",
        sql::Error::InvalidTime(_) => "22007",
        sql::Error::InvalidValue(_) => "22P02",
        sql::Error::TypeMismatch(_) => "42804",
        sql::Error::UnknownTable(_) => "42P01",
        sql::Error::DuplicateTable(_) => "42P07",
        sql::Error::UnknownColumn(_) => "42703",
        sql::Error::DuplicateColumn(_) => "42701",
        sql::Error::InvalidConflictTarget(_) => "42P10",
        sql::Error::NotNull(_) => "23502",
        sql::Error::UndefinedFunction(_) => "42883",
        sql::Error::NumericOverflow(_) => "22003",
        sql::Error::CardinalityViolation(_) => "21000",
        sql::Error::InvalidEscapeSequence(_) => "22025",
        sql::Error::Unsupported(_) => "0A000",
        sql::Error::UnknownParameter(_) => "42704",
        sql::Error::InvalidParameter(_) => "22023",
        sql::Error::ReadOnlyParameter(_) => "55P02",
        sql::Error::UnknownCursor(_) => "34000",
        sql::Error::DuplicateCursor(_) => "42P03",
        sql::Error::CursorState(_) => "55000",
        sql::Error::NoTransaction(_) => "25P01",
        sql::Error::LockNotAvailable(_) => "55P03",
        sql::Error::Catalog(e) => catalog_sqlstate(e),
        sql::Error::Storage(e) => storage_sqlstate(e),
        sql::Error::DataFusion(e) => datafusion_sqlstate(e),
    }
}

fn catalog_sqlstate(err: &catalog::Error) -> &'static str {
    use catalog::Error as E;
    match err {
        E::InvalidPath { .. } => "42601",
        E::DatabaseNotFound { .. } | E::DatabaseNotSet { .. } => "3D000",
        E::SeriesNotFound { .. } => "42703",
        E::DatabaseAlreadyExists { .. }
        | E::SeriesAlreadyExists { .. }
        | E::PathAlreadyExists { .. }
        | E::AliasAlreadyExists { .. } => "42710",
        E::DatabaseConflict { .. } | E::PathIsMeasurement { .. } | E::AlignmentMismatch { .. } => "42P16",
        E::TypeMismatch { .. } => "42804",
        E::UnsupportedDataType { .. } | E::EncodingNotSupported { .. } | E::CompressionNotSupported { .. } => "0A000",
        E::Corrupt { .. } => "XX001",
        E::Io { .. } => "58030",
        E::Internal(_) | E::LogPoisoned { .. } => "XX000",
    }
}

fn storage_sqlstate(err: &storage::Error) -> &'static str {
    use storage::Error as E;
    match err {
        E::MemoryBudgetExceeded { .. } => "53200",
        E::TypeMismatch { .. } => "42804",
        E::AlignmentMismatch { .. } => "42P16",
        E::InvalidBatch { .. } => "22P02",
        E::OutsideTtl { .. } => "22008",
        E::Locked { .. } => "55006",
        E::Closed => "57P01",
        E::Corrupt { .. } | E::Tsfile(tsfile::Error::Corrupt { .. }) => "XX001",
        E::Tsfile(_) => "XX000",
        E::Io { .. } => "58030",
    }
}

/// DataFusion errors: unwrap our own errors carried inside (External), and
/// classify planning/parsing failures.
fn datafusion_sqlstate(err: &DataFusionError) -> &'static str {
    let text = err.to_string();
    if text.contains("table '") && text.contains("not found") {
        return "42P01";
    }
    if text.contains("No field named") || text.contains("Schema error: No field") {
        return "42703";
    }
    if text.contains("has null but schema specifies non-nullable") {
        return "23502";
    }
    match err {
        DataFusionError::External(inner) => {
            if let Some(e) = inner.downcast_ref::<sql::Error>() {
                return sqlstate(e);
            }
            if let Some(e) = inner.downcast_ref::<storage::Error>() {
                return storage_sqlstate(e);
            }
            if let Some(e) = inner.downcast_ref::<catalog::Error>() {
                return catalog_sqlstate(e);
            }
            "XX000"
        }
        // The type-coercion analyzer rule names itself in the context: an
        // operator or function applied to types it has no form for.
        DataFusionError::Context(rule, _) if rule == "type_coercion" => "42883",
        DataFusionError::Context(_, inner) => datafusion_sqlstate(inner),
        DataFusionError::Shared(inner) => datafusion_sqlstate(inner),
        DataFusionError::Diagnostic(_, inner) => datafusion_sqlstate(inner),
        DataFusionError::Collection(errors) => errors.first().map_or("XX000", datafusion_sqlstate),
        DataFusionError::SQL(..) => "42601",
        DataFusionError::SchemaError(e, _) => {
            let text = e.to_string();
            if text.contains("No field named") || text.contains("not found") {
                "42703"
            } else {
                "42P01"
            }
        }
        DataFusionError::Plan(msg) => {
            if msg.contains("table") && (msg.contains("not found") || msg.contains("does not exist")) {
                "42P01"
            } else if msg.contains("No field named") {
                "42703"
            } else if msg.contains("No function matches the given name and argument types")
                || msg.contains("Cannot coerce arithmetic expression")
                || msg.contains("Unary operator '-' only supports")
            {
                // PostgreSQL: function/operator does not exist for these types.
                "42883"
            } else if msg.contains("values had multiple data types") {
                // PostgreSQL: CASE types … cannot be matched.
                "42804"
            } else {
                "42601"
            }
        }
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::ArrowError(e, _) => match e.as_ref() {
            // A number that does not fit the target type: PostgreSQL's "out of range".
            datafusion::arrow::error::ArrowError::CastError(m) if m.starts_with("Can't cast value") => "22003",
            datafusion::arrow::error::ArrowError::CastError(_) | datafusion::arrow::error::ArrowError::ParseError(_) => "22P02",
            datafusion::arrow::error::ArrowError::DivideByZero => "22012",
            _ => "XX000",
        },
        DataFusionError::Execution(msg) if msg.contains("Cast error") || msg.contains("Cannot cast") => "22P02",
        DataFusionError::Execution(msg) if msg.contains("Divide by zero") => "22012",
        _ => "XX000",
    }
}

/// The ErrorResponse for a query-layer error.
pub(crate) fn to_pgwire(err: sql::Error) -> PgWireError {
    let code = sqlstate(&err);
    let message = message(&err);
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message)))
}

/// The message of `err`; one of ours carried through DataFusion reads as we
/// wrote it, as PostgreSQL's would (not `External error: …`).
fn message(err: &sql::Error) -> String {
    match err {
        sql::Error::DataFusion(e) => carried_message(e).unwrap_or_else(|| e.to_string()),
        other => other.to_string(),
    }
}

fn carried_message(err: &DataFusionError) -> Option<String> {
    match err {
        DataFusionError::External(inner) => inner
            .downcast_ref::<sql::Error>()
            .map(message)
            .or_else(|| inner.downcast_ref::<storage::Error>().map(ToString::to_string))
            .or_else(|| inner.downcast_ref::<catalog::Error>().map(ToString::to_string)),
        DataFusionError::Context(_, inner) => carried_message(inner),
        DataFusionError::Shared(inner) => carried_message(inner),
        _ => None,
    }
}

/// An error with an explicit code (protocol-level problems).
pub(crate) fn user_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message.into())))
}
