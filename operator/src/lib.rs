//! hex-core operator: reconciles `ModelCatalog` and `HexCoreService` into running data planes.

pub mod lease;
