//! CORS for browser clients (`CORS_ALLOWED_ORIGINS`, off by default): tower-http's `CorsLayer`
//! answers preflights and adds the headers to every answer, errors included, so a browser can
//! read a 401 or 422 envelope too.

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::{CorsConfig, CorsOrigins};

pub fn layer(config: &CorsConfig) -> CorsLayer {
    let origins =
        match &config.origins {
            CorsOrigins::Any => AllowOrigin::any(),
            CorsOrigins::List(origins) => AllowOrigin::list(origins.iter().map(|origin| {
                HeaderValue::from_str(origin).expect("origins are checked when the configuration is read")
            })),
        };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::HEAD, Method::POST])
        // What the API reads from a request (besides the CORS-safelisted ones).
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static(super::REQUEST_ID_HEADER),
        ])
        // What a browser script may read from an answer.
        .expose_headers([
            header::ETAG,
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("idempotency-replayed"),
            HeaderName::from_static(super::REQUEST_ID_HEADER),
        ])
        .allow_credentials(config.allow_credentials)
        .max_age(config.max_age)
}
