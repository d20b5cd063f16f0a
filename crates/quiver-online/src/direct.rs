//! Online reads from a single Redis server over connections each read holds for its round
//! trip.
//!
//! On redis-rs's multiplexed connection a command is handed to the connection's driver task,
//! which writes it, parses the reply into a tree of `redis::Value`s and hands that back: two
//! task wake-ups per read (often across worker threads), a parse through a general parser,
//! and an allocation per node of the tree. A read is one `MGET`, so the store keeps a small
//! pool of plain TCP connections for it instead: a read takes an idle connection (or opens
//! one), writes its `MGET`, reads the reply in its own task straight into the answer, and
//! puts the connection back. Everything else (writes, scripts, scans) stays on redis-rs.
//!
//! - A connection is returned to the pool only after a whole, well-formed reply. A read that
//!   fails, times out or is dropped by its caller midway takes its connection with it, so no
//!   later read can see the rest of an old reply.
//! - A pooled connection the server closed since its last use (a restart, the server's idle
//!   `timeout`) fails before any byte of the reply: the pool is emptied and the read is sent
//!   once more on a new connection. `MGET` changes nothing, so sending it twice is harmless.
//! - The reply is bounded before it is trusted: an array of exactly as many elements as keys
//!   were sent, each a bulk string of at most [`MAX_BULK`] bytes or a null; header lines of
//!   a few bytes. Anything else is a protocol error and the connection is dropped.
//! - Only plaintext TCP urls take this path; TLS and unix-socket urls read through redis-rs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// How long a read may wait for its whole reply (redis-rs's default response timeout for the
/// connection the rest of the store uses).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long opening a connection (connect, `AUTH`, `SELECT`) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections kept for later reads; more open under a burst and close after it.
const MAX_IDLE: usize = 32;
/// Largest value a reply may hold: Redis's own limit on a string (`proto-max-bulk-len`).
pub const MAX_BULK: usize = 512 << 20;
/// Longest header line (`*N`, `$N`) a reply may hold, and longest error line shown.
const MAX_HEADER_LINE: usize = 32;
const MAX_ERROR_LINE: usize = 512;
/// Bytes a read asks the socket for at least.
const READ_CHUNK: usize = 64 << 10;
/// Largest read buffer an idle connection keeps.
const KEEP_BUFFER: usize = 1 << 20;

/// Where and as whom the pool connects.
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    /// The server as logs and errors may show it (no credentials).
    pub shown: String,
}

impl Target {
    /// The target of a plaintext TCP url; `None` for TLS and unix sockets.
    pub fn of(info: &redis::ConnectionInfo, shown: &str) -> Option<Target> {
        let redis::ConnectionAddr::Tcp(host, port) = info.addr() else { return None };
        let settings = info.redis_settings();
        Some(Target {
            host: host.clone(),
            port: *port,
            username: settings.username().map(str::to_string),
            password: settings.password().map(str::to_string),
            db: settings.db(),
            shown: shown.to_string(),
        })
    }
}

/// The pool of read connections to one server.
pub struct ReadPool {
    target: Target,
    idle: Mutex<Vec<ReadConn>>,
}

impl std::fmt::Debug for ReadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadPool({})", self.target.shown)
    }
}

/// How a round trip failed.
enum Failed {
    /// Before any byte of the reply: the connection was closed or reset, or the write failed.
    /// On a pooled connection this is most likely a connection the server has since closed.
    BeforeReply(std::io::Error),
    /// The store's answer is an error for this read.
    Store(Error),
}

impl ReadPool {
    pub fn new(target: Target) -> Arc<ReadPool> {
        Arc::new(ReadPool { target, idle: Mutex::new(Vec::new()) })
    }

    /// Sends `command` (an encoded `MGET` of `count` keys) and returns each key's value or
    /// `None`, in key order.
    pub async fn mget(&self, command: &[u8], count: usize) -> Result<Vec<Option<Vec<u8>>>> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        if let Some(mut conn) = pooled {
            match self.round_trip(&mut conn, command, count).await {
                Ok(values) => {
                    self.put_back(conn);
                    return Ok(values);
                }
                Err(Failed::Store(e)) => return Err(e),
                Err(Failed::BeforeReply(e)) => {
                    // The server has likely closed its side (a restart): so has every other
                    // idle connection opened before it. A new connection answers or says why.
                    tracing::debug!(error = %e, server = %self.target.shown, "a pooled Redis connection was closed; reconnecting");
                    if let Ok(mut idle) = self.idle.lock() {
                        idle.clear();
                    }
                }
            }
        }
        let mut conn = self.connect().await?;
        match self.round_trip(&mut conn, command, count).await {
            Ok(values) => {
                self.put_back(conn);
                Ok(values)
            }
            Err(Failed::Store(e)) => Err(e),
            Err(Failed::BeforeReply(e)) => Err(self.unavailable(&format!("the connection failed: {e}"))),
        }
    }

    fn put_back(&self, mut conn: ReadConn) {
        // An idle connection keeps a buffer for the usual reply, not the largest one seen.
        if conn.buf.capacity() > KEEP_BUFFER {
            conn.buf = Vec::new();
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }

    fn unavailable(&self, what: &str) -> Error {
        Error::Unavailable(format!("Redis at {}: {what}", self.target.shown))
    }

    async fn round_trip(
        &self,
        conn: &mut ReadConn,
        command: &[u8],
        count: usize,
    ) -> Result<Vec<Option<Vec<u8>>>, Failed> {
        match tokio::time::timeout(RESPONSE_TIMEOUT, conn.mget(command, count)).await {
            Ok(Ok(values)) => Ok(values),
            Ok(Err(ConnError::Io { before_reply: true, error })) => Err(Failed::BeforeReply(error)),
            Ok(Err(e)) => Err(Failed::Store(self.classify(e))),
            Err(_) => Err(Failed::Store(
                self.unavailable(&format!("no answer within {} ms", RESPONSE_TIMEOUT.as_millis())),
            )),
        }
    }

    fn classify(&self, e: ConnError) -> Error {
        match e {
            ConnError::Io { error, .. } => self.unavailable(&format!("the connection failed: {error}")),
            ConnError::Protocol(what) => self.unavailable(&format!(
                "the reply broke Redis's protocol ({what}); the connection was dropped"
            )),
            ConnError::Server(text) => server_error(&self.target.shown, &text),
        }
    }

    /// Opens a connection: TCP, then `AUTH` and `SELECT` as the url asks.
    async fn connect(&self) -> Result<ReadConn> {
        let t = &self.target;
        let open = async {
            let stream = TcpStream::connect((t.host.as_str(), t.port))
                .await
                .map_err(|error| ConnError::Io { before_reply: false, error })?;
            stream.set_nodelay(true).map_err(|error| ConnError::Io { before_reply: false, error })?;
            let mut conn = ReadConn { stream, buf: Vec::new() };
            if let Some(password) = &t.password {
                let mut cmd = Vec::new();
                match &t.username {
                    Some(user) => push_command(&mut cmd, &[b"AUTH", user.as_bytes(), password.as_bytes()]),
                    None => push_command(&mut cmd, &[b"AUTH", password.as_bytes()]),
                }
                conn.status(&cmd).await?;
            }
            if t.db != 0 {
                let mut cmd = Vec::new();
                push_command(&mut cmd, &[b"SELECT", t.db.to_string().as_bytes()]);
                conn.status(&cmd).await?;
            }
            Ok::<_, ConnError>(conn)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.classify(e)),
            Err(_) => Err(self.unavailable(&format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()))),
        }
    }
}

/// An error reply as the store's error: credentials and permissions are configuration
/// (as redis-rs's errors map), a server loading or paused for a failover is unavailable,
/// anything else refused.
fn server_error(shown: &str, text: &str) -> Error {
    let code = text.split(' ').next().unwrap_or_default();
    match code {
        "NOAUTH" | "WRONGPASS" | "NOPERM" => {
            Error::Config(format!("Redis at {shown} refused the credentials of online_store: {text}"))
        }
        "LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN" | "READONLY" => {
            Error::Unavailable(format!("Redis at {shown}: {text}"))
        }
        _ => Error::Refused(format!("Redis at {shown}: {text}")),
    }
}

/// One connection and its read buffer.
struct ReadConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

enum ConnError {
    Io {
        before_reply: bool,
        error: std::io::Error,
    },
    Protocol(&'static str),
    /// An error reply, its text bounded and made printable.
    Server(String),
}

impl ReadConn {
    async fn mget(&mut self, command: &[u8], count: usize) -> Result<Vec<Option<Vec<u8>>>, ConnError> {
        self.stream.write_all(command).await.map_err(|error| ConnError::Io { before_reply: true, error })?;
        self.buf.clear();
        let mut reply = ArrayReply::new(count);
        loop {
            let started = !self.buf.is_empty() || reply.started();
            self.fill(started).await?;
            if reply.feed(&mut self.buf)? {
                if !self.buf.is_empty() {
                    return Err(ConnError::Protocol("bytes after the reply"));
                }
                return Ok(reply.values);
            }
        }
    }

    /// Sends a command whose answer is a status (`+OK`).
    async fn status(&mut self, command: &[u8]) -> Result<(), ConnError> {
        self.stream.write_all(command).await.map_err(|error| ConnError::Io { before_reply: false, error })?;
        self.buf.clear();
        loop {
            self.fill(true).await?;
            if let Some((line, used)) = line(&self.buf, MAX_ERROR_LINE)? {
                let answer = match line.first() {
                    Some(b'+') => Ok(()),
                    Some(b'-') => Err(ConnError::Server(printable(&line[1..]))),
                    _ => Err(ConnError::Protocol("a status reply that is not one")),
                };
                if used != self.buf.len() {
                    return Err(ConnError::Protocol("bytes after the reply"));
                }
                return answer;
            }
        }
    }

    /// Reads more of the reply into the buffer; an end of stream is an error.
    async fn fill(&mut self, started: bool) -> Result<(), ConnError> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) => Err(ConnError::Io {
                before_reply: !started,
                error: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed by the server"),
            }),
            Ok(_) => Ok(()),
            Err(error) => Err(ConnError::Io { before_reply: !started, error }),
        }
    }
}

/// Appends a command in Redis's protocol: an array of bulk strings.
pub fn push_command(out: &mut Vec<u8>, parts: &[&[u8]]) {
    push_header(out, b'*', parts.len());
    for p in parts {
        push_header(out, b'$', p.len());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `*N\r\n` or `$N\r\n`.
pub fn push_header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

/// The next line of `buf` (without its `\r\n`) and the bytes it takes with it; `None` while
/// it is incomplete. A line longer than `max` is a protocol error.
fn line(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, ConnError> {
    let window = &buf[..buf.len().min(max + 2)];
    match window.iter().position(|&b| b == b'\n') {
        Some(end) if end > 0 && window[end - 1] == b'\r' => Ok(Some((&window[..end - 1], end + 1))),
        Some(_) => Err(ConnError::Protocol("a line not ended by CRLF")),
        None if buf.len() >= max + 2 => Err(ConnError::Protocol("a line too long")),
        None => Ok(None),
    }
}

/// A length in a header line: `-1` (null) or a non-negative decimal.
fn length(digits: &[u8]) -> Result<Option<usize>, ConnError> {
    if digits == b"-1" {
        return Ok(None);
    }
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ConnError::Protocol("a length that is not a number"));
    }
    Ok(Some(digits.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0'))))
}

/// Server text as it may be shown: printable ASCII, at most [`MAX_ERROR_LINE`] bytes.
fn printable(text: &[u8]) -> String {
    text.iter()
        .take(MAX_ERROR_LINE)
        .map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '?' })
        .collect()
}

/// An `MGET` reply read as it arrives.
struct ArrayReply {
    count: usize,
    header_seen: bool,
    values: Vec<Option<Vec<u8>>>,
}

impl ArrayReply {
    fn new(count: usize) -> Self {
        ArrayReply { count, header_seen: false, values: Vec::with_capacity(count) }
    }

    fn started(&self) -> bool {
        self.header_seen
    }

    /// Takes every whole element at the front of `buf` out of it; true once the reply is
    /// complete.
    fn feed(&mut self, buf: &mut Vec<u8>) -> Result<bool, ConnError> {
        let mut at = 0;
        let done = loop {
            if !self.header_seen {
                let limit = if buf.first() == Some(&b'-') { MAX_ERROR_LINE } else { MAX_HEADER_LINE };
                let Some((head, used)) = line(&buf[at..], limit)? else { break false };
                match head.first() {
                    Some(b'*') if length(&head[1..])? == Some(self.count) => {}
                    Some(b'*') => {
                        return Err(ConnError::Protocol("an array of another length than the keys sent"));
                    }
                    Some(b'-') => return Err(ConnError::Server(printable(&head[1..]))),
                    _ => return Err(ConnError::Protocol("a reply that is not an array")),
                }
                self.header_seen = true;
                at += used;
            }
            if self.values.len() == self.count {
                break true;
            }
            let Some((head, used)) = line(&buf[at..], MAX_HEADER_LINE)? else { break false };
            match head.first() {
                Some(b'$') => match length(&head[1..])? {
                    None => {
                        self.values.push(None);
                        at += used;
                    }
                    Some(n) if n > MAX_BULK => {
                        return Err(ConnError::Protocol("a value larger than Redis allows"));
                    }
                    Some(n) => {
                        let start = at + used;
                        let Some(end) = start.checked_add(n) else {
                            return Err(ConnError::Protocol("a value larger than Redis allows"));
                        };
                        if buf.len() < end + 2 {
                            break false;
                        }
                        if &buf[end..end + 2] != b"\r\n" {
                            return Err(ConnError::Protocol("a value not ended by CRLF"));
                        }
                        self.values.push(Some(buf[start..end].to_vec()));
                        at = end + 2;
                    }
                },
                // RESP3's null, in case a server speaks it unasked.
                Some(b'_') if head.len() == 1 => {
                    self.values.push(None);
                    at += used;
                }
                _ => return Err(ConnError::Protocol("an element that is not a string or null")),
            }
        };
        buf.drain(..at);
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_of(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        push_header(&mut out, b'*', values.len());
        for v in values {
            match v {
                Some(v) => {
                    push_header(&mut out, b'$', v.len());
                    out.extend_from_slice(v);
                    out.extend_from_slice(b"\r\n");
                }
                None => out.extend_from_slice(b"$-1\r\n"),
            }
        }
        out
    }

    type Values = Vec<Option<Vec<u8>>>;

    /// Feeds `bytes` cut at `cuts`, as reads might deliver them.
    fn feed_in_pieces(count: usize, bytes: &[u8], cuts: &[usize]) -> Result<(bool, Values), ConnError> {
        let mut reply = ArrayReply::new(count);
        let mut buf = Vec::new();
        let mut from = 0;
        let mut done = false;
        for &to in cuts.iter().chain(std::iter::once(&bytes.len())) {
            assert!(!done, "complete before its last byte");
            buf.extend_from_slice(&bytes[from..to]);
            from = to;
            done = reply.feed(&mut buf)?;
        }
        assert!(buf.is_empty() || !done);
        Ok((done, reply.values))
    }

    #[test]
    fn a_reply_parses_the_same_however_the_reads_cut_it() {
        let big = vec![b'\r'; 300];
        let values: Vec<Option<&[u8]>> =
            vec![Some(b"row"), None, Some(b""), Some(&big), Some(b"\r\n$-1\r\n")];
        let bytes = reply_of(&values);
        let expected: Vec<Option<Vec<u8>>> = values.iter().map(|v| v.map(<[u8]>::to_vec)).collect();
        for cut in 0..bytes.len() {
            let (done, got) =
                feed_in_pieces(values.len(), &bytes, &[cut]).unwrap_or_else(|_| panic!("cut {cut}"));
            assert!(done, "cut {cut}");
            assert_eq!(got, expected, "cut {cut}");
        }
        // Byte by byte.
        let cuts: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(feed_in_pieces(values.len(), &bytes, &cuts).unwrap_or_else(|_| panic!()).1, expected);
        // A reply cut short is not complete.
        let (done, _) =
            feed_in_pieces(values.len(), &bytes[..bytes.len() - 1], &[]).unwrap_or_else(|_| panic!());
        assert!(!done);
    }

    fn protocol_error(count: usize, bytes: &[u8]) -> String {
        match feed_in_pieces(count, bytes, &[]) {
            Err(ConnError::Protocol(what)) => what.to_string(),
            Err(ConnError::Server(text)) => format!("server: {text}"),
            Err(ConnError::Io { .. }) => "io".into(),
            Ok((done, v)) => format!("accepted (complete: {done}, {} values)", v.len()),
        }
    }

    #[test]
    fn replies_that_break_the_protocol_or_its_bounds_are_refused() {
        assert_eq!(protocol_error(2, b"*3\r\n"), "an array of another length than the keys sent");
        assert_eq!(protocol_error(1, b"+OK\r\n"), "a reply that is not an array");
        assert_eq!(protocol_error(1, b"*1\r\n:5\r\n"), "an element that is not a string or null");
        assert_eq!(protocol_error(1, b"*1\r\n$3\r\nabcd\r\n"), "a value not ended by CRLF");
        assert_eq!(protocol_error(1, b"*1\r\n$x\r\n"), "a length that is not a number");
        assert_eq!(protocol_error(1, b"*1\r\n$-2\r\n"), "a length that is not a number");
        assert_eq!(protocol_error(1, b"*1\n"), "a line not ended by CRLF");
        assert_eq!(protocol_error(1, b"*1\r\n$536870913\r\n"), "a value larger than Redis allows");
        assert_eq!(protocol_error(1, b"*1\r\n$99999999999999999999\r\n"), "a length that is not a number");
        // A header that never ends is refused once it is longer than any header can be.
        assert_eq!(protocol_error(1, &[b'*'; 40]), "a line too long");
        // An error reply is the server's, shown printable and bounded.
        let e = protocol_error(1, b"-LOADING Redis is loading\x07 the dataset\r\n");
        assert_eq!(e, "server: LOADING Redis is loading? the dataset");
        let long = [b"-ERR ".as_slice(), &[b'x'; 2000], b"\r\n"].concat();
        assert_eq!(protocol_error(1, &long), "a line too long");
        // RESP3 nulls read as nulls.
        assert_eq!(
            feed_in_pieces(2, b"*2\r\n_\r\n$1\r\na\r\n", &[]).ok().map(|r| r.1),
            Some(vec![None, Some(b"a".to_vec())])
        );
    }

    #[test]
    fn error_replies_map_to_what_retrying_can_change() {
        assert!(matches!(server_error("r", "WRONGPASS invalid username-password pair"), Error::Config(_)));
        assert!(matches!(server_error("r", "NOAUTH Authentication required."), Error::Config(_)));
        assert!(matches!(server_error("r", "LOADING Redis is loading"), Error::Unavailable(_)));
        assert!(matches!(server_error("r", "ERR unknown command"), Error::Refused(_)));
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        push_command(&mut out, &[b"AUTH", b"u", b"p w"]);
        assert_eq!(out, b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$3\r\np w\r\n");
        let mut n = Vec::new();
        push_header(&mut n, b'$', 1234567890);
        assert_eq!(n, b"$1234567890\r\n");
    }
}
