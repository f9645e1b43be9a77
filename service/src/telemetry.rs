//! Structured logging: JSON lines by default (one event per decision), plain text on request.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(level: &str, format: LogFormat) {
    // Our crate logs at the configured level; noisy dependencies stay at warn.
    let filter = EnvFilter::try_new(format!("warn,hex_core_service={level},hex_core_service::http={level}"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
