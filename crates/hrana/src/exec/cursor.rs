//! The `/v3/cursor` executor's sink: turns a batch run into `CursorEntry` values (step_begin,
//! rows, step_end or step_error) handed one at a time to the caller, who writes JSON lines.

use super::batch::BatchSink;
use super::error::StmtError;
use super::stmt::{Outcome, RowSink};
use crate::proto::{Col, CursorEntry, Value};

/// Emits entries through `emit`; `emit` returning false means the client is gone.
pub(crate) struct CursorSink<'a> {
    emit: &'a mut dyn FnMut(CursorEntry) -> bool,
    step: u32,
    begun: bool,
}

impl<'a> CursorSink<'a> {
    pub(crate) fn new(emit: &'a mut dyn FnMut(CursorEntry) -> bool) -> Self {
        CursorSink {
            emit,
            step: 0,
            begun: false,
        }
    }
}

impl RowSink for CursorSink<'_> {
    fn begin(&mut self, cols: Vec<Col>) -> bool {
        self.begun = true;
        (self.emit)(CursorEntry::StepBegin {
            step: self.step,
            cols,
        })
    }
    fn row(&mut self, row: Vec<Value>) -> bool {
        (self.emit)(CursorEntry::Row { row })
    }
}

impl BatchSink for CursorSink<'_> {
    fn start_step(&mut self, step: u32) {
        self.step = step;
        self.begun = false;
    }
    fn step_ok(&mut self, outcome: &Outcome) -> bool {
        (self.emit)(CursorEntry::StepEnd {
            affected_row_count: outcome.affected_row_count,
            last_insert_rowid: outcome.last_insert_rowid,
        })
    }
    fn step_error(&mut self, error: StmtError) -> bool {
        (self.emit)(CursorEntry::StepError {
            step: self.step,
            error: error.to_proto(),
        })
    }
    fn skipped(&mut self) {}
}
