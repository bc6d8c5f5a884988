//! The API's connection loop: accepts connections on the bound listener and serves each with
//! hyper's HTTP/1 connection, bounded so that no client, however slow or numerous, can wedge the
//! daemon. `axum::serve` has none of these bounds, and a held connection costs a file descriptor
//! that the knowledge base needs too.
//!
//! - At most [`Limits::connections`] connections are served at once, capped at start below the
//!   process's open-file limit ([`connection_cap`]). When every slot is taken, the oldest
//!   connection with no request in progress is closed to make room; only when every connection is
//!   working does a new one wait (in the kernel's backlog, costing no descriptor).
//! - A connection has `header_timeout` to send a request's headers, counted from when it is ready
//!   for one; a request has `body_timeout` for its body (see [`super::error::RawBody`]); a
//!   connection with no request in progress that reads and writes nothing for `idle_timeout` is
//!   closed (a client that stops reading its answer).
//! - At shutdown a connection with no request in progress (idle, or its headers half-sent) is
//!   closed at once; a request in progress is answered, then its connection closed.
//! - hyper answers a request it cannot parse (400, 414, 431) itself, without a body; [`Watched`]
//!   turns those answers into campaignd's JSON error body, so every error is JSON.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::error::{ErrorBody, ErrorCode, ErrorDetail};

/// Descriptors kept for everything but the API (the knowledge base's files, logs, the runtime).
const RESERVED_FILES: u64 = 64;

/// The bounds the connection loop keeps.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// The connections served at once: `configured`, but never more than half of what the open-file
/// limit `nofile` (the soft limit; `None` when unlimited) leaves after [`RESERVED_FILES`], and at
/// least one.
pub fn connection_cap(configured: usize, nofile: Option<u64>) -> usize {
    let Some(nofile) = nofile else {
        return configured.max(1);
    };
    let room = usize::try_from(nofile.saturating_sub(RESERVED_FILES) / 2).unwrap_or(usize::MAX);
    configured.min(room).max(1)
}

/// The process's soft open-file limit, `None` when unlimited.
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// One served connection as the loop sees it.
#[derive(Clone, Default)]
struct Tracked {
    /// Requests in progress (from the headers read to the answer handed to hyper).
    busy: Arc<AtomicUsize>,
    /// Asks the connection to close if it has no request in progress.
    evict: Arc<Notify>,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Open {
    connections: Mutex<BTreeMap<u64, Tracked>>,
}

impl Open {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Tracked>> {
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the oldest connection with no request in progress to close; `false` if every
    /// connection is working.
    fn evict_oldest_idle(&self) -> bool {
        match self
            .lock()
            .values()
            .find(|c| c.busy.load(Ordering::SeqCst) == 0)
        {
            Some(idle) => {
                idle.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Counts a request in progress while alive.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Busy(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves `router` on `listener` until `stop` turns true, then waits for the connections still
/// answering (the caller bounds that wait and aborts the task past it).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.connections));
    let open = Arc::new(Open::default());
    let mut tasks = JoinSet::new();
    let mut next_id: u64 = 0;
    loop {
        while tasks.try_join_next().is_some() {}
        let accepted = tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of descriptors (EMFILE) or a connection reset before it was accepted: wait
                // a little instead of spinning, the condition usually passes.
                tracing::warn!(%err, "could not accept an API connection");
                tokio::select! {
                    biased;
                    _ = stopped(&mut stop) => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if !open.evict_oldest_idle() {
                    tracing::warn!(
                        limit = limits.connections,
                        "every API connection is answering a request; a new one waits for a free slot (api.max_connections)"
                    );
                }
                tokio::select! {
                    biased;
                    _ = stopped(&mut stop) => break,
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                }
            }
        };
        let id = next_id;
        next_id += 1;
        let tracked = Tracked::default();
        open.lock().insert(id, tracked.clone());
        let connection = Connection {
            router: router.clone(),
            limits,
            tracked,
            stop: stop.clone(),
            open: open.clone(),
            id,
            _slot: slot,
        };
        tasks.spawn(connection.serve(stream));
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

/// Resolves once the server is told to stop (or its owner is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// One accepted connection and what it needs to serve itself.
struct Connection {
    router: Router,
    limits: Limits,
    tracked: Tracked,
    stop: watch::Receiver<bool>,
    open: Arc<Open>,
    id: u64,
    /// Frees the connection's slot when the connection ends.
    _slot: OwnedSemaphorePermit,
}

/// The most a request's line and headers may hold together, checked once they are parsed (431
/// `headers_too_large` past it). hyper's read-buffer limit alone is checked between reads, so a
/// head whose last part arrived in one large read could be taken whatever its size. Above the
/// longest URI hyper takes (64 KiB), so a long path is still answered 414 `uri_too_long`.
const MAX_HEAD_BYTES: usize = 256 * 1024;

impl Connection {
    async fn serve(mut self, stream: TcpStream) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched::new(stream, activity.clone()));
        let busy = self.tracked.busy.clone();
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let working = Busy::enter(&busy);
            let answer = router.clone().oneshot(request);
            async move {
                let response = answer.await;
                drop(working);
                response
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .max_header_size(MAX_HEAD_BYTES);
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        let idle = self.limits.idle_timeout;
        let mut check = tokio::time::interval((idle / 4).max(Duration::from_millis(250)));
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let busy = |tracked: &Tracked| tracked.busy.load(Ordering::SeqCst) > 0;
        loop {
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(err) = served {
                        tracing::debug!(%err, "API connection ended with an error");
                    }
                    break;
                }
                _ = stopped(&mut self.stop) => {
                    // Idle or with its headers half-sent: nothing was started, close it now.
                    if busy(&self.tracked) {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.as_mut().await;
                    }
                    break;
                }
                _ = self.tracked.evict.notified() => {
                    if !busy(&self.tracked) {
                        tracing::debug!("API connection closed to make room (api.max_connections)");
                        break;
                    }
                }
                _ = check.tick() => {
                    if !busy(&self.tracked) && activity.quiet_for() >= idle {
                        tracing::debug!("idle API connection closed (api.idle_timeout_secs)");
                        break;
                    }
                }
            }
        }
        self.open.lock().remove(&self.id);
    }
}

/// When a connection last read or wrote a byte.
struct Activity {
    since: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.since.elapsed().saturating_sub(last)
    }
}

/// The TCP stream as hyper sees it: notes every byte moved (for the idle timeout), and replaces
/// hyper's own bodiless answer to a request it could not parse with the JSON error body.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    /// A JSON answer being written in place of hyper's, and how much of it is written.
    replacing: Option<(Vec<u8>, usize)>,
}

impl Watched {
    fn new(inner: TcpStream, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            activity,
            replacing: None,
        }
    }
}

/// The JSON answer for hyper's automatic answer `written`, if `written` is one: a 400, 414 or 431
/// head with an empty body. campaignd's own answers of those statuses always have a JSON body.
fn replacement_for(written: &[u8]) -> Option<Vec<u8>> {
    let end = written.windows(4).position(|w| w == b"\r\n\r\n")?;
    if end + 4 != written.len() {
        return None;
    }
    let head = std::str::from_utf8(&written[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    let empty = lines.any(|line| line.eq_ignore_ascii_case("content-length: 0"));
    if !empty {
        return None;
    }
    let (code, message) = match status {
        "400" => (
            ErrorCode::MalformedRequest,
            "the request could not be parsed as HTTP/1.1 (request line or a header is malformed)",
        ),
        "414" => (
            ErrorCode::UriTooLong,
            "the request's path and query are too long",
        ),
        "431" => (
            ErrorCode::HeadersTooLarge,
            "the request has too many headers, or they are too large in total",
        ),
        _ => return None,
    };
    Some(json_answer(code, message))
}

/// A whole HTTP/1.1 answer with the JSON error body; the connection closes after it.
fn json_answer(code: ErrorCode, message: &str) -> Vec<u8> {
    let body = serde_json::to_vec(&ErrorBody {
        error: ErrorDetail {
            code,
            message: message.to_owned(),
            problems: Vec::new(),
        },
    })
    .unwrap_or_default();
    let status: StatusCode = code.status();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacing.is_none()
            && let Some(answer) = replacement_for(buf)
        {
            self.replacing = Some((answer, 0));
        }
        let this = &mut *self;
        if let Some((answer, written)) = &mut this.replacing {
            // hyper repeats the same write until it is reported done; it is done when the JSON
            // answer is, and reported whole.
            while *written < answer.len() {
                match Pin::new(&mut this.inner).poll_write(cx, &answer[*written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => {
                        *written += n;
                        this.activity.touch();
                    }
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            this.replacing = None;
            return Poll::Ready(Ok(buf.len()));
        }
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_stays_below_the_file_limit() {
        assert_eq!(connection_cap(256, None), 256);
        assert_eq!(connection_cap(256, Some(1024)), 256);
        assert_eq!(connection_cap(256, Some(128)), 32);
        assert_eq!(connection_cap(256, Some(64)), 1);
        assert_eq!(connection_cap(0, None), 1);
    }

    #[test]
    fn only_hypers_bodiless_parse_answers_are_replaced() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 01:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(replacement_for(hyper).unwrap()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
        assert!(
            answer.contains("\"code\":\"headers_too_large\""),
            "{answer}"
        );
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        // An answer with a body, or another status, is campaignd's own and passes untouched.
        assert!(
            replacement_for(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}").is_none()
        );
        assert!(replacement_for(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(
            replacement_for(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .is_some_and(|a| a.windows(17).any(|w| w == b"malformed_request"))
        );
    }
}
