//! The HTTP/1.1 protocol logic shared by the greenhub server
//! (`examples/http_server.rs`) and its tokio twin (`examples/http_tokio.rs`),
//! so that a benchmark of the two compares the runtimes, not two parsers.
//!
//! Everything here is pure (no IO): a [`Session`] owns a connection's input
//! buffer and output bytes; the IO layer reads into
//! [`Session::read_buf`], reports the count with [`Session::filled`], calls
//! [`Session::step`] and does what the returned [`Next`] says, writing
//! [`Session::out`] before every read and before closing. Requests are parsed
//! with `httparse`.
//!
//! Behaviour (the same in both servers):
//!
//! - keep-alive: HTTP/1.1 keeps the connection unless the request says
//!   `Connection: close`; HTTP/1.0 closes unless it says
//!   `Connection: keep-alive` (answered with `Connection: keep-alive`).
//! - pipelining: [`Session::step`] answers every complete request in the
//!   buffer, in order, before asking for more bytes, so several requests in
//!   one read get one write; a request split across reads is assembled.
//! - routes: `GET`/`HEAD` of `/` or `/plaintext` gives `Hello, World!`
//!   (`text/plain`), of `/json` gives `{"message":"Hello, World!"}`
//!   (`application/json`); another method on those paths gives 405 with
//!   `Allow: GET, HEAD`; any other path 404. The query string is ignored.
//! - request bodies with `Content-Length` are read and discarded (up to
//!   [`Limits::max_body`], else 413); `Expect: 100-continue` gets a
//!   `100 Continue` first. `Transfer-Encoding` (chunked) bodies are not
//!   supported: 501, then close. Both `Transfer-Encoding` and
//!   `Content-Length`, or two different `Content-Length`s: 400.
//! - errors: a malformed request (or an HTTP/1.1 request without `Host`) gets
//!   400, a head over [`Limits::max_header_bytes`] or with more than
//!   [`MAX_HEADERS`] headers gets 431; after an error response the
//!   connection is closed ([`Next::Close`]).
//! - responses carry `Content-Type` and `Content-Length`, no `Date` and no
//!   `Server` header, and are byte-exact (see [`response`]).

use std::fmt;
use std::io::Write as _;

/// The most headers a request may have; one more gives 431.
pub const MAX_HEADERS: usize = 64;

/// The body of `/` and `/plaintext`.
pub const PLAINTEXT: &[u8] = b"Hello, World!";

/// The body of `/json`.
pub const JSON: &[u8] = br#"{"message":"Hello, World!"}"#;

/// The status codes the servers send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 100: go on sending the body (after `Expect: 100-continue`).
    Continue,
    /// 200.
    Ok,
    /// 400: the request could not be parsed, or is ambiguous.
    BadRequest,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists, not for this method.
    MethodNotAllowed,
    /// 408: the request head (or body) did not arrive in time.
    RequestTimeout,
    /// 413: the body is over [`Limits::max_body`].
    PayloadTooLarge,
    /// 431: the head is over [`Limits::max_header_bytes`] or has more than
    /// [`MAX_HEADERS`] headers.
    HeadersTooLarge,
    /// 501: a `Transfer-Encoding` body (chunked), which is not supported.
    NotImplemented,
}

impl Status {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Status::Continue => 100,
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::PayloadTooLarge => 413,
            Status::HeadersTooLarge => 431,
            Status::NotImplemented => 501,
        }
    }

    /// The reason phrase (also the body of error responses).
    pub fn reason(self) -> &'static str {
        match self {
            Status::Continue => "Continue",
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::PayloadTooLarge => "Payload Too Large",
            Status::HeadersTooLarge => "Request Header Fields Too Large",
            Status::NotImplemented => "Not Implemented",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.reason())
    }
}

/// Size limits on requests.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The most bytes a request head (request line and headers, with the
    /// blank line) may take; more gives 431. Default 8 KiB.
    pub max_header_bytes: usize,
    /// The largest `Content-Length` accepted; more gives 413. Default 1 MiB.
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header_bytes: 8 * 1024,
            max_body: 1024 * 1024,
        }
    }
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/` or `/plaintext`.
    Plaintext,
    /// `/json`.
    Json,
    /// A known path with a method other than `GET` or `HEAD`.
    MethodNotAllowed,
    /// Any other path.
    NotFound,
}

/// A parsed request head: what the response depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The route.
    pub route: Route,
    /// A `HEAD` request: the response has headers only.
    pub head_only: bool,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// An HTTP/1.0 request.
    pub http10: bool,
    /// The body's length (`Content-Length`, 0 without one).
    pub body: u64,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// The head's length in bytes, blank line included.
    pub len: usize,
}

/// The outcome of [`parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet (and within the limits).
    Partial,
    /// A complete head.
    Complete(Head),
    /// Refuse the request with this status and close.
    Reject(Status),
}

/// Parses the request head at the start of `buf` with `httparse`.
pub fn parse(buf: &[u8], limits: &Limits) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_header_bytes => {
            return Parsed::Reject(Status::HeadersTooLarge);
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Reject(Status::HeadersTooLarge),
        Err(_) => return Parsed::Reject(Status::BadRequest),
    };
    if len > limits.max_header_bytes {
        return Parsed::Reject(Status::HeadersTooLarge);
    }
    let http10 = req.version == Some(0);
    let (mut close, mut keep_alive, mut host, mut expect_continue) = (false, false, false, false);
    let mut chunked = false;
    let mut length: Option<u64> = None;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let Some(n) = parse_length(h.value) else {
                return Parsed::Reject(Status::BadRequest);
            };
            if length.is_some_and(|l| l != n) {
                return Parsed::Reject(Status::BadRequest);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("host") {
            host = true;
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        }
    }
    if chunked {
        // Both framings at once is a request-smuggling vector: refuse it.
        return Parsed::Reject(if length.is_some() {
            Status::BadRequest
        } else {
            Status::NotImplemented
        });
    }
    if !http10 && !host {
        return Parsed::Reject(Status::BadRequest);
    }
    let body = length.unwrap_or(0);
    if body > limits.max_body {
        return Parsed::Reject(Status::PayloadTooLarge);
    }
    // `parse` returned Complete, so the method and the path are set.
    let method = req.method.unwrap_or("");
    let path = req.path.unwrap_or("");
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let head_only = method == "HEAD";
    let readable = method == "GET" || head_only;
    let route = match path {
        "/" | "/plaintext" if readable => Route::Plaintext,
        "/json" if readable => Route::Json,
        "/" | "/plaintext" | "/json" => Route::MethodNotAllowed,
        _ => Route::NotFound,
    };
    Parsed::Complete(Head {
        route,
        head_only,
        keep_alive: if http10 { keep_alive && !close } else { !close },
        http10,
        body,
        expect_continue,
        len,
    })
}

/// A `Content-Length` value: ASCII digits only (no sign, no spaces inside).
fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Appends a response to `out`: status line, `Content-Type`,
/// `Content-Length`, `Allow` for 405, `Connection` when it is not the
/// protocol's default (`close` when closing, `keep-alive` to an HTTP/1.0
/// client that keeps the connection), a blank line, and `body` unless
/// `head_only`.
///
/// ```text
/// HTTP/1.1 200 OK\r\n
/// Content-Type: text/plain\r\n
/// Content-Length: 13\r\n
/// \r\n
/// Hello, World!
/// ```
pub fn response(
    out: &mut Vec<u8>,
    status: Status,
    content_type: &str,
    body: &[u8],
    connection: Option<&str>,
    head_only: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{}", status.code());
    out.push(b' ');
    out.extend_from_slice(status.reason().as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    let _ = write!(out, "{}", body.len());
    out.extend_from_slice(b"\r\n");
    if status == Status::MethodNotAllowed {
        out.extend_from_slice(b"Allow: GET, HEAD\r\n");
    }
    if let Some(c) = connection {
        out.extend_from_slice(b"Connection: ");
        out.extend_from_slice(c.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// Appends the response to `head`; `close` says the connection closes after
/// it.
pub fn respond(out: &mut Vec<u8>, head: &Head, close: bool) {
    let (status, content_type, body) = match head.route {
        Route::Plaintext => (Status::Ok, "text/plain", PLAINTEXT),
        Route::Json => (Status::Ok, "application/json", JSON),
        Route::MethodNotAllowed => (
            Status::MethodNotAllowed,
            "text/plain",
            Status::MethodNotAllowed.reason().as_bytes(),
        ),
        Route::NotFound => (
            Status::NotFound,
            "text/plain",
            Status::NotFound.reason().as_bytes(),
        ),
    };
    let connection = if close {
        Some("close")
    } else if head.http10 {
        Some("keep-alive")
    } else {
        None
    };
    response(out, status, content_type, body, connection, head.head_only);
}

/// Appends the error response for `status` (its reason phrase as a
/// `text/plain` body, `Connection: close`).
pub fn error_response(out: &mut Vec<u8>, status: Status) {
    response(
        out,
        status,
        "text/plain",
        status.reason().as_bytes(),
        Some("close"),
        false,
    );
}

/// What a connection is waiting for when it must read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Between requests: no byte of the next request is buffered (the
    /// keep-alive idle timeout applies, or the header timeout for the first
    /// request of a connection).
    Idle,
    /// Part of a request head is buffered (the header timeout applies);
    /// `fresh` is true the first time a head is reported partial, when the
    /// IO layer starts its deadline.
    Head {
        /// The head just became partial: start its deadline now.
        fresh: bool,
    },
    /// A request body is being read and discarded.
    Body,
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The client closed between requests.
    ClientClosed,
    /// The client closed in the middle of a request.
    ClientClosedMidRequest,
    /// The connection was reset, or the client stopped reading (broken
    /// pipe).
    Reset,
    /// A request asked to close (`Connection: close`, or HTTP/1.0).
    NoKeepAlive,
    /// Refused with this status (400, 408, 413, 431, 501), then closed.
    Rejected(Status),
    /// No new request within the idle (keep-alive) timeout.
    IdleTimeout,
    /// The server is shutting down.
    Stopping,
}

/// What the IO layer does next. In every case it first writes
/// [`Session::out`] if it is not empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Read more bytes into [`Session::read_buf`].
    Read(Phase),
    /// Close the connection: shut down the write half, drain what the
    /// client still sends for a moment (so that the response is not lost to
    /// a reset), close.
    Close(End),
}

/// One connection's protocol state: buffered input, pending output, the
/// request whose body is being discarded.
#[derive(Debug)]
pub struct Session {
    limits: Limits,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    /// A request whose body is being discarded; answered once it is.
    pending: Option<Head>,
    body_left: u64,
    head_partial: bool,
    requests: u64,
}

impl Session {
    /// A session with an input buffer sized for `limits` (the largest head
    /// plus room for pipelined requests).
    pub fn new(limits: Limits) -> Session {
        Session {
            limits,
            buf: vec![0; (limits.max_header_bytes + 8 * 1024).max(16 * 1024)],
            start: 0,
            end: 0,
            out: Vec::with_capacity(4096),
            pending: None,
            body_left: 0,
            head_partial: false,
            requests: 0,
        }
    }

    /// The free part of the input buffer, to read into (moves buffered bytes
    /// to the front first if needed). Never empty.
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // A partial head is shorter than max_header_bytes (else 431) and
        // body bytes are consumed as they come, so there is always room.
        debug_assert!(self.end < self.buf.len());
        &mut self.buf[self.end..]
    }

    /// Records that `n` bytes were read into [`read_buf`](Self::read_buf).
    pub fn filled(&mut self, n: usize) {
        self.end += n;
        debug_assert!(self.end <= self.buf.len());
    }

    /// The bytes to write before the next read or the close.
    pub fn out(&self) -> &[u8] {
        &self.out
    }

    /// Forgets the written output.
    pub fn clear_out(&mut self) {
        self.out.clear();
    }

    /// The number of requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Queues the error response for `status` (e.g. 408 when the IO layer's
    /// header deadline passed); the caller then closes.
    pub fn reject(&mut self, status: Status) {
        error_response(&mut self.out, status);
    }

    /// Answers every complete request in the buffer (appending the
    /// responses to [`out`](Self::out)) and says what to do next. With
    /// `stopping`, the next response says `Connection: close` and the
    /// connection closes at the next request boundary.
    pub fn step(&mut self, stopping: bool) -> Next {
        loop {
            if let Some(head) = self.pending {
                let take = self.body_left.min((self.end - self.start) as u64);
                self.start += take as usize;
                self.body_left -= take;
                if self.body_left > 0 {
                    return Next::Read(Phase::Body);
                }
                self.pending = None;
                if let Some(end) = self.answer(&head, stopping) {
                    return Next::Close(end);
                }
                continue;
            }
            if self.start == self.end {
                self.head_partial = false;
                return if stopping {
                    Next::Close(End::Stopping)
                } else {
                    Next::Read(Phase::Idle)
                };
            }
            match parse(&self.buf[self.start..self.end], &self.limits) {
                Parsed::Partial => {
                    let fresh = !std::mem::replace(&mut self.head_partial, true);
                    return Next::Read(Phase::Head { fresh });
                }
                Parsed::Reject(status) => {
                    self.reject(status);
                    return Next::Close(End::Rejected(status));
                }
                Parsed::Complete(head) => {
                    self.head_partial = false;
                    self.start += head.len;
                    if head.body > 0 {
                        if head.expect_continue && self.start == self.end {
                            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        }
                        self.body_left = head.body;
                        self.pending = Some(head);
                    } else if let Some(end) = self.answer(&head, stopping) {
                        return Next::Close(end);
                    }
                }
            }
        }
    }

    /// Appends the response; returns how the connection ends if it closes.
    fn answer(&mut self, head: &Head, stopping: bool) -> Option<End> {
        let close = !head.keep_alive || stopping;
        respond(&mut self.out, head, close);
        self.requests += 1;
        match (close, stopping) {
            (false, _) => None,
            (true, true) => Some(End::Stopping),
            (true, false) => Some(End::NoKeepAlive),
        }
    }
}
