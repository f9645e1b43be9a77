//! Pure domain types: no I/O, no HTTP. Everything else depends on these, never the reverse.

pub mod catalog;
pub mod model;
pub mod payload;
pub mod query;
pub mod record;
pub mod report;
