//! Hrana over HTTP bodies: `/v2/pipeline` and `/v3/pipeline` (one JSON object each way) and
//! `/v3/cursor` (a JSON request, answered by JSON lines: a `CursorRespBody`, then entries).

use serde::{Deserialize, Serialize};

use super::shared::{Batch, BatchResult, Col, DescribeResult, Error, Stmt, StmtResult};
use super::value::{opt_i64_string, Value};

/// Body of `POST /v2/pipeline` and `POST /v3/pipeline`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineReqBody {
    /// The stream to continue; `null` opens a new stream.
    #[serde(default)]
    pub baton: Option<String>,
    /// Requests executed in order on the stream.
    pub requests: Vec<StreamRequest>,
}

/// Response to a pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineRespBody {
    /// Baton for the next request on this stream; `null` once the stream is closed.
    pub baton: Option<String>,
    /// Absolute URL the client must use for this stream from now on (sticky node), if any.
    pub base_url: Option<String>,
    /// One result per request.
    pub results: Vec<StreamResult>,
}

/// One request on a stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamRequest {
    /// Close the stream (rolling back an open transaction).
    Close,
    /// Execute one statement.
    Execute {
        /// The statement.
        stmt: Stmt,
    },
    /// Execute a batch.
    Batch {
        /// The batch.
        batch: Batch,
    },
    /// Execute semicolon-separated statements, ignoring rows.
    Sequence {
        /// The SQL text (exactly one of `sql` and `sql_id`).
        #[serde(default)]
        sql: Option<String>,
        /// A stored SQL text id.
        #[serde(default)]
        sql_id: Option<i32>,
    },
    /// Describe a statement without running it.
    Describe {
        /// The SQL text (exactly one of `sql` and `sql_id`).
        #[serde(default)]
        sql: Option<String>,
        /// A stored SQL text id.
        #[serde(default)]
        sql_id: Option<i32>,
    },
    /// Store an SQL text under an id, for this stream.
    StoreSql {
        /// The id (must be unused).
        sql_id: i32,
        /// The SQL text.
        sql: String,
    },
    /// Forget a stored SQL text (no error if unknown).
    CloseSql {
        /// The id.
        sql_id: i32,
    },
    /// Ask whether the stream is outside an explicit transaction (Hrana 3).
    GetAutocommit,
}

/// Success of a request, typed like the request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamResponse {
    /// The stream is closed.
    Close,
    /// Result of `execute`.
    Execute {
        /// The result.
        result: StmtResult,
    },
    /// Result of `batch`.
    Batch {
        /// The result.
        result: BatchResult,
    },
    /// `sequence` ran to completion.
    Sequence,
    /// Result of `describe`.
    Describe {
        /// The result.
        result: DescribeResult,
    },
    /// The text is stored.
    StoreSql,
    /// The text is forgotten.
    CloseSql,
    /// Result of `get_autocommit`.
    GetAutocommit {
        /// True outside an explicit transaction.
        is_autocommit: bool,
    },
}

/// Result of one request: success or an in-band error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamResult {
    /// The request succeeded.
    Ok {
        /// Its response.
        response: StreamResponse,
    },
    /// The request failed; the stream stays usable.
    Error {
        /// What went wrong.
        error: Error,
    },
}

/// Body of `POST /v3/cursor`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CursorReqBody {
    /// The stream to continue; `null` opens a new stream.
    #[serde(default)]
    pub baton: Option<String>,
    /// The batch whose results are streamed.
    pub batch: Batch,
}

/// First line of a `/v3/cursor` response.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CursorRespBody {
    /// Baton for the next request on this stream; `null` once closed.
    pub baton: Option<String>,
    /// Sticky URL for this stream, if any.
    pub base_url: Option<String>,
}

/// One following line of a `/v3/cursor` response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CursorEntry {
    /// A step starts producing results.
    StepBegin {
        /// Index of the step in the batch.
        step: u32,
        /// Its result columns.
        cols: Vec<Col>,
    },
    /// The current step finished.
    StepEnd {
        /// Rows changed.
        affected_row_count: u64,
        /// Rowid of the last insert (decimal string) or null.
        #[serde(default, with = "opt_i64_string")]
        last_insert_rowid: Option<i64>,
    },
    /// A step failed (before or after its `step_begin`).
    StepError {
        /// Index of the step in the batch.
        step: u32,
        /// What went wrong.
        error: Error,
    },
    /// One row of the current step.
    Row {
        /// The values.
        row: Vec<Value>,
    },
    /// The whole batch failed; always the last entry.
    Error {
        /// What went wrong.
        error: Error,
    },
}

impl CursorEntry {
    /// This entry as one line of a `/v3/cursor` body (JSON plus `\n`).
    pub fn to_json_line(&self) -> Vec<u8> {
        json_line(self)
    }
}

impl CursorRespBody {
    /// This body as the first line of a `/v3/cursor` response.
    pub fn to_json_line(&self) -> Vec<u8> {
        json_line(self)
    }
}

fn json_line<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain data types into a Vec cannot fail: no maps with non-string keys,
    // no custom serializers that error.
    let mut out = serde_json::to_vec(v).expect("cursor types always serialize");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_request_type_of_the_spec() {
        let body: PipelineReqBody = serde_json::from_value(json!({
            "baton": null,
            "requests": [
                {"type": "execute", "stmt": {"sql": "SELECT 1"}},
                {"type": "batch", "batch": {"steps": [{"stmt": {"sql": "SELECT 1"}}]}},
                {"type": "sequence", "sql": "SELECT 1; SELECT 2"},
                {"type": "describe", "sql_id": 1},
                {"type": "store_sql", "sql_id": 1, "sql": "SELECT 1"},
                {"type": "close_sql", "sql_id": 1},
                {"type": "get_autocommit"},
                {"type": "close"}
            ]
        }))
        .unwrap();
        assert_eq!(body.baton, None);
        assert_eq!(body.requests.len(), 8);
        assert_eq!(body.requests[7], StreamRequest::Close);
        assert_eq!(body.requests[6], StreamRequest::GetAutocommit);
        assert_eq!(
            body.requests[3],
            StreamRequest::Describe {
                sql: None,
                sql_id: Some(1)
            }
        );
    }

    #[test]
    fn unknown_request_type_is_a_parse_error() {
        let r = serde_json::from_value::<PipelineReqBody>(
            json!({"baton": null, "requests": [{"type": "open_cursor"}]}),
        );
        assert!(r.is_err());
    }

    #[test]
    fn response_shapes_match_the_spec() {
        let body = PipelineRespBody {
            baton: Some("b".into()),
            base_url: None,
            results: vec![
                StreamResult::Ok {
                    response: StreamResponse::Close,
                },
                StreamResult::Ok {
                    response: StreamResponse::GetAutocommit {
                        is_autocommit: true,
                    },
                },
                StreamResult::Error {
                    error: Error {
                        message: "m".into(),
                        code: Some("C".into()),
                    },
                },
            ],
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"baton": "b", "base_url": null, "results": [
                {"type": "ok", "response": {"type": "close"}},
                {"type": "ok", "response": {"type": "get_autocommit", "is_autocommit": true}},
                {"type": "error", "error": {"message": "m", "code": "C"}}
            ]})
        );
    }

    #[test]
    fn cursor_lines() {
        let head = CursorRespBody {
            baton: None,
            base_url: Some("http://n1:8080/t/a/".into()),
        };
        assert_eq!(
            head.to_json_line(),
            b"{\"baton\":null,\"base_url\":\"http://n1:8080/t/a/\"}\n".to_vec()
        );
        let end = CursorEntry::StepEnd {
            affected_row_count: 2,
            last_insert_rowid: Some(5),
        };
        assert_eq!(
            end.to_json_line(),
            b"{\"type\":\"step_end\",\"affected_row_count\":2,\"last_insert_rowid\":\"5\"}\n"
                .to_vec()
        );
        let req: CursorReqBody =
            serde_json::from_value(json!({"baton": "x", "batch": {"steps": []}})).unwrap();
        assert_eq!(req.baton.as_deref(), Some("x"));
    }
}
