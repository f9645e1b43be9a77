//! hex-core data plane.
//!
//! Hexagonal layout: `domain` holds plain types, `ports` the traits the core needs, `usecases` what
//! the service does; `registry`, `validation`, `auth` and `http` are adapters at the edge; `app`
//! wires them together from `config`.

pub mod app;
pub mod auth;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod ports;
pub mod registry;
pub mod store;
pub mod telemetry;
pub mod termination;
pub mod usecases;
pub mod validation;
