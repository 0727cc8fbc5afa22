//! HTTP handlers, one file per resource.

pub mod admin;
pub mod cluster;
pub mod events;
pub mod hooks;
pub mod moves;
pub mod ops;
pub mod tokens;
