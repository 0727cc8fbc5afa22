//! Serde wire types for Hrana over HTTP (v2 and v3 JSON) and the legacy sqld HTTP shapes.
//! Our own types rather than the `libsql-hrana` crate: it pulls prost/bytes for Protobuf we do
//! not serve, requires `Error.code`, and rejects padded base64 that `@libsql/client` sends.

pub mod legacy;
mod pipeline;
mod shared;
mod value;

pub use pipeline::{
    CursorEntry, CursorReqBody, CursorRespBody, PipelineReqBody, PipelineRespBody, StreamRequest,
    StreamResponse, StreamResult,
};
pub use shared::{
    Batch, BatchCond, BatchResult, BatchStep, Col, DescribeCol, DescribeParam, DescribeResult,
    Error, NamedArg, Stmt, StmtResult,
};
pub use value::{encode_base64, Value, BASE64};
