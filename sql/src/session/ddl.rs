//! `CREATE TABLE` as ORMs and pandas emit it, on the device model: a table
//! `"root.ln.d1"` with a `time timestamptz` column (the key) becomes an
//! aligned device whose other columns are its measurements, typed per
//! DESIGN §3. A column type Arbor cannot store is 0A000 naming the column.

use datafusion::sql::sqlparser::ast::{ColumnOption, CreateTable, TableConstraint};

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

impl Session {
    /// `CREATE TABLE "root.…" (time timestamptz [PRIMARY KEY], column type, …)`.
    pub(super) async fn create_table(&mut self, create: &CreateTable) -> Result<QueryOutput> {
        if create.query.is_some() || create.like.is_some() || create.clone.is_some() {
            return Err(Error::Unsupported("CREATE TABLE … AS/LIKE/CLONE: create the table, then INSERT".into()));
        }
        if create.temporary || create.or_replace || create.external {
            return Err(Error::Unsupported("TEMPORARY, OR REPLACE and EXTERNAL tables".into()));
        }
        let parts: Vec<String> = create.name.0.iter().filter_map(|p| p.as_ident().map(|i| i.value.clone())).collect();
        let device = match parts.as_slice() {
            [name] => name.clone(),
            [schema, name] if schema == crate::provider::SCHEMA => name.clone(),
            _ => return Err(Error::Unsupported(format!("table {}: device tables live in schema public", create.name))),
        };
        if !device.starts_with("root.") {
            return Err(Error::Unsupported(format!("table \"{device}\": a table is a device, named by its path (\"root.ln.d1\")")));
        }
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
