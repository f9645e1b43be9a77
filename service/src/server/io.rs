//! The socket as hyper sees it: reads and writes pass through, and on the way they tell the
//! connection's [`Activity`] when a request head starts, when the response is flushed and when
//! the client stops accepting bytes.
//!
//! It also swallows the bare automatic responses hyper writes for requests it cannot parse (400
//! with an empty body, 414, 431): between requests hyper writes nothing else, and the connection
//! driver answers with the JSON error envelope instead once hyper gives the socket back.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::activity::Activity;

pub struct WatchedIo {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl WatchedIo {
    pub fn new(stream: TcpStream, activity: Arc<Activity>) -> Self {
        Self { stream, activity }
    }

    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// hyper's automatic response, when this write is one: it starts with a status line while no
    /// request is being served.
    fn automatic_response(&self, first: &[u8]) -> Option<u16> {
        if !self.activity.phase().between_requests() || !first.starts_with(b"HTTP/1.") {
            return None;
        }
        let status = first.get(9..12)?;
        std::str::from_utf8(status).ok()?.parse().ok()
    }

    fn after_write(&self, result: Poll<std::io::Result<usize>>) -> Poll<std::io::Result<usize>> {
        match &result {
            Poll::Pending => self.activity.on_write_blocked(),
            Poll::Ready(_) => self.activity.on_write_progress(),
        }
        result
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            if buf.filled().len() > before {
                self.activity.on_bytes_read();
            } else if buf.remaining() > 0 {
                self.activity.on_eof();
            }
        }
        result
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if let Some(status) = self.automatic_response(buf) {
            self.activity.record_automatic_response(status);
            return Poll::Ready(Ok(buf.len()));
        }
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.after_write(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty()).map(|b| &b[..]).unwrap_or(&[]);
        if let Some(status) = self.automatic_response(first) {
            self.activity.record_automatic_response(status);
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.after_write(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.stream).poll_flush(cx);
        if let Poll::Ready(Ok(())) = result {
            self.activity.on_flushed();
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
