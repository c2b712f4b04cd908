//! Gap filling for the SQL surface (`date_bin_gapfill`, as Grafana and
//! InfluxDB users write it): above an aggregate grouped by a time bucket
//! (and perhaps other keys), every bucket of the query's time range is
//! emitted for every group, missing ones with NULL aggregates, or with the
//! last value carried forward (`locf`) or interpolated on time
//! (`interpolate`). Output: by group, then time.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, TimestampMillisecondArray, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, take};
use datafusion::arrow::datatypes::{DataType as ArrowType, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchemaRef, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream};

use super::fill::{fill_linear, fill_previous, Carry};
use super::MAX_WINDOWS;
use crate::time::{add_months, Zone};

/// A bucket width: calendar months or a fixed number of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stride {
    Months(i64),
    Millis(i64),
}

/// How a column of missing buckets is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GapFillKind {
    /// The last value of the group carried forward.
    Locf,
    /// Linear interpolation between the group's neighbouring values.
    Interpolate,
}

/// What the gap filler needs to know about its input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GapFillSpec {
    /// The bucket column.
    pub time: usize,
    /// The other group columns.
    pub groups: Vec<usize>,
    pub stride: Stride,
    pub origin: i64,
    /// The first and last time of the query's range (inclusive).
    pub range: (i64, i64),
    pub fills: Vec<(usize, GapFillKind)>,
}

impl GapFillSpec {
    /// The buckets of the range: from the one holding its start to the one
    /// holding its end.
    fn buckets(&self) -> Result<Vec<i64>> {
        let (lo, hi) = self.range;
        let mut out = Vec::new();
        match self.stride {
            Stride::Millis(w) => {
                let first = self.origin + (lo - self.origin).div_euclid(w) * w;
                let mut b = first;
                while b <= hi {
                    out.push(b);
                    b += w;
                    if out.len() as i64 > MAX_WINDOWS {
                        return Err(DataFusionError::Plan(format!("date_bin_gapfill makes more than {MAX_WINDOWS} buckets")));
                    }
                }
            }
            Stride::Months(m) => {
                // The bucket holding `lo`: step whole strides from the origin.
                let mut k: i64 = 0;
                while add_months(self.origin, k * m, Zone::UTC) > lo {
                    k -= 1;
                }
                while add_months(self.origin, (k + 1) * m, Zone::UTC) <= lo {
                    k += 1;
                }
                while add_months(self.origin, k * m, Zone::UTC) <= hi {
                    out.push(add_months(self.origin, k * m, Zone::UTC));
                    k += 1;
                    if out.len() as i64 > MAX_WINDOWS {
                        return Err(DataFusionError::Plan(format!("date_bin_gapfill makes more than {MAX_WINDOWS} buckets")));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Logical node: the input (an aggregate) with every bucket of every group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapFill {
    pub input: LogicalPlan,
    pub spec: GapFillSpec,
}

impl Hash for GapFill {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.spec.hash(state);
    }
}

super::partial_ord_by_eq!(GapFill);

impl UserDefinedLogicalNodeCore for GapFill {
    fn name(&self) -> &str {
        "GapFill"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "GapFill: stride={:?}, range={}..={}, fills={:?}", self.spec.stride, self.spec.range.0, self.spec.range.1, self.spec.fills)
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> Result<Self> {
        let input = inputs.pop().ok_or_else(|| DataFusionError::Plan("GapFill needs an input".into()))?;
        Ok(GapFill { input, spec: self.spec.clone() })
    }

    fn necessary_children_exprs(&self, _output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        None
    }
}

/// Computes [`GapFill`] (collects the aggregate's rows: one per bucket and group).
#[derive(Debug)]
pub struct GapFillExec {
    input: Arc<dyn ExecutionPlan>,
    spec: GapFillSpec,
    properties: Arc<PlanProperties>,
}

impl GapFillExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, spec: GapFillSpec) -> Self {
        let schema = input.schema();
        let properties = super::one_partition(schema, EmissionType::Final);
        GapFillExec { input, spec, properties }
    }
}

impl DisplayAs for GapFillExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GapFillExec: stride={:?}, range={}..={}", self.spec.stride, self.spec.range.0, self.spec.range.1)
    }
}

fn fill_gaps(all: &RecordBatch, spec: &GapFillSpec) -> Result<Vec<RecordBatch>> {
    let schema = all.schema();
    let time_type = schema.field(spec.time).data_type().clone();
    let ArrowType::Timestamp(_, tz) = &time_type else {
        return Err(DataFusionError::Plan("date_bin_gapfill needs a timestamp".into()));
    };
    let millis = cast(all.column(spec.time), &ArrowType::Timestamp(TimeUnit::Millisecond, tz.clone()))?;
    let times = millis.as_primitive::<TimestampMillisecondType>();
    let buckets = spec.buckets()?;
    // Rows by group (the group columns' values), then by bucket.
    let mut groups: BTreeMap<Vec<String>, BTreeMap<i64, u32>> = BTreeMap::new();
    for row in 0..all.num_rows() {
        let key = spec
            .groups
            .iter()
            .map(|g| ScalarValue::try_from_array(all.column(*g), row).map(|v| v.to_string()))
            .collect::<Result<Vec<_>>>()?;
        if times.is_valid(row) {
            groups.entry(key).or_default().insert(times.value(row), row as u32);
        }
    }
    if groups.is_empty() && spec.groups.is_empty() {
        groups.insert(Vec::new(), BTreeMap::new());
    }
    let mut out = Vec::with_capacity(groups.len());
    for rows in groups.values() {
        let any_row = rows.values().next().copied();
        let picks: Vec<Option<u32>> = buckets.iter().map(|b| rows.get(b).copied()).collect();
        let indices = UInt32Array::from(picks);
        let group_rows = UInt32Array::from(vec![any_row; buckets.len()]);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(all.num_columns());
        for (c, column) in all.columns().iter().enumerate() {
            if c == spec.time {
                let ms = TimestampMillisecondArray::from(buckets.clone()).with_timezone_opt(tz.clone());
                columns.push(cast(&ms, &time_type)?);
            } else if spec.groups.contains(&c) {
                columns.push(take(column.as_ref(), &group_rows, None)?);
            } else if !schema.field(c).is_nullable() {
                // Counts: 0 in a bucket without rows.
                let taken = take(column.as_ref(), &indices, None)?;
                let zeros = cast(&datafusion::arrow::array::Int64Array::from(vec![0i64; taken.len()]), taken.data_type())?;
                columns.push(datafusion::arrow::compute::kernels::zip::zip(&datafusion::arrow::compute::is_not_null(taken.as_ref())?, &taken, &zeros)?);
            } else {
                columns.push(take(column.as_ref(), &indices, None)?);
            }
        }
        let mut batch = RecordBatch::try_new(schema.clone(), columns)?;
        let width = batch.num_columns();
        let not = |kind: GapFillKind| -> Vec<usize> { (0..width).filter(|c| !spec.fills.iter().any(|(f, k)| f == c && *k == kind)).collect() };
        if spec.fills.iter().any(|(_, k)| *k == GapFillKind::Locf) {
            let keep = not(GapFillKind::Locf);
            batch = fill_previous(&batch, None, &keep, &mut Carry::new(width), spec.time)?;
        }
        if spec.fills.iter().any(|(_, k)| *k == GapFillKind::Interpolate) {
            let keep = not(GapFillKind::Interpolate);
            batch = fill_linear(&batch, &keep, spec.time)?;
        }
        out.push(batch);
    }
    Ok(out)
}

impl ExecutionPlan for GapFillExec {
    fn name(&self) -> &str {
        "GapFillExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn required_input_distribution(&self) -> Vec<datafusion::physical_plan::Distribution> {
        vec![datafusion::physical_plan::Distribution::SinglePartition]
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let input = super::only_child(children, "GapFillExec")?;
        Ok(Arc::new(GapFillExec::new(input, self.spec.clone())))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        super::first_partition("GapFillExec", partition)?;
        let input = self.input.execute(0, context)?;
        let schema: SchemaRef = self.input.schema();
        let spec = self.spec.clone();
        let out = schema.clone();
        let work = async move {
            let batches = datafusion::physical_plan::common::collect(input).await?;
            let all = concat_batches(&schema, &batches)?;
            fill_gaps(&all, &spec)
        };
        let stream = futures::stream::once(work).map(|r: Result<Vec<RecordBatch>>| match r {
            Ok(v) => futures::stream::iter(v.into_iter().map(Ok)).left_stream(),
            Err(e) => futures::stream::iter(vec![Err(e)]).right_stream(),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(out, stream.flatten())))
    }
}
