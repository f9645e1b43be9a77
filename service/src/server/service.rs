//! The per-connection request service hyper calls: it marks the connection busy, wraps the body
//! (timeout, leftovers), answers `GET /admin/health` without the router, calls the router, and
//! drains or closes when the handler left part of the request body unread.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, Request, Response, header};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::activity::Activity;
use super::request_body::{TrackedBody, drain};

/// What every connection of one listener shares.
pub struct ServiceSettings {
    pub body_read_timeout: Duration,
    /// Most bytes of an unread request body drained to keep a connection (SERVER_REQUEST_MAX_BYTES).
    pub drain_max_bytes: u64,
}

#[derive(Clone)]
pub struct ConnectionService {
    pub router: Router,
    pub activity: Arc<Activity>,
    pub settings: Arc<ServiceSettings>,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let expects_continue = request
            .headers()
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        self.activity.on_request(expects_continue);
        if is_health_probe(&request) {
            // The liveness probe is answered here, before the router and its request id, access
            // log and metrics layers: it is the most frequent request and needs none of them.
            let response = crate::http::admin::health_response().map(|body| ResponseBody::fixed(body, &self.activity));
            return Box::pin(std::future::ready(Ok(response)));
        }
        let activity = self.activity.clone();
        let settings = self.settings.clone();
        let request = request
            .map(|body| axum::body::Body::new(TrackedBody::new(body, settings.body_read_timeout, activity.clone())));
        let mut router = self.router.clone();
        Box::pin(async move {
            let response = match tower::Service::call(&mut router, request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let mut response = response.map(|body| ResponseBody::routed(body, &activity));
            if let Some(leftover) = activity.take_leftover() {
                let drained = drain(
                    leftover,
                    activity.expects_continue(),
                    settings.drain_max_bytes,
                    settings.body_read_timeout,
                )
                .await;
                if !drained {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
            }
            Ok(response)
        })
    }
}

/// `GET /admin/health` without a query or a body (anything else takes the ordinary route).
fn is_health_probe(request: &Request<Incoming>) -> bool {
    request.method() == Method::GET
        && request.uri().path() == "/admin/health"
        && request.uri().query().is_none()
        && request.body().is_end_stream()
}

/// The response body hyper writes; dropping it tells the connection the response is complete.
pub struct ResponseBody {
    kind: ResponseKind,
    activity: Arc<Activity>,
}

enum ResponseKind {
    Routed(axum::body::Body),
    /// A small body known up front (the health probe), without a boxed body.
    Fixed(Option<Bytes>),
}

impl ResponseBody {
    fn routed(body: axum::body::Body, activity: &Arc<Activity>) -> Self {
        Self {
            kind: ResponseKind::Routed(body),
            activity: activity.clone(),
        }
    }

    fn fixed(body: Bytes, activity: &Arc<Activity>) -> Self {
        Self {
            kind: ResponseKind::Fixed(Some(body)),
            activity: activity.clone(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.activity.on_response_done();
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut self.kind {
            ResponseKind::Routed(body) => Pin::new(body).poll_frame(cx),
            ResponseKind::Fixed(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            ResponseKind::Routed(body) => body.is_end_stream(),
            ResponseKind::Fixed(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            ResponseKind::Routed(body) => body.size_hint(),
            ResponseKind::Fixed(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}
