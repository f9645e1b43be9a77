//! HTTP/1.1 over a plain socket, for tests that must control the bytes on one connection: slow
//! clients, keep-alive across error answers, requests hyper cannot parse.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawConnection {
    pub stream: TcpStream,
    buffer: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The server announced it closes the connection after this response.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// How a read on the connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// The server closed the connection cleanly (FIN).
    Closed,
    /// The connection was reset.
    Reset,
    /// Nothing happened within the time allowed.
    StillOpen,
}

impl RawConnection {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connects");
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    /// A connection whose receive buffer (and so the window the server may fill) is `bytes`.
    pub async fn connect_with_receive_buffer(addr: SocketAddr, bytes: u32) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(bytes).unwrap();
        let stream = socket.connect(addr).await.expect("connects");
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("request bytes are written");
    }

    /// Sends one request with `Content-Length` (when there is a body) and reads the answer.
    pub async fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
        self.send(&request_bytes(method, path, headers, body)).await;
        self.read_response().await
    }

    /// Reads one response (body by `Content-Length` or chunked); panics when the connection ends
    /// first, naming how.
    pub async fn read_response(&mut self) -> RawResponse {
        tokio::time::timeout(Duration::from_secs(20), self.read_response_inner())
            .await
            .expect("a response within 20 s")
    }

    async fn read_response_inner(&mut self) -> RawResponse {
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at;
            }
            self.fill().await;
        };
        let head = String::from_utf8(self.buffer[..head_end].to_vec()).expect("response head is ASCII");
        self.buffer.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        let no_body = status == 204 || status == 304 || (100..200).contains(&status);
        if no_body {
            return response;
        }
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            response.body = self.read_chunked().await;
        } else {
            let length: usize = response
                .header("content-length")
                .map(|v| v.parse().unwrap())
                .expect("content-length or chunked");
            while self.buffer.len() < length {
                self.fill().await;
            }
            response.body = self.buffer.drain(..length).collect();
        }
        response
    }

    async fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(at) = find(&self.buffer, b"\r\n") {
                    break at;
                }
                self.fill().await;
            };
            let size_text = String::from_utf8(self.buffer[..line_end].to_vec()).unwrap();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
            self.buffer.drain(..line_end + 2);
            while self.buffer.len() < size + 2 {
                self.fill().await;
            }
            body.extend(self.buffer.drain(..size));
            self.buffer.drain(..2);
            if size == 0 {
                return body;
            }
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk).await {
            Ok(0) => panic!(
                "the server closed the connection before a complete response (had {:?})",
                String::from_utf8_lossy(&self.buffer)
            ),
            Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("reading the response failed: {e}"),
        }
    }

    /// Waits up to `within` for the server to close the connection, discarding anything it sends.
    pub async fn wait_for_close(&mut self, within: Duration) -> ReadEnd {
        let deadline = Instant::now() + within;
        let mut chunk = [0u8; 16384];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Err(_) => return ReadEnd::StillOpen,
                Ok(Ok(0)) => return ReadEnd::Closed,
                Ok(Ok(_)) => continue,
                Ok(Err(_)) => return ReadEnd::Reset,
            }
        }
    }

    /// Bytes received so far and not consumed by a response.
    pub fn unread(&self) -> &[u8] {
        &self.buffer
    }
}

pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: test\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
