//! The REST server's connection loop: the router served by hyper with the limits that keep a
//! silent or slow client from holding a connection (and the memory of its request) forever.
//!
//! - Headers: a connection that has not sent a whole request head within `header` is closed,
//!   whether it says nothing at all, trickles the head (slowloris) or sits idle between
//!   keep-alive requests.
//! - Bodies: see [`TimedBody`].
//! - HTTP/2 (over TLS): pings find dead peers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::Response;
use axum::serve::Listener;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::{Service, ServiceExt};

/// After the grace period, a body must arrive at least this fast (bytes per second, on average
/// since the period ended): a client trickling a byte now and then is cut off.
const MIN_BODY_RATE: u64 = 1024;
/// How long a stopping server lets requests in flight finish.
const DRAIN: Duration = Duration::from_secs(30);

/// The client timeouts (`service.header_timeout_sec`, `service.body_timeout_sec`).
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeouts {
    pub header: Duration,
    pub body: Duration,
}

/// Serves `app` on the connections of `listener` until `shutdown` resolves, then lets the
/// requests in flight finish (for at most 30 s).
pub async fn serve<L, S>(mut listener: L, app: S, timeouts: ClientTimeouts, shutdown: impl Future<Output = ()>)
where
    L: Listener,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            (io, _peer) = listener.accept() => {
                let service = app.clone().map_request(move |req: hyper::Request<Incoming>| {
                    req.map(|body| Body::new(TimedBody::new(body, timeouts.body)))
                });
                connections.spawn(connection(io, TowerToHyperService::new(service), timeouts, closed.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    let _ = closing.send(true);
    let drained = tokio::time::timeout(DRAIN, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!(
            left = connections.len(),
            "requests still running at shutdown were cut off"
        );
    }
}

/// One client connection, HTTP/1.1 or HTTP/2, until the client or the server closes it.
async fn connection<I, S>(io: I, service: S, timeouts: ClientTimeouts, mut closing: tokio::sync::watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<hyper::Request<Incoming>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(timeouts.header))
        .keep_alive_timeout(timeouts.header);
    let heard = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(Heard {
        inner: io,
        heard: heard.clone(),
    });
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    // hyper's head timeout starts with the first byte: a client that never sends one is
    // closed here.
    let silence = tokio::time::sleep(timeouts.header);
    tokio::pin!(silence);
    let mut listening = true;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = &mut silence, if listening => {
                if !heard.load(Ordering::Relaxed) {
                    return; // dropping the connection closes it
                }
                listening = false;
            }
            _ = closing.wait_for(|c| *c) => break,
        }
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// A connection's I/O that notes when the client first sent something.
struct Heard<I> {
    inner: I,
    heard: Arc<AtomicBool>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Heard<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.heard.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Heard<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that fails once its client stalls: no data for `timeout`, or, after the
/// first `timeout`, less than [`MIN_BODY_RATE`] on average. The handler reading it then gets an
/// error (a 400 for JSON bodies) and the connection is closed.
pub struct TimedBody<B> {
    inner: B,
    timeout: Duration,
    started: Instant,
    received: u64,
    idle: Pin<Box<Sleep>>,
}

impl<B> TimedBody<B> {
    pub fn new(inner: B, timeout: Duration) -> TimedBody<B> {
        TimedBody {
            inner,
            timeout,
            started: Instant::now(),
            received: 0,
            idle: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Too slow on average, once the grace period is over.
    fn too_slow(&self) -> bool {
        let late = self.started.elapsed().saturating_sub(self.timeout);
        self.received < (MIN_BODY_RATE as f64 * late.as_secs_f64()) as u64
    }
}

/// Why a body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum BodyTimeout {
    #[error("request body stalled: no data for {0:?}")]
    Stalled(Duration),
    #[error("request body too slow: below {MIN_BODY_RATE} bytes per second")]
    TooSlow,
}

impl<B> http_body::Body for TimedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                if this.too_slow() {
                    return Poll::Ready(Some(Err(BodyTimeout::TooSlow.into())));
                }
                let next = Instant::now() + this.timeout;
                this.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout::Stalled(this.timeout).into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body of `chunks`, each sent after `gap`.
    fn trickle(
        chunks: usize,
        size: usize,
        gap: Duration,
    ) -> impl http_body::Body<Data = Bytes, Error = Infallible> + Unpin {
        let frames = futures::stream::unfold(0, move |i| async move {
            if i == chunks {
                return None;
            }
            tokio::time::sleep(gap).await;
            Some((Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; size]))), i + 1))
        });
        http_body_util::StreamBody::new(Box::pin(frames))
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_is_read_whole() {
        let body = TimedBody::new(
            trickle(100, 64 * 1024, Duration::from_millis(200)),
            Duration::from_secs(5),
        );
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), 100 * 64 * 1024);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_timeout() {
        let started = Instant::now();
        let body = TimedBody::new(trickle(2, 10, Duration::from_secs(60)), Duration::from_secs(5));
        let err = body.collect().await.unwrap_err();
        assert!(err.to_string().contains("stalled"), "{err}");
        assert_eq!(started.elapsed().as_secs(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_body_fails_soon_after_the_grace_period() {
        let started = Instant::now();
        // One byte every second: never idle for 5 s, but far below the minimum rate.
        let body = TimedBody::new(trickle(3600, 1, Duration::from_secs(1)), Duration::from_secs(5));
        let err = body.collect().await.unwrap_err();
        assert!(err.to_string().contains("too slow"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    }
}
