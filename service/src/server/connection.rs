//! One accepted connection, from accept to close: hyper serves HTTP/1.1 on it while the driver
//! applies the timeouts hyper does not have (idle apart from header read, stalled writes), honours
//! graceful shutdown and connection-limit pressure, answers what hyper rejects with the JSON error
//! envelope, and closes the socket without losing the last response.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::task::Poll;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::activity::{Activity, Expiry, Phase, Timeouts};
use super::io::WatchedIo;
use super::service::ConnectionService;
use crate::http::error::ApiError;
use crate::metrics::Metrics;

/// The `reason` of `http_connections_closed_total` for a request hyper could not parse (the
/// other reasons are the `Expiry` words).
pub const MALFORMED_REQUEST: &str = "malformed_request";

/// After the last response of a connection that may still have request bytes in flight, keep
/// reading (and discarding) this long before closing, so the kernel does not reset the connection
/// and destroy the response before the client read it (the "lingering close" of Apache and nginx).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Time given to a raw error response (408, parse errors) to reach the socket buffer.
const RAW_RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// What every connection of one listener shares.
pub struct ConnectionContext {
    pub http1: http1::Builder,
    pub timeouts: Timeouts,
    pub shutdown: watch::Receiver<bool>,
    /// Set while a new connection waits for a place: idle connections give way.
    pub pressure: Pressure,
    pub metrics: Arc<Metrics>,
    pub port_label: &'static str,
}

/// The listener's connection limit is reached and a client waits: idle connections close. A
/// flag for connections that become idle later, and a notification for those idle already.
#[derive(Default)]
pub struct Pressure {
    waiting: AtomicBool,
    idle_connections: Notify,
}

impl Pressure {
    pub fn start(&self) {
        self.waiting.store(true, Relaxed);
        self.idle_connections.notify_waiters();
    }

    pub fn end(&self) {
        self.waiting.store(false, Relaxed);
    }

    fn is_on(&self) -> bool {
        self.waiting.load(Relaxed)
    }
}

enum Ending {
    /// hyper finished: the client closed, keep-alive ended, or the request could not be parsed.
    Served(Result<(), hyper::Error>),
    /// The driver closes the connection on its own.
    Expired(Expiry),
    /// Shutdown found the connection between requests.
    Shutdown,
}

pub async fn serve(
    stream: TcpStream,
    context: Arc<ConnectionContext>,
    service: impl FnOnce(Arc<Activity>) -> ConnectionService,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(WatchedIo::new(stream, activity.clone()));
    let mut connection = context.http1.serve_connection(io, service(activity.clone()));
    let ending = drive(&mut connection, &activity, &context).await;
    let stream = connection.into_parts().io.into_inner().into_stream();
    close(stream, ending, &activity, &context).await;
}

async fn drive(
    connection: &mut http1::Connection<TokioIo<WatchedIo>, ConnectionService>,
    activity: &Activity,
    context: &ConnectionContext,
) -> Ending {
    let mut shutdown = context.shutdown.clone();
    let mut shutdown_requested = pin!(super::stopping(&mut shutdown));
    let mut shutting_down = false;
    let pressure = &context.pressure;
    let mut pressure_signal = pin!(pressure.idle_connections.notified());
    let mut timer = pin!(tokio::time::sleep_until(Instant::now()));
    let mut timer_deadline: Option<Instant> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = connection.poll_without_shutdown(cx) {
            return Poll::Ready(Ending::Served(result));
        }
        if !shutting_down && shutdown_requested.as_mut().poll(cx).is_ready() {
            shutting_down = true;
            if matches!(activity.phase(), Phase::Fresh | Phase::Idle) {
                return Poll::Ready(Ending::Shutdown);
            }
            // Finish the request in progress, with `Connection: close`, then stop.
            std::pin::Pin::new(&mut *connection).graceful_shutdown();
            if let Poll::Ready(result) = connection.poll_without_shutdown(cx) {
                return Poll::Ready(Ending::Served(result));
            }
        }
        if shutting_down && matches!(activity.phase(), Phase::Idle) {
            return Poll::Ready(Ending::Shutdown);
        }
        while pressure_signal.as_mut().poll(cx).is_ready() {
            pressure_signal.set(pressure.idle_connections.notified());
        }
        if pressure.is_on() && activity.phase() == Phase::Idle {
            return Poll::Ready(Ending::Expired(Expiry::Pressure));
        }
        match activity.deadline(&context.timeouts) {
            Some((deadline, expiry)) => {
                if timer_deadline != Some(deadline) {
                    timer.as_mut().reset(deadline);
                    timer_deadline = Some(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ending::Expired(expiry));
                }
            }
            None => timer_deadline = None,
        }
        Poll::Pending
    })
    .await
}

async fn close(mut stream: TcpStream, ending: Ending, activity: &Activity, context: &ConnectionContext) {
    let raw_error = match &ending {
        Ending::Served(Err(error)) => {
            tracing::debug!(error = %error, port = context.port_label, "connection ended with an error");
            activity
                .automatic_response()
                .map(|status| rejected_request(status, error))
        }
        Ending::Expired(Expiry::SlowHead) => Some(ApiError::RequestTimeout {
            what: "request head",
            millis: context.timeouts.header_read.as_millis() as u64,
        }),
        _ => None,
    };
    if let Ending::Expired(expiry) = ending {
        tracing::debug!(
            reason = expiry.as_str(),
            port = context.port_label,
            "closing connection"
        );
        context
            .metrics
            .record_connection_closed(context.port_label, expiry.as_str());
    }
    if let Some(error) = &raw_error {
        if !matches!(ending, Ending::Expired(_)) {
            context
                .metrics
                .record_connection_closed(context.port_label, MALFORMED_REQUEST);
        }
        let response = raw_error_response(error);
        let _ = tokio::time::timeout(RAW_RESPONSE_WRITE_TIMEOUT, stream.write_all(&response)).await;
    }
    // After an answer to a client that may still be sending (a body not read, a request hyper
    // refused), wait for it to finish. A slow-headers client is not waited for: it would hold its
    // place for the linger time too, and it is most likely not a real client.
    let client_may_still_send = match ending {
        Ending::Served(_) => !activity.saw_eof(),
        Ending::Expired(_) | Ending::Shutdown => false,
    };
    if client_may_still_send {
        linger(&mut stream).await;
    } else if raw_error.is_some() {
        let _ = stream.shutdown().await;
    }
}

/// Half-closes, then reads until the client closes too (or the linger budget runs out).
async fn linger(stream: &mut TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut discarded = 0;
    let mut buffer = [0u8; 8192];
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while discarded < LINGER_MAX_BYTES {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n,
            }
        }
    })
    .await;
}

/// The error for a request hyper refused to parse, by the status hyper chose.
fn rejected_request(status: u16, error: &hyper::Error) -> ApiError {
    match status {
        431 => ApiError::HeadersTooLarge,
        414 => ApiError::UriTooLong,
        _ => ApiError::MalformedRequest {
            message: format!("the request is not valid HTTP/1.1: {error}"),
        },
    }
}

/// A complete HTTP/1.1 response carrying the error envelope, for the cases hyper never hands to
/// the router.
fn raw_error_response(error: &ApiError) -> Vec<u8> {
    let (status, _) = error.status_and_code();
    let body = error.envelope_bytes();
    let date = httpdate_now();
    let mut response = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\ndate: {date}\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

/// The current time as an HTTP date (RFC 9110 IMF-fixdate).
fn httpdate_now() -> String {
    const IMF_FIXDATE: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::now_utc().format(IMF_FIXDATE).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_responses_carry_the_envelope_and_close() {
        let response = String::from_utf8(raw_error_response(&ApiError::HeadersTooLarge)).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nconnection: close"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let envelope: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(envelope["code"], "REQUEST_HEADER_FIELDS_TOO_LARGE");
        assert!(head.ends_with(" GMT"), "{head}");
    }
}
