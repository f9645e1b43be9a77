//! hex-core operator: reconciles `ModelCatalog` and `HexCoreService` into running data planes.
//!
//! - [`crd`]: the custom resources; [`crdgen`] renders them as the YAML under `crds/`.
//! - [`catalog`], [`secrets`], [`desired`]: pure functions from a HexCoreService and its inputs
//!   to the merged catalog, what its Secrets contribute, and the typed children.
//! - [`observe`] → [`decide`] → [`act`]: one HexCoreService reconcile; `decide` is pure
//!   (conditions, reasons, what to write), [`apply`] holds the server-side apply it uses.
//! - [`replicas`]: what each replica reports, and the refresh call; [`pods`]: why pods do not run.
//! - [`catalog_status`]: the ModelCatalog's status.
//! - [`render`]: the same objects from YAML files, without a cluster (`hex-core-operator render`).
//! - [`controller`]: watches and reconcilers; [`operator`]: leader election, health and metrics.
//! - [`rbac`]: the exact API permissions the operator uses.

pub mod act;
pub mod apply;
pub mod catalog;
pub mod catalog_status;
pub mod conditions;
pub mod controller;
pub mod crd;
pub mod crdgen;
pub mod decide;
pub mod desired;
pub mod lease;
pub mod metrics;
pub mod observe;
pub mod operator;
pub mod pods;
pub mod quantity;
pub mod rbac;
pub mod render;
pub mod replicas;
pub mod secrets;
pub mod settings;
#[cfg(test)]
mod testing;
pub mod watch_health;
