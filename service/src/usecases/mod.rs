//! Use cases: what the service does, independent of HTTP.

pub mod records;
pub mod validate;
pub mod validation_pool;
