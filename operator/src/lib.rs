//! hex-core operator: reconciles `ModelCatalog` and `HexCoreService` into running data planes.
//!
//! The custom resources and the reconcilers arrive with the operator issue; this crate currently
//! holds the binary's entry point and the integration-test support for the real control plane.
