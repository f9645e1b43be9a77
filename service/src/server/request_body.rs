//! The request body as handlers see it: the whole body must arrive within the body-read timeout
//! of the handler's first read, and a body the handler does not read to the end is handed back to
//! the connection, which drains it (bounded) so the connection stays usable, or closes it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

use super::activity::Activity;

/// A request body failed: it did not arrive in time, or the connection broke.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error("the request body did not arrive within {} ms (SERVER_BODY_READ_TIMEOUT_MS)", .0.as_millis())]
    TimedOut(Duration),
    #[error(transparent)]
    Connection(#[from] hyper::Error),
}

impl RequestBodyError {
    /// The body-read timeout, when `error` (or anything it wraps) is this timeout.
    pub fn timeout_in(error: &(dyn std::error::Error + 'static)) -> Option<Duration> {
        if let Some(Self::TimedOut(timeout)) = error.downcast_ref::<Self>() {
            return Some(*timeout);
        }
        error.source().and_then(Self::timeout_in)
    }
}

/// What is left of a body its handler dropped early.
pub struct Leftover {
    body: Incoming,
    /// The handler read from it (so a `100 Continue` was sent).
    polled: bool,
    deadline: Option<Instant>,
}

pub struct TrackedBody {
    inner: Option<Incoming>,
    timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    /// The body was read to its end (or broke: hyper closes the connection then).
    finished: bool,
    timed_out: bool,
    activity: Arc<Activity>,
}

impl TrackedBody {
    pub fn new(inner: Incoming, timeout: Duration, activity: Arc<Activity>) -> Self {
        let finished = inner.is_end_stream();
        Self {
            inner: Some(inner),
            timeout,
            deadline: None,
            finished,
            timed_out: false,
            activity,
        }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.finished || this.timed_out {
            return Poll::Ready(None);
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let timeout = this.timeout;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.as_ref().is_some_and(Body::is_end_stream) {
                    this.finished = true;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                // A broken body leaves the connection unusable; hyper closes it.
                this.finished = true;
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Pending => match deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    // Reported as the end of this body; what is left goes back to the connection on
                    // drop, where the passed deadline makes it close (`Connection: close`).
                    this.timed_out = true;
                    Poll::Ready(Some(Err(RequestBodyError::TimedOut(timeout))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished || self.timed_out
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(inner) if !self.is_end_stream() => inner.size_hint(),
            _ => SizeHint::with_exact(0),
        }
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some(body) = self.inner.take() {
            self.activity.put_leftover(Leftover {
                body,
                polled: self.deadline.is_some(),
                deadline: self.deadline.as_ref().map(|sleep| sleep.deadline()),
            });
        }
    }
}

/// Reads and discards what is left of a request body, so the connection can serve the next
/// request. False when it cannot be done within `max_bytes` and the body-read deadline; the
/// caller then closes the connection (`Connection: close`).
pub async fn drain(leftover: Leftover, expects_continue: bool, max_bytes: u64, timeout: Duration) -> bool {
    let Leftover {
        mut body,
        polled,
        deadline,
    } = leftover;
    // Reading a body the client has not sent yet would ask it for the body (100 Continue) only to
    // throw it away; closing is cheaper and what the client expects after an early final status.
    if expects_continue && !polled {
        return false;
    }
    if body.size_hint().lower() > max_bytes {
        return false;
    }
    let deadline = deadline.unwrap_or_else(|| Instant::now() + timeout);
    let mut drained: u64 = 0;
    let reading = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                drained += data.len() as u64;
                if drained > max_bytes {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout_at(deadline, reading).await.unwrap_or(false)
}
