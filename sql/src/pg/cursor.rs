//! Server-side cursors (`DECLARE … CURSOR FOR query`, `FETCH`, `MOVE`,
//! `CLOSE`): each keeps its query's output stream open in the session and
//! pulls batches only as `FETCH` asks for rows, so a cursor over a large
//! result holds one batch at a time, never the result. Cursors are
//! forward-only (`NO SCROLL`, as PostgreSQL makes a cursor whose plan
//! cannot run backwards): moving backwards is 55000.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use super::command::Direction;
use crate::error::{Error, Result};

/// One open cursor.
pub(crate) struct Cursor {
    schema: SchemaRef,
    /// `None` once a `FETCH ALL` handed the rest of the stream to its output.
    /// (In a mutex only so the session is `Sync`; it is reached through
    /// `&mut self`, never locked.)
    stream: Option<Mutex<SendableRecordBatchStream>>,
    /// Rows of the last batch read that no FETCH has returned yet.
    pending: Option<RecordBatch>,
    /// Rows moved past so far (the current row's 1-based number; 0 before
    /// the first), counted by the output stream after a `FETCH ALL`.
    position: Arc<AtomicU64>,
    /// `WITH HOLD`: stays open after the transaction that declared it ends.
    pub(crate) hold: bool,
}

/// `schema` marked for binary results (a `BINARY` cursor's rows).
fn binary_schema(schema: SchemaRef) -> SchemaRef {
    let mut metadata = schema.metadata().clone();
    metadata.insert(crate::output::BINARY_RESULTS_KEY.to_string(), "true".to_string());
    Arc::new(schema.as_ref().clone().with_metadata(metadata))
}

/// What a FETCH or MOVE produced.
pub(crate) enum Fetched {
    /// The rows, read already (at most the count asked for).
    Rows(Vec<RecordBatch>, u64),
    /// Every remaining row, streamed as the client reads them.
    Rest(SendableRecordBatchStream),
}

fn backward() -> Error {
    Error::CursorState("cursor can only scan forward".into())
}

impl Cursor {
    /// A cursor over `stream`; a `binary` cursor's rows go to a
    /// simple-query client in binary, as PostgreSQL's `DECLARE … BINARY`.
    pub(crate) fn new(stream: SendableRecordBatchStream, hold: bool, binary: bool) -> Self {
        let schema = if binary { binary_schema(stream.schema()) } else { stream.schema() };
        Cursor { schema, stream: Some(Mutex::new(stream)), pending: None, position: Arc::new(AtomicU64::new(0)), hold }
    }

    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn position(&self) -> u64 {
        self.position.load(Ordering::Relaxed)
    }

    /// The next batch with rows, `None` at the end.
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(b) = self.pending.take() {
            return Ok(Some(b));
        }
        let Some(stream) = self.stream.as_mut() else { return Ok(None) };
        let stream = stream.get_mut().map_err(|_| Error::Unsupported("internal error: cursor poisoned".into()))?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            if batch.num_rows() > 0 {
                return Ok(Some(batch));
            }
        }
        self.stream = None;
        Ok(None)
    }

    /// Up to `n` next rows, kept (`keep`) or skipped; the count moved.
    async fn forward(&mut self, n: u64, keep: bool) -> Result<(Vec<RecordBatch>, u64)> {
        let mut out = Vec::new();
        let mut moved = 0u64;
        while moved < n {
            let Some(batch) = self.next_batch().await? else { break };
            let want = usize::try_from(n - moved).unwrap_or(usize::MAX);
            let take = want.min(batch.num_rows());
            if take < batch.num_rows() {
                self.pending = Some(batch.slice(take, batch.num_rows() - take));
            }
            if keep {
                out.push(batch.slice(0, take));
            }
            moved += take as u64;
        }
        self.position.fetch_add(moved, Ordering::Relaxed);
        Ok((out, moved))
    }

    /// Carry out one FETCH (`keep`) or MOVE.
    pub(crate) async fn fetch(&mut self, direction: Direction, keep: bool) -> Result<Fetched> {
        match direction {
            Direction::Forward(n) => self.forward(n, keep).await.map(|(b, n)| Fetched::Rows(b, n)),
            Direction::Backward | Direction::Current => Err(backward()),
            Direction::Absolute(0) if self.position() == 0 => Ok(Fetched::Rows(Vec::new(), 0)),
            Direction::Absolute(n) if n <= self.position() => Err(backward()),
            Direction::Absolute(n) => {
                let skip = n - 1 - self.position();
                let (_, skipped) = self.forward(skip, false).await?;
                if skipped < skip {
                    return Ok(Fetched::Rows(Vec::new(), 0));
                }
                self.forward(1, keep).await.map(|(b, n)| Fetched::Rows(b, n))
            }
            Direction::Last => {
                let mut last: Option<RecordBatch> = None;
                let mut moved = 0u64;
                while let Some(batch) = self.next_batch().await? {
                    moved += batch.num_rows() as u64;
                    last = Some(batch.slice(batch.num_rows() - 1, 1));
                }
                self.position.fetch_add(moved, Ordering::Relaxed);
                let n = u64::from(last.is_some());
                Ok(Fetched::Rows(if keep { last.into_iter().collect() } else { Vec::new() }, n))
            }
            Direction::All if !keep => self.forward(u64::MAX, false).await.map(|(b, n)| Fetched::Rows(b, n)),
            Direction::All => {
                let pending = self.pending.take();
                let rest = self.stream.take();
                let position = self.position.clone();
                let head = futures::stream::iter(pending.map(Ok));
                let tail: SendableRecordBatchStream = match rest.map(Mutex::into_inner) {
                    Some(Ok(s)) => s,
                    Some(Err(_)) => return Err(Error::Unsupported("internal error: cursor poisoned".into())),
                    None => Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures::stream::empty())),
                };
                let counted = head.chain(tail).inspect(move |b| {
                    if let Ok(b) = b {
                        position.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
                    }
                });
                Ok(Fetched::Rest(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), counted))))
            }
        }
    }
}

/// A session's open cursors, by name.
#[derive(Default)]
pub(crate) struct Cursors {
    open: HashMap<String, Cursor>,
}

/// Most cursors one session may hold open: each keeps a running query.
pub(crate) const CURSORS_MAX: usize = 1024;

impl Cursors {
    pub(crate) fn declare(&mut self, name: &str, cursor: Cursor) -> Result<()> {
        if self.open.contains_key(name) {
            return Err(Error::DuplicateCursor(format!("cursor \"{name}\" already exists")));
        }
        if self.open.len() >= CURSORS_MAX {
            return Err(Error::Unsupported(format!("more than {CURSORS_MAX} open cursors in one session; close some")));
        }
        self.open.insert(name.to_string(), cursor);
        Ok(())
    }

    pub(crate) fn get(&mut self, name: &str) -> Result<&mut Cursor> {
        self.open.get_mut(name).ok_or_else(|| Error::UnknownCursor(format!("cursor \"{name}\" does not exist")))
    }

    pub(crate) fn close(&mut self, name: &str) -> Result<()> {
        self.open.remove(name).map(drop).ok_or_else(|| Error::UnknownCursor(format!("cursor \"{name}\" does not exist")))
    }

    pub(crate) fn close_all(&mut self) {
        self.open.clear();
    }

    /// The end of a transaction: cursors without `WITH HOLD` close.
    pub(crate) fn end_transaction(&mut self) {
        self.open.retain(|_, c| c.hold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    /// A cursor over 0..total in batches of `size`.
    fn cursor(total: i64, size: i64) -> Cursor {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batches: Vec<_> = (0..total)
            .step_by(size as usize)
            .map(|s| Ok(RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from_iter_values(s..(s + size).min(total)))]).unwrap()))
            .collect();
        Cursor::new(Box::pin(RecordBatchStreamAdapter::new(schema, futures::stream::iter(batches))), false, false)
    }

    async fn values(f: Fetched) -> Vec<i64> {
        let batches = match f {
            Fetched::Rows(b, _) => b,
            Fetched::Rest(s) => s.map(|b| b.unwrap()).collect().await,
        };
        batches.iter().flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec()).collect()
    }

    #[tokio::test]
    async fn fetch_and_move_walk_forward_across_batches() {
        let mut c = cursor(10, 4);
        assert_eq!(values(c.fetch(Direction::Forward(3), true).await.unwrap()).await, [0, 1, 2]);
        assert_eq!(values(c.fetch(Direction::Forward(2), true).await.unwrap()).await, [3, 4]);
        assert!(matches!(c.fetch(Direction::Forward(1), false).await.unwrap(), Fetched::Rows(b, 1) if b.is_empty()));
        assert_eq!(values(c.fetch(Direction::Absolute(8), true).await.unwrap()).await, [7]);
        assert!(matches!(c.fetch(Direction::Absolute(2), true).await, Err(Error::CursorState(_))));
        assert!(matches!(c.fetch(Direction::Backward, true).await, Err(Error::CursorState(_))));
        assert_eq!(values(c.fetch(Direction::All, true).await.unwrap()).await, [8, 9]);
        assert_eq!(c.position(), 10);
        assert_eq!(values(c.fetch(Direction::Forward(5), true).await.unwrap()).await, Vec::<i64>::new());
        let mut c = cursor(10, 4);
        assert_eq!(values(c.fetch(Direction::Last, true).await.unwrap()).await, [9]);
        let mut c = cursor(3, 4);
        assert_eq!(values(c.fetch(Direction::Absolute(5), true).await.unwrap()).await, Vec::<i64>::new());
    }

    #[test]
    fn cursor_names_are_unique_and_closed_with_the_transaction() {
        let mut cs = Cursors::default();
        cs.declare("a", cursor(1, 1)).unwrap();
        assert!(matches!(cs.declare("a", cursor(1, 1)), Err(Error::DuplicateCursor(_))));
        let mut held = cursor(1, 1);
        held.hold = true;
        cs.declare("h", held).unwrap();
        cs.end_transaction();
        assert!(matches!(cs.get("a"), Err(Error::UnknownCursor(_))));
        assert!(cs.get("h").is_ok());
        assert!(matches!(cs.close("a"), Err(Error::UnknownCursor(_))));
        cs.close("h").unwrap();
    }
}
