//! PostgreSQL's rule for a scalar subquery: it yields at most one row, and a
//! second one is error 21000, "more than one row returned by a subquery used
//! as an expression" ([`Error::CardinalityViolation`]), never a silent pick.
//!
//! [`single_value`] is the aggregate that enforces it: the value of the only
//! row, NULL for none, the error on a second. [`SingleRowRule`], an analyzer
//! rule, puts it over every uncorrelated scalar subquery whose plan may give
//! more than one row; [`super::decorrelate`] calls it per key in the lookups
//! it joins (correlated subqueries). DataFusion's own check
//! (`ScalarSubqueryExec`) fails with an untyped execution error, which the
//! server could tell only by its text.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Expr, LogicalPlan, LogicalPlanBuilder, Signature, Subquery, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use crate::error::Error;

/// The aggregate's name, as [`super::decorrelate`] calls it in SQL.
pub(crate) const SINGLE_VALUE: &str = "arbor_single_value";

/// The value of a group's only row; NULL for no row; error 21000 on a second.
pub(crate) fn single_value() -> Arc<AggregateUDF> {
    static UDAF: OnceLock<Arc<AggregateUDF>> = OnceLock::new();
    UDAF.get_or_init(|| Arc::new(AggregateUDF::new_from_impl(SingleValue { signature: Signature::any(1, Volatility::Immutable) }))).clone()
}

fn more_than_one_row() -> DataFusionError {
    DataFusionError::External(Box::new(Error::CardinalityViolation("more than one row returned by a subquery used as an expression".into())))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SingleValue {
    signature: Signature,
}

impl AggregateUDFImpl for SingleValue {
    fn name(&self) -> &str {
        SINGLE_VALUE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types.first().cloned().unwrap_or(DataType::Null))
    }

    /// The argument's field, marks included (an `oid` stays an `oid` on the
    /// wire), NULL allowed for no row.
    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        let field = arg_fields.first().map_or_else(|| Field::new(self.name(), DataType::Null, true), |f| f.as_ref().clone().with_nullable(true));
        Ok(Arc::new(field))
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SingleValueAccumulator { value: ScalarValue::try_from(acc_args.return_field.data_type())?, rows: 0 }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(format_state_name(args.name, "value"), args.return_type().clone(), true)),
            Arc::new(Field::new(format_state_name(args.name, "rows"), DataType::UInt64, false)),
        ])
    }
}

/// The rows seen (0 or 1) and the value of the one.
#[derive(Debug)]
struct SingleValueAccumulator {
    value: ScalarValue,
    rows: u64,
}

impl SingleValueAccumulator {
    /// Take row `row` of `values` as `rows` more rows (a partial state may carry 0).
    fn take(&mut self, values: &ArrayRef, row: usize, rows: u64) -> Result<()> {
        if rows == 0 {
            return Ok(());
        }
        if self.rows + rows > 1 {
            return Err(more_than_one_row());
        }
        self.value = ScalarValue::try_from_array(values, row)?;
        self.rows = 1;
        Ok(())
    }
}

impl Accumulator for SingleValueAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = &values[0];
        // Every row counts, NULL or not: two NULL rows are two rows.
        for row in 0..values.len() {
            self.take(values, row, 1)?;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let rows = states[1].as_primitive::<UInt64Type>();
        for row in 0..rows.len() {
            self.take(&states[0], row, if rows.is_null(row) { 0 } else { rows.value(row) })?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.value.clone(), ScalarValue::UInt64(Some(self.rows))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.value.size() - size_of_val(&self.value)
    }
}

/// Puts [`single_value`] over each uncorrelated scalar subquery (in any
/// clause) whose plan may yield more than one row: `(SELECT x FROM t)`
/// becomes `(SELECT arbor_single_value(x) AS x FROM (SELECT x FROM t))`, its
/// column keeping its name and type. Correlated subqueries are left to
/// DataFusion's decorrelation and [`super::decorrelate`].
#[derive(Debug, Default)]
pub(crate) struct SingleRowRule;

impl AnalyzerRule for SingleRowRule {
    fn name(&self) -> &str {
        "arbor_single_row_subqueries"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let rewritten = plan.map_expressions(|e| e.transform_up(single_row))?;
            if rewritten.transformed {
                rewritten.map_data(LogicalPlan::recompute_schema)
            } else {
                Ok(rewritten)
            }
        })
        .map(|t| t.data)
    }
}

fn single_row(e: Expr) -> Result<Transformed<Expr>> {
    let Expr::ScalarSubquery(subquery) = e else { return Ok(Transformed::no(e)) };
    let plan = subquery.subquery.as_ref();
    let one_column = plan.schema().fields().len() == 1;
    if !subquery.outer_ref_columns.is_empty() || !one_column || plan.max_rows().is_some_and(|n| n <= 1) {
        return Ok(Transformed::no(Expr::ScalarSubquery(subquery)));
    }
    let (qualifier, field) = plan.schema().qualified_field(0);
    let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
    let value = Expr::AggregateFunction(AggregateFunction::new_udf(single_value(), vec![column], false, None, vec![], None)).alias(field.name());
    let single = LogicalPlanBuilder::from(plan.clone()).aggregate(Vec::<Expr>::new(), vec![value])?.build()?;
    Ok(Transformed::yes(Expr::ScalarSubquery(Subquery { subquery: Arc::new(single), outer_ref_columns: vec![], spans: subquery.spans })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, UInt64Array};

    fn accumulator() -> SingleValueAccumulator {
        SingleValueAccumulator { value: ScalarValue::Int32(None), rows: 0 }
    }

    fn is_cardinality_violation(e: &DataFusionError) -> bool {
        matches!(e, DataFusionError::External(inner) if matches!(inner.downcast_ref::<Error>(), Some(Error::CardinalityViolation(_))))
    }

    #[test]
    fn one_row_is_its_value_and_a_second_is_21000() {
        let mut a = accumulator();
        assert_eq!(a.evaluate().unwrap(), ScalarValue::Int32(None));
        let one: ArrayRef = Arc::new(Int32Array::from(vec![7]));
        a.update_batch(&[one]).unwrap();
        assert_eq!(a.evaluate().unwrap(), ScalarValue::Int32(Some(7)));
        let e = a.update_batch(&[Arc::new(Int32Array::from(vec![None]))]).unwrap_err();
        assert!(is_cardinality_violation(&e), "{e}");
        // Two NULL rows in one batch are two rows.
        let e = accumulator().update_batch(&[Arc::new(Int32Array::from(vec![None, None]))]).unwrap_err();
        assert!(is_cardinality_violation(&e), "{e}");
    }

    #[test]
    fn partial_states_count_their_rows() {
        let values: ArrayRef = Arc::new(Int32Array::from(vec![None, Some(5), Some(6)]));
        let mut a = accumulator();
        a.merge_batch(&[values.slice(0, 2), Arc::new(UInt64Array::from(vec![0, 1]))]).unwrap();
        assert_eq!(a.evaluate().unwrap(), ScalarValue::Int32(Some(5)));
        let e = a.merge_batch(&[values.slice(2, 1), Arc::new(UInt64Array::from(vec![1]))]).unwrap_err();
        assert!(is_cardinality_violation(&e), "{e}");
    }
}
