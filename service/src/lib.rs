//! hex-core data plane.
//!
//! Hexagonal layout: `domain` holds plain types, `ports` the traits the core needs, `usecases` what
//! the service does; `registry`, `validation`, `auth` and `http` are adapters at the edge, and
//! `server` serves `http`'s routers on the listeners; `app` wires them together from `config`.

pub mod app;
pub mod auth;
pub mod config;
pub mod domain;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod ports;
pub mod registry;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod termination;
pub mod usecases;
pub mod validation;
