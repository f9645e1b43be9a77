//! hex-core operator: reconciles `ModelCatalog` and `HexCoreService` into running data planes.
//!
//! - [`crd`]: the custom resources; [`crdgen`] renders them as the YAML under `crds/`.
//! - [`desired`]: pure desired-state functions (catalog merge, ConfigMaps, Deployment, ...).
//! - [`apply`]: the thin server-side-apply layer that writes only what changed.
//! - [`refresh`]: verified catalog delivery to every ready replica.
//! - [`render`]: the same objects from YAML files, without a cluster (`hex-core-operator render`).
//! - [`controller`]: the reconcilers; [`operator`]: leader election, health and metrics server.

pub mod apply;
pub mod conditions;
pub mod controller;
pub mod crd;
pub mod crdgen;
pub mod desired;
pub mod lease;
pub mod metrics;
pub mod operator;
pub mod quantity;
pub mod refresh;
pub mod render;
