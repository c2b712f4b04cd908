//! The DDL and upserts ORMs and pandas emit, on the device model:
//!
//! - `CREATE TABLE "root.ln.d1" (time timestamptz [PRIMARY KEY], …)`: an
//!   aligned device whose other columns are its measurements, typed per
//!   DESIGN §3. A column type Arbor cannot store is 0A000 naming the column.
//! - `DROP TABLE [IF EXISTS] "root.ln.d1"`: the device's measurements and
//!   their data go, as `DELETE TIMESERIES root.ln.d1.*` does.
//! - `ALTER TABLE "root.ln.d1" ADD [COLUMN] [IF NOT EXISTS] name type`: a new
//!   measurement of the device (aligned if the device is).
//! - `INSERT … ON CONFLICT [(time)] DO NOTHING | DO UPDATE SET c = EXCLUDED.c, …`:
//!   `time` is the key. A plain INSERT already overwrites (last write wins);
//!   DO NOTHING leaves rows at existing times alone, DO UPDATE writes only
//!   the assigned columns at existing times.

use datafusion::sql::sqlparser::ast::{
    AlterTable, AlterTableOperation, AssignmentTarget, ColumnOption, ConflictTarget, CreateTable, Expr, Insert, ObjectName,
    OnConflictAction, OnInsert, TableConstraint, TableObject,
};

use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;

use super::Session;
use crate::error::{Error, Result};
use crate::output::QueryOutput;

/// The TSQL data type for a PostgreSQL column type (its SQL text).
fn measurement_type(column: &str, sql_type: &str) -> Result<&'static str> {
    let upper = sql_type.to_ascii_uppercase();
    let (base, args) = match upper.split_once('(') {
        Some((b, rest)) => (b.trim().to_string(), rest.trim_end_matches(')').trim().to_string()),
        None => (upper.trim().to_string(), String::new()),
    };
    Ok(match base.as_str() {
        "BOOLEAN" | "BOOL" => "BOOLEAN",
        "SMALLINT" | "INT2" | "INT" | "INTEGER" | "INT4" => "INT32",
        "BIGINT" | "INT8" => "INT64",
        "REAL" | "FLOAT4" => "FLOAT",
        "DOUBLE PRECISION" | "DOUBLE" | "FLOAT8" => "DOUBLE",
        // float(p): real up to 24 binary digits, double precision above (and without p).
        "FLOAT" => match args.parse::<u32>() {
            Ok(p) if p <= 24 => "FLOAT",
            _ => "DOUBLE",
        },
        "TEXT" | "VARCHAR" | "CHARACTER VARYING" | "CHAR" | "CHARACTER" | "BPCHAR" | "STRING" => "TEXT",
        "BYTEA" | "BLOB" => "BLOB",
        "DATE" => "DATE",
        "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" | "TIMESTAMP" | "TIMESTAMP WITHOUT TIME ZONE" => "TIMESTAMP",
        _ => {
            return Err(Error::Unsupported(format!(
                "column \"{column}\" has type {sql_type}, which Arbor cannot store (boolean, integer, bigint, real, double precision, text, bytea, date, timestamptz)"
            )))
        }
    })
}

fn is_timestamp(sql_type: &str) -> bool {
    let upper = sql_type.to_ascii_uppercase();
    upper.starts_with("TIMESTAMP")
}

/// The device a table name names: `"root.…"` or `public."root.…"`.
fn device_of(name: &ObjectName) -> Result<String> {
    let parts: Vec<String> = name.0.iter().filter_map(|p| p.as_ident().map(|i| i.value.clone())).collect();
    let device = match parts.as_slice() {
        [name] => name.clone(),
        [schema, name] if schema == crate::provider::SCHEMA => name.clone(),
        _ => return Err(Error::Unsupported(format!("table {name}: device tables live in schema public"))),
    };
    if !device.starts_with("root.") {
        return Err(Error::Unsupported(format!("table \"{device}\": a table is a device, named by its path (\"root.ln.d1\")")));
    }
    Ok(device)
}

/// `name` as a quoted SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The column an `EXCLUDED.c` expression names.
fn excluded_column(e: &Expr) -> Option<String> {
    match e {
        Expr::CompoundIdentifier(parts) if parts.len() == 2 && parts[0].value.eq_ignore_ascii_case("excluded") => Some(parts[1].value.clone()),
        Expr::Nested(inner) => excluded_column(inner),
        _ => None,
    }
}

impl Session {
    /// `DROP TABLE [IF EXISTS] "root.…", …`: every named device must exist
    /// (unless IF EXISTS) before any is dropped.
    pub(super) async fn drop_tables(&mut self, names: &[ObjectName], if_exists: bool) -> Result<QueryOutput> {
        let mut devices = Vec::with_capacity(names.len());
        for name in names {
            let device = device_of(name)?;
            match crate::provider::DeviceTableProvider::open(self.instance.clone(), &device) {
                Some(table) => devices.push(table.device().to_string()),
                None if if_exists => {}
                None => return Err(Error::UnknownTable(quoted(&device))),
            }
        }
        for device in devices {
            self.tsql(&format!("DELETE TIMESERIES {device}.*")).await?;
        }
        Ok(QueryOutput::command("DROP TABLE"))
    }

    /// `ALTER TABLE "root.…" ADD [COLUMN] [IF NOT EXISTS] name type, …`.
    pub(super) async fn alter_table(&mut self, alter: &AlterTable) -> Result<QueryOutput> {
        let device = device_of(&alter.name)?;
        let Some(table) = crate::provider::DeviceTableProvider::open(self.instance.clone(), &device) else {
            if alter.if_exists {
                return Ok(QueryOutput::command("ALTER TABLE"));
            }
            return Err(Error::UnknownTable(quoted(&device)));
        };
        let mut added = Vec::new();
        for operation in &alter.operations {
            let AlterTableOperation::AddColumn { if_not_exists, column_def, .. } = operation else {
                return Err(Error::Unsupported(format!("ALTER TABLE … {operation}: a device table only gains columns (ADD COLUMN)")));
            };
            let name = column_def.name.value.clone();
            let exists = name.eq_ignore_ascii_case("time") || table.series_index(&name).is_some() || added.iter().any(|(n, _)| n == &name);
            if exists {
                if *if_not_exists {
                    continue;
                }
                return Err(Error::DuplicateColumn(format!("column \"{name}\" of relation \"{device}\" already exists")));
            }
            for option in &column_def.options {
                if !matches!(option.option, ColumnOption::Null) {
                    return Err(Error::Unsupported(format!("column \"{name}\": {} (a measurement is a nullable value)", option.option)));
                }
            }
            if name.contains('`') {
                return Err(Error::Unsupported(format!("column \"{name}\": a measurement name cannot hold a backquote")));
            }
            added.push((name.clone(), measurement_type(&name, &column_def.data_type.to_string())?));
        }
        if added.is_empty() {
            return Ok(QueryOutput::command("ALTER TABLE"));
        }
        let aligned = catalog::Path::parse(table.device()).ok().and_then(|p| self.instance.catalog().device(&p)).is_some_and(|d| d.aligned);
        let columns: Vec<String> = added.iter().map(|(n, t)| format!("`{n}` {t}")).collect();
        if aligned {
            self.tsql(&format!("CREATE ALIGNED TIMESERIES {}({})", table.device(), columns.join(", "))).await?;
        } else {
            for (n, t) in &added {
                self.tsql(&format!("CREATE TIMESERIES {}.`{n}` {t}", table.device())).await?;
            }
        }
        Ok(QueryOutput::command("ALTER TABLE"))
    }

    /// `INSERT … ON CONFLICT …` into a device table, as INSERTs of the rows
    /// at new times and (DO UPDATE) of the assigned columns at existing times.
    /// Which times exist is decided once, before either is written.
    pub(super) async fn insert_on_conflict(&mut self, insert: &Insert, params: Option<Vec<ScalarValue>>) -> Result<QueryOutput> {
        let Some(OnInsert::OnConflict(on_conflict)) = &insert.on else {
            return Err(Error::Unsupported("ON DUPLICATE KEY UPDATE: use ON CONFLICT (time)".into()));
        };
        let TableObject::TableName(name) = &insert.table else {
            return Err(Error::Unsupported("INSERT into a table function".into()));
        };
        let device = device_of(name)?;
        let Some(table) = crate::provider::DeviceTableProvider::open(self.instance.clone(), &device) else {
            return Err(Error::UnknownTable(quoted(&device)));
        };
        let key = format!("{device}_pkey");
        match &on_conflict.conflict_target {
            None => {}
            Some(ConflictTarget::Columns(c)) if c.len() == 1 && c[0].value.eq_ignore_ascii_case("time") => {}
            Some(ConflictTarget::OnConstraint(c)) if c.0.last().and_then(|p| p.as_ident()).is_some_and(|i| i.value == key) => {}
            Some(_) => {
                return Err(Error::InvalidConflictTarget(
                    "there is no unique or exclusion constraint matching the ON CONFLICT specification (a device table's key is time)".into(),
                ))
            }
        }
        if insert.returning.is_some() {
            return Err(Error::Unsupported("INSERT … ON CONFLICT … RETURNING".into()));
        }
        let Some(source) = &insert.source else { return Err(Error::Unsupported("INSERT … ON CONFLICT without VALUES or SELECT".into())) };
        let columns: Vec<String> = if insert.columns.is_empty() {
            datafusion::catalog::TableProvider::schema(&table).fields().iter().map(|f| f.name().clone()).collect()
        } else {
            insert.columns.iter().map(|c| c.0.last().and_then(|p| p.as_ident()).map(|i| i.value.clone()).unwrap_or_default()).collect()
        };
        if !columns.iter().any(|c| c.eq_ignore_ascii_case("time")) {
            return Err(Error::Unsupported("INSERT … ON CONFLICT needs the time column".into()));
        }
        let list = columns.iter().map(|c| quoted(c)).collect::<Vec<_>>().join(", ");
        let from = format!("({source}) AS arbor_source({list})");
        let existing = format!("EXISTS (SELECT 1 FROM {} AS arbor_existing WHERE arbor_existing.\"time\" = arbor_source.\"time\")", quoted(&device));
        let mut rows = 0;
        if let OnConflictAction::DoUpdate(update) = &on_conflict.action {
            if update.selection.is_some() {
                return Err(Error::Unsupported("ON CONFLICT … DO UPDATE … WHERE".into()));
            }
            let mut targets: Vec<(String, String)> = Vec::new();
            for assignment in &update.assignments {
                let AssignmentTarget::ColumnName(target) = &assignment.target else {
                    return Err(Error::Unsupported("ON CONFLICT … DO UPDATE SET (a, b) = …".into()));
                };
                let target = target.0.last().and_then(|p| p.as_ident()).map(|i| i.value.clone()).unwrap_or_default();
                if target.eq_ignore_ascii_case("time") {
                    return Err(Error::Unsupported("ON CONFLICT … DO UPDATE SET time: the key of a row cannot change".into()));
                }
                if table.series_index(&target).is_none() {
                    return Err(Error::UnknownColumn(format!("\"{target}\" of relation \"{device}\"")));
                }
                let Some(from_column) = excluded_column(&assignment.value).filter(|c| columns.contains(c)) else {
                    return Err(Error::Unsupported(format!(
                        "ON CONFLICT … DO UPDATE SET {target} = {}: a column can be set to EXCLUDED.<inserted column> only",
                        assignment.value
                    )));
                };
                targets.push((target, from_column));
            }
            // The assigned columns at existing times; the others stay NULL,
            // which writes no point. (Planned as a query, then written: an
            // INSERT … SELECT would type the source's VALUES by the target's
            // columns, which are fewer.)
            let values: Vec<String> = targets.iter().map(|(t, from)| format!("arbor_source.{} AS {}", quoted(from), quoted(t))).collect();
            let select = format!("SELECT arbor_source.\"time\" AS \"time\", {} FROM {from} WHERE {existing}", values.join(", "));
            rows += self.write_query(&table, &select, params.clone()).await?;
        }
        // Rows at new times, after the updates (which only touch existing times).
        let text = format!("INSERT INTO {} ({list}) SELECT {list} FROM {from} WHERE NOT {existing}", quoted(&device));
        let statement = crate::pg::parse::parse(&text).map_err(|e| Error::Syntax(e.to_string()))?.remove(0);
        if let QueryOutput::Command { rows: Some(n), .. } = Box::pin(self.statement(statement, params, None)).await? {
            rows += n;
        }
        Ok(QueryOutput::command_with_rows("INSERT", rows))
    }

    /// Write the rows of `select` (a `time` column and some of `table`'s
    /// columns, by name) into `table`; its other columns get no points.
    async fn write_query(&mut self, table: &crate::provider::DeviceTableProvider, select: &str, params: Option<Vec<ScalarValue>>) -> Result<usize> {
        use datafusion::logical_expr::{cast, lit, Expr as DfExpr};
        let mut df = self.ctx.sql(select).await?;
        if let Some(values) = params {
            df = df.with_param_values(ParamValues::List(values.into_iter().map(Into::into).collect()))?;
        }
        let given: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
        let schema = datafusion::catalog::TableProvider::schema(table);
        let mut exprs = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let expr = if given.contains(field.name()) {
                cast(DfExpr::Column(datafusion::common::Column::new_unqualified(field.name())), field.data_type().clone())
            } else {
                lit(ScalarValue::try_from(field.data_type())?)
            };
            exprs.push(expr.alias(field.name()));
        }
        let written = df.select(exprs)?.write_table(&quoted(table.device()), datafusion::dataframe::DataFrameWriteOptions::new()).await?;
        Ok(written
            .iter()
            .filter_map(|b| b.column(0).as_any().downcast_ref::<datafusion::arrow::array::UInt64Array>())
            .flat_map(|a| a.iter().flatten())
            .sum::<u64>() as usize)
    }

    /// `CREATE TABLE "root.…" (time timestamptz [PRIMARY KEY], column type, …)`.
    pub(super) async fn create_table(&mut self, create: &CreateTable) -> Result<QueryOutput> {
        if create.query.is_some() || create.like.is_some() || create.clone.is_some() {
            return Err(Error::Unsupported("CREATE TABLE … AS/LIKE/CLONE: create the table, then INSERT".into()));
        }
        if create.temporary || create.or_replace || create.external {
            return Err(Error::Unsupported("TEMPORARY, OR REPLACE and EXTERNAL tables".into()));
        }
        let device = device_of(&create.name)?;
        if crate::provider::DeviceTableProvider::open(self.instance.clone(), &device).is_some() {
            if create.if_not_exists {
                return Ok(QueryOutput::command("CREATE TABLE"));
            }
            return Err(Error::DuplicateTable(format!("relation \"{device}\" already exists")));
        }
        for constraint in &create.constraints {
            match constraint {
                TableConstraint::PrimaryKey(pk) if pk.columns.len() == 1 && pk.columns[0].to_string().trim_matches('"').eq_ignore_ascii_case("time") => {}
                other => return Err(Error::Unsupported(format!("constraint {other}: a device table's only key is time"))),
            }
        }
        let mut time = false;
        let mut measurements = Vec::new();
        for column in &create.columns {
            let name = column.name.value.clone();
            let sql_type = column.data_type.to_string();
            if name.eq_ignore_ascii_case("time") {
                if !is_timestamp(&sql_type) {
                    return Err(Error::Unsupported(format!("column \"time\" has type {sql_type}; a device table's time is timestamptz")));
                }
                time = true;
                continue;
            }
            for option in &column.options {
                match &option.option {
                    ColumnOption::Null => {}
                    other => return Err(Error::Unsupported(format!("column \"{name}\": {other} (a measurement is a nullable value)"))),
                }
            }
            if name.contains('`') {
                return Err(Error::Unsupported(format!("column \"{name}\": a measurement name cannot hold a backquote")));
            }
            measurements.push(format!("`{name}` {}", measurement_type(&name, &sql_type)?));
        }
        if !time {
            return Err(Error::Unsupported(format!("table \"{device}\" needs a column \"time timestamptz\"")));
        }
        if measurements.is_empty() {
            return Err(Error::Unsupported(format!("table \"{device}\" needs a column besides time")));
        }
        self.tsql(&format!("CREATE ALIGNED TIMESERIES {device}({})", measurements.join(", "))).await?;
        Ok(QueryOutput::command("CREATE TABLE"))
    }
}

#[cfg(test)]
mod tests {
    use super::measurement_type;

    #[test]
    fn postgresql_types_map_to_measurement_types() {
        for (sql, want) in [
            ("DOUBLE PRECISION", "DOUBLE"),
            ("FLOAT(53)", "DOUBLE"),
            ("FLOAT(10)", "FLOAT"),
            ("REAL", "FLOAT"),
            ("INTEGER", "INT32"),
            ("BIGINT", "INT64"),
            ("BOOLEAN", "BOOLEAN"),
            ("VARCHAR(20)", "TEXT"),
            ("TEXT", "TEXT"),
            ("BYTEA", "BLOB"),
            ("DATE", "DATE"),
            ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP"),
        ] {
            assert_eq!(measurement_type("c", sql).unwrap(), want, "{sql}");
        }
        assert!(matches!(measurement_type("amount", "NUMERIC(10,2)"), Err(crate::error::Error::Unsupported(m)) if m.contains("\"amount\"")));
    }
}
