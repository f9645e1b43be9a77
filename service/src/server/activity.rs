//! What one connection is doing right now, shared by the socket wrapper, the request service and
//! the connection driver, so the driver can apply the one timeout that fits: header read, idle,
//! stalled write, or none while a request is being served.
//!
//! HTTP/1.1 serves one request at a time per connection, so the state is a small phase machine:
//!
//! ```text
//! Fresh ──first byte──► Head ──head parsed──► Serving ──response body done──► Flushing
//!   ▲                    ▲                                                       │
//!   └ accept             └──first byte──── Idle ◄────response written and flushed┘
//! ```

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

use super::request_body::Leftover;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Accepted, nothing received yet.
    Fresh = 0,
    /// A response was sent and flushed; waiting for the next request.
    Idle = 1,
    /// Part of a request head has arrived.
    Head = 2,
    /// The service is handling a request (its body included).
    Serving = 3,
    /// The response body is complete; hyper is writing out what it buffered.
    Flushing = 4,
}

impl Phase {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Fresh,
            1 => Self::Idle,
            2 => Self::Head,
            3 => Self::Serving,
            _ => Self::Flushing,
        }
    }

    /// Outside a request hyper writes only its own automatic error responses (400, 414, 431 for
    /// a request it cannot parse), which the socket wrapper replaces with the JSON envelope.
    pub fn between_requests(self) -> bool {
        matches!(self, Self::Fresh | Self::Idle | Self::Head)
    }
}

/// Why the driver closes a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A new connection sent no complete request head within the header timeout.
    NoRequest,
    /// A request head started but did not complete within the header timeout (answered 408).
    SlowHead,
    /// No request for the idle timeout after the last response.
    Idle,
    /// The client has not accepted a single byte of the response for the idle timeout.
    StalledWrite,
    /// The connection limit was reached and this connection was idle.
    Pressure,
}

impl Expiry {
    pub const ALL: [Self; 5] = [
        Self::NoRequest,
        Self::SlowHead,
        Self::Idle,
        Self::StalledWrite,
        Self::Pressure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoRequest => "no_request",
            Self::SlowHead => "header_timeout",
            Self::Idle => "idle_timeout",
            Self::StalledWrite => "write_stalled",
            Self::Pressure => "connection_limit",
        }
    }
}

/// The timeouts the driver applies, from `SERVER_*` (config::ConnectionConfig).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
}

pub struct Activity {
    started: Instant,
    phase: AtomicU8,
    /// When the current phase's timer started, in ms since `started`.
    since_ms: AtomicU64,
    /// When a write last returned `Pending` without progress since, in ms since `started` plus
    /// one; 0 when writes are flowing.
    write_blocked_ms: AtomicU64,
    /// Status of an automatic response hyper tried to write between requests (0: none).
    automatic_response: AtomicU16,
    /// The client closed its sending side.
    eof: AtomicBool,
    /// The current request sent `Expect: 100-continue`.
    expects_continue: AtomicBool,
    /// A request body the handler dropped before its end, for the service to drain or give up.
    leftover: Mutex<Option<Leftover>>,
}

impl Activity {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            phase: AtomicU8::new(Phase::Fresh as u8),
            since_ms: AtomicU64::new(0),
            write_blocked_ms: AtomicU64::new(0),
            automatic_response: AtomicU16::new(0),
            eof: AtomicBool::new(false),
            expects_continue: AtomicBool::new(false),
            leftover: Mutex::new(None),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Relaxed))
    }

    fn enter(&self, phase: Phase) {
        self.since_ms.store(self.now_ms(), Relaxed);
        self.phase.store(phase as u8, Relaxed);
    }

    /// Bytes arrived from the client.
    pub fn on_bytes_read(&self) {
        match self.phase() {
            // The header timer of a new connection runs from accept, as in Go's net/http.
            Phase::Fresh => self.phase.store(Phase::Head as u8, Relaxed),
            Phase::Idle => self.enter(Phase::Head),
            _ => {}
        }
    }

    pub fn on_eof(&self) {
        self.eof.store(true, Relaxed);
    }

    pub fn saw_eof(&self) -> bool {
        self.eof.load(Relaxed)
    }

    /// hyper parsed a request head and called the service.
    pub fn on_request(&self, expects_continue: bool) {
        self.expects_continue.store(expects_continue, Relaxed);
        self.enter(Phase::Serving);
    }

    pub fn expects_continue(&self) -> bool {
        self.expects_continue.load(Relaxed)
    }

    /// hyper dropped the response body: everything is in its write buffer.
    pub fn on_response_done(&self) {
        self.enter(Phase::Flushing);
    }

    /// hyper flushed the socket, which it does only once its write buffer is empty.
    pub fn on_flushed(&self) {
        if self.phase() == Phase::Flushing {
            self.enter(Phase::Idle);
        }
    }

    pub fn on_write_blocked(&self) {
        if self.write_blocked_ms.load(Relaxed) == 0 {
            self.write_blocked_ms.store(self.now_ms() + 1, Relaxed);
        }
    }

    pub fn on_write_progress(&self) {
        self.write_blocked_ms.store(0, Relaxed);
    }

    pub fn record_automatic_response(&self, status: u16) {
        self.automatic_response.store(status, Relaxed);
    }

    pub fn automatic_response(&self) -> Option<u16> {
        match self.automatic_response.load(Relaxed) {
            0 => None,
            status => Some(status),
        }
    }

    pub fn put_leftover(&self, leftover: Leftover) {
        *self.leftover.lock().unwrap_or_else(|e| e.into_inner()) = Some(leftover);
    }

    pub fn take_leftover(&self) -> Option<Leftover> {
        self.leftover.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The next moment the driver must look again, and what expires then.
    pub fn deadline(&self, timeouts: &Timeouts) -> Option<(Instant, Expiry)> {
        let at = |ms: u64, after: Duration| self.started + Duration::from_millis(ms) + after;
        let since = self.since_ms.load(Relaxed);
        match self.phase() {
            Phase::Fresh => Some((at(since, timeouts.header_read), Expiry::NoRequest)),
            Phase::Head => Some((at(since, timeouts.header_read), Expiry::SlowHead)),
            Phase::Idle => Some((at(since, timeouts.idle), Expiry::Idle)),
            Phase::Serving | Phase::Flushing => match self.write_blocked_ms.load(Relaxed) {
                0 => None,
                blocked => Some((at(blocked - 1, timeouts.idle), Expiry::StalledWrite)),
            },
        }
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(120),
    };

    #[test]
    fn phases_pick_their_timeouts() {
        let activity = Activity::new();
        let start = activity.started;
        let (at, expiry) = activity.deadline(&TIMEOUTS).unwrap();
        assert_eq!((at - start, expiry), (Duration::from_secs(10), Expiry::NoRequest));

        std::thread::sleep(Duration::from_millis(30));
        activity.on_bytes_read();
        let (at, expiry) = activity.deadline(&TIMEOUTS).unwrap();
        assert_eq!(expiry, Expiry::SlowHead);
        assert_eq!(
            at - start,
            Duration::from_secs(10),
            "the first head's timer runs from accept"
        );

        activity.on_request(false);
        assert_eq!(activity.deadline(&TIMEOUTS), None, "no timer while serving");
        assert!(!activity.phase().between_requests());
        activity.on_write_blocked();
        assert_eq!(activity.deadline(&TIMEOUTS).unwrap().1, Expiry::StalledWrite);
        activity.on_write_progress();
        activity.on_response_done();
        assert_eq!(activity.deadline(&TIMEOUTS), None);
        activity.on_flushed();
        let (at, expiry) = activity.deadline(&TIMEOUTS).unwrap();
        assert_eq!(expiry, Expiry::Idle);
        let idle_since = at - start - TIMEOUTS.idle;
        assert!(idle_since >= Duration::from_millis(30) && idle_since < Duration::from_secs(1));
        assert!(activity.phase().between_requests());

        std::thread::sleep(Duration::from_millis(30));
        activity.on_bytes_read();
        let (at, expiry) = activity.deadline(&TIMEOUTS).unwrap();
        assert_eq!(expiry, Expiry::SlowHead);
        let head_since = at - start - TIMEOUTS.header_read;
        assert!(
            head_since >= idle_since + Duration::from_millis(30),
            "a later head's timer runs from its first byte"
        );
    }
}
