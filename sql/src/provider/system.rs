//! The series tree as virtual tables in schema `arbor` (`pg_catalog`-style):
//! `arbor.databases`, `arbor.devices`, `arbor.timeseries`, `arbor.nodes`.
//! Each scan reads the catalog when the plan runs, so a query sees the tree
//! as it is then. A `path_matches(key, 'pattern')` filter on a table's key
//! column, and a limit, are answered by the catalog's pattern walk. TSQL's
//! `SHOW` and `COUNT` statements are planned over these tables
//! (`planner/show.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use catalog::{Page, PathPattern};
use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session as DfSession, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::TableProviderFilterPushDown;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream};

use super::path_functions::PathMatches;
use crate::instance::Instance;

/// The schema name of the system tables.
pub const SYSTEM_SCHEMA: &str = "arbor";

/// Which listing a table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    Databases,
    Devices,
    Timeseries,
    Nodes,
}

impl Listing {
    fn of(name: &str) -> Option<Listing> {
        Some(match name {
            "databases" => Listing::Databases,
            "devices" => Listing::Devices,
            "timeseries" => Listing::Timeseries,
            "nodes" => Listing::Nodes,
            _ => return None,
        })
    }

    /// The table's name in schema `arbor`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Listing::Databases => "databases",
            Listing::Devices => "devices",
            Listing::Timeseries => "timeseries",
            Listing::Nodes => "nodes",
        }
    }

    /// The column holding each row's path, which patterns select on.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Listing::Databases => "database",
            Listing::Devices => "device",
            Listing::Timeseries => "timeseries",
            Listing::Nodes => "path",
        }
    }

    fn schema(self) -> SchemaRef {
        let text = |n: &str, nullable: bool| Field::new(n, ArrowType::Utf8, nullable);
        Arc::new(Schema::new(match self {
            Listing::Databases => vec![
                text("database", false),
                Field::new("time_partition_interval", ArrowType::Int64, false),
                Field::new("ttl_ms", ArrowType::Int64, true),
            ],
            Listing::Devices => vec![text("device", false), text("database", false), Field::new("is_aligned", ArrowType::Boolean, false)],
            Listing::Timeseries => vec![
                text("timeseries", false),
                text("alias", true),
                text("database", false),
                text("device", false),
                text("data_type", false),
                text("encoding", false),
                text("compression", false),
                text("tags", true),
                text("attributes", true),
            ],
            Listing::Nodes => vec![text("path", false), text("name", false), text("node_type", false)],
        }))
    }
}

/// Tags and attributes as IoTDB prints them: a JSON object, NULL if empty.
pub(crate) fn json_map(m: &BTreeMap<String, String>) -> Option<String> {
    if m.is_empty() {
        return None;
    }
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let body: Vec<String> = m.iter().map(|(k, v)| format!("\"{}\":\"{}\"", escape(k), escape(v))).collect();
    Some(format!("{{{}}}", body.join(",")))
}

/// What a scan lists: the rows whose key matches every pattern, the first
/// one walked in the catalog, at most `limit` of them.
#[derive(Debug, Clone, Default)]
struct Selection {
    patterns: Vec<PathPattern>,
    limit: Option<usize>,
}

impl Selection {
    fn walked(&self) -> PathPattern {
        self.patterns.first().cloned().unwrap_or_else(PathPattern::all)
    }

    fn page(&self) -> Page {
        // With a second pattern to check, the walk cannot stop early.
        Page::new(self.limit.filter(|_| self.patterns.len() <= 1), 0)
    }

    /// The rows the walk listed that the other patterns match, at most `limit`.
    fn finish<T>(&self, mut rows: Vec<T>, path: impl Fn(&T) -> &catalog::Path) -> Vec<T> {
        rows.retain(|row| self.patterns.iter().skip(1).all(|p| p.matches(path(row))));
        rows.truncate(self.limit.unwrap_or(usize::MAX));
        rows
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.patterns.iter().enumerate() {
            write!(f, "{} {p}", if i == 0 { " matching" } else { " and" })?;
        }
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

fn rows(instance: &Instance, listing: Listing, selection: &Selection, schema: &SchemaRef) -> Result<RecordBatch> {
    let (pattern, page) = (selection.walked(), selection.page());
    let columns: Vec<ArrayRef> = match listing {
        Listing::Databases => {
            let dbs = selection.finish(instance.catalog().list_databases(&pattern), |row| &row.path);
            let interval = instance.config().engine.time_partition_ms;
            vec![
                Arc::new(dbs.iter().map(|d| Some(d.path.to_string())).collect::<StringArray>()),
                Arc::new(Int64Array::from(vec![interval; dbs.len()])),
                Arc::new(dbs.iter().map(|d| instance.ttl_ms(&d.path.to_string())).collect::<Int64Array>()),
            ]
        }
        Listing::Devices => {
            let devices = selection.finish(instance.catalog().list_devices(&pattern, page), |row| &row.path);
            vec![
                Arc::new(devices.iter().map(|d| Some(d.path.to_string())).collect::<StringArray>()),
                Arc::new(devices.iter().map(|d| Some(d.database.to_string())).collect::<StringArray>()),
                Arc::new(devices.iter().map(|d| Some(d.aligned)).collect::<BooleanArray>()),
            ]
        }
        Listing::Timeseries => {
            let series = selection.finish(instance.catalog().list_series(&pattern, page), |row| &row.path);
            let text = |f: &dyn Fn(&catalog::SeriesInfo) -> Option<String>| Arc::new(series.iter().map(f).collect::<StringArray>()) as ArrayRef;
            vec![
                text(&|s| Some(s.path.to_string())),
                text(&|s| s.alias.clone()),
                text(&|s| Some(s.database.to_string())),
                text(&|s| Some(s.device_path().to_string())),
                text(&|s| Some(s.handle.data_type.to_string())),
                text(&|s| Some(s.handle.encoding.to_string())),
                text(&|s| Some(s.handle.compression.to_string())),
                text(&|s| json_map(&s.tags)),
                text(&|s| json_map(&s.attributes)),
            ]
        }
        Listing::Nodes => {
            let nodes = selection.finish(instance.catalog().list_nodes(&pattern, page), |row| &row.path);
            vec![
                Arc::new(nodes.iter().map(|n| Some(n.path.to_string())).collect::<StringArray>()),
                Arc::new(nodes.iter().map(|n| Some(n.path.last())).collect::<StringArray>()),
                Arc::new(nodes.iter().map(|n| Some(n.node_type.name())).collect::<StringArray>()),
            ]
        }
    };
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Schema `arbor`: the system tables.
#[derive(Debug)]
pub struct SystemSchemaProvider {
    instance: Arc<Instance>,
}

impl SystemSchemaProvider {
    pub fn new(instance: Arc<Instance>) -> Self {
        SystemSchemaProvider { instance }
    }
}

#[async_trait]
impl SchemaProvider for SystemSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        [Listing::Databases, Listing::Devices, Listing::Timeseries, Listing::Nodes].iter().map(|l| l.name().to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(Listing::of(name).map(|listing| system_table(self.instance.clone(), listing)))
    }

    fn table_exist(&self, name: &str) -> bool {
        Listing::of(name).is_some()
    }
}

/// The system table `listing` (TSQL's listings scan it directly).
pub(crate) fn system_table(instance: Arc<Instance>, listing: Listing) -> Arc<dyn TableProvider> {
    Arc::new(SystemTable { instance, listing })
}

/// One system table.
#[derive(Debug)]
struct SystemTable {
    instance: Arc<Instance>,
    listing: Listing,
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        self.listing.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match PathMatches::column_and_pattern(f) {
                Some((column, _)) if column == self.listing.key() => TableProviderFilterPushDown::Exact,
                _ => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(&self, _state: &dyn DfSession, projection: Option<&Vec<usize>>, filters: &[Expr], limit: Option<usize>) -> Result<Arc<dyn ExecutionPlan>> {
        let full = self.listing.schema();
        let schema = match projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full.clone(),
        };
        let mut patterns = Vec::new();
        for (column, pattern) in filters.iter().filter_map(PathMatches::column_and_pattern) {
            if column == self.listing.key() {
                patterns.push(PathPattern::parse(pattern).map_err(|e| DataFusionError::External(Box::new(e)))?);
            }
        }
        let properties =
            PlanProperties::new(EquivalenceProperties::new(schema.clone()), Partitioning::UnknownPartitioning(1), EmissionType::Final, Boundedness::Bounded);
        Ok(Arc::new(SystemTableExec {
            instance: self.instance.clone(),
            listing: self.listing,
            selection: Selection { patterns, limit },
            projection: projection.cloned(),
            schema,
            properties: Arc::new(properties),
        }))
    }
}

/// Reads the catalog when executed.
struct SystemTableExec {
    instance: Arc<Instance>,
    listing: Listing,
    selection: Selection,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for SystemTableExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemTableExec").field("listing", &self.listing).finish_non_exhaustive()
    }
}

impl DisplayAs for SystemTableExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SystemTableExec: arbor.{}{}", self.listing.name(), self.selection)
    }
}

impl ExecutionPlan for SystemTableExec {
    fn name(&self) -> &str {
        "SystemTableExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("SystemTableExec has one partition, not {}", partition + 1)));
        }
        let full = self.listing.schema();
        let batch = rows(&self.instance, self.listing, &self.selection, &full)?;
        let batch = match &self.projection {
            Some(p) => batch.project(p)?,
            None => batch,
        };
        Ok(Box::pin(MemoryStream::try_new(vec![batch], self.schema.clone(), None)?))
    }
}
