//! Serving threads: one single-threaded tokio runtime per core, each owning the connections it
//! is handed for their whole life.
//!
//! Why not tokio's work-stealing runtime: there, every gateway request woke a sibling worker
//! that found nothing to do. hyper's body channel wakes the connection's own task when the
//! handler takes the request body; tokio requeues a task that woke itself as a yield and wakes
//! a parked worker to steal it. That was two futex calls and about two context switches per
//! request (4.2 switches against the bare proxy's 2), and on a virtual machine a context switch
//! costs tens of microseconds. A thread that owns its connections has no sibling to wake.
//!
//! One accept loop, on the caller's runtime, hands each accepted connection to the next thread
//! in turn: one cross-thread wake per connection, none per request. Keep-alive connections
//! (every SDK uses them) stay where they landed.
//!
//! **Connections cannot be held hostage** ([`ConnectionLimits`]). Each connection is driven by
//! hyper's HTTP/1 server with a timer: a client that has not sent a whole request head within
//! the header-read timeout is closed (slowloris, and connections opened and left silent), and
//! since hyper starts that timer again as soon as an answer is sent, an idle keep-alive
//! connection is closed after the same time. Request bodies have an idle limit
//! ([`flo2_gateway::IdleBody`]). At most `max_connections` connections are open: beyond that
//! the accept loop stops accepting, so new connections wait in the kernel's listen backlog
//! (costing flo2 no memory) until a connection closes, and the kernel refuses what the backlog
//! cannot hold.
//!
//! The threads' runtimes outlive their servers. Database connections the console opened on a
//! serving thread are still in the pool that background work (the usage writer) drains after
//! the servers stop, so [`ServingThreads::release`] ends the runtimes only after the store is
//! closed. Dropping [`ServingThreads`] without releasing them (a test that never shuts down)
//! ends them at once.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::Router;
use flo2_gateway::IdleBody;
use flo2_gateway::RequestIdLayer;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::{Layer as _, Service};

/// A connection on its way from the accept loop to a serving thread, with its place under the
/// connection cap (released when the connection closes).
type Handed = (std::net::TcpStream, SocketAddr, OwnedSemaphorePermit);

/// What a connection may cost before flo2 closes it or stops accepting more.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time a client has to send a whole request head, from the moment the connection opens
    /// or its previous answer was sent (so also the keep-alive idle limit).
    pub header_read_timeout: Duration,
    /// Longest pause while a request body is arriving.
    pub body_idle_timeout: Duration,
    /// Most connections open at once; beyond it new ones wait in the kernel's backlog.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

/// The running serving threads.
pub struct ServingThreads {
    threads: Vec<std::thread::JoinHandle<()>>,
    /// One per thread: its server's result once it has stopped.
    stopped: Vec<oneshot::Receiver<io::Result<()>>>,
    /// Ends the threads' runtimes.
    release: CancellationToken,
}

impl ServingThreads {
    /// Serves `app` on `listener` from `threads` threads until `stop` fires (then gracefully:
    /// open requests finish). The accept loop runs on the calling runtime.
    pub fn start(
        listener: TcpListener,
        app: Router,
        threads: usize,
        limits: ConnectionLimits,
        stop: &CancellationToken,
    ) -> io::Result<Self> {
        // hyper refuses a zero timeout; a zero limit means "as short as possible".
        let limits = ConnectionLimits {
            header_read_timeout: limits.header_read_timeout.max(Duration::from_millis(1)),
            body_idle_timeout: limits.body_idle_timeout.max(Duration::from_millis(1)),
            max_connections: limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
        };
        // Built first, so that an early return drops it, and its `Drop` ends the threads
        // already started instead of leaving them waiting for a release.
        let mut serving = Self {
            threads: Vec::new(),
            stopped: Vec::new(),
            release: CancellationToken::new(),
        };
        let mut senders = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            let (done_tx, done_rx) = oneshot::channel();
            let runtime = ThreadRuntime(Some(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
            ));
            let (app, stop, ends) = (app.clone(), stop.clone(), serving.release.clone());
            let thread = std::thread::Builder::new()
                .name(format!("flo2-serve-{i}"))
                .spawn(move || {
                    let mut runtime = runtime;
                    if let Some(runtime) = runtime.0.take() {
                        runtime.block_on(serve_handed(rx, app, limits, stop, ends, done_tx));
                    }
                })?;
            serving.threads.push(thread);
            serving.stopped.push(done_rx);
            senders.push(tx);
        }
        tokio::spawn(hand_out(
            listener,
            senders,
            Arc::new(Semaphore::new(limits.max_connections)),
            stop.clone(),
            serving.release.clone(),
        ));
        Ok(serving)
    }

    /// Waits until every thread's server has stopped (after `stop` fired and open requests
    /// finished).
    pub async fn stopped(&mut self) {
        for done in self.stopped.drain(..) {
            match done.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "server error during shutdown"),
                Err(_) => tracing::error!("a serving thread ended unexpectedly"),
            }
        }
    }

    /// Ends the threads' runtimes (after the store is closed) and waits for the threads.
    pub async fn release(mut self) {
        self.release.cancel();
        let threads = std::mem::take(&mut self.threads);
        let joined =
            tokio::task::spawn_blocking(move || threads.into_iter().all(|t| t.join().is_ok()))
                .await;
        if !matches!(joined, Ok(true)) {
            tracing::error!("a serving thread panicked");
        }
    }
}

impl Drop for ServingThreads {
    fn drop(&mut self) {
        self.release.cancel();
    }
}

/// A serving thread's runtime on its way to the thread. If the thread cannot be started, the
/// runtime is dropped on the caller's async thread, where an ordinary drop would panic.
struct ThreadRuntime(Option<tokio::runtime::Runtime>);

impl Drop for ThreadRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// One serving thread: serves what it is handed until `stop`, lets its open connections finish
/// (graceful: each is told to close after its current answer), then keeps its runtime (and the
/// I/O of anything opened on it) alive until `release`.
async fn serve_handed(
    mut rx: mpsc::UnboundedReceiver<Handed>,
    app: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
    release: CancellationToken,
    done: oneshot::Sender<io::Result<()>>,
) {
    // Ends with the runtime, after `release`.
    tokio::spawn(pacemaker());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let http = Arc::new(http);
    let connections = TaskTracker::new();
    let serving = async {
        loop {
            let handed = tokio::select! {
                () = stop.cancelled() => break,
                handed = rx.recv() => handed,
            };
            // `None`: the accept loop has stopped, the server is going away.
            let Some((tcp, addr, place)) = handed else {
                stop.cancelled().await;
                break;
            };
            match TcpStream::from_std(tcp) {
                Ok(tcp) => {
                    let service = RequestIdLayer.layer(WithPeer {
                        app: app.clone(),
                        peer: ConnectInfo(addr),
                        body_idle: limits.body_idle_timeout,
                    });
                    connections.spawn(serve_connection(
                        Arc::clone(&http),
                        tcp,
                        service,
                        stop.clone(),
                        place,
                    ));
                }
                Err(e) => tracing::debug!(error = %e, "cannot take over a handed connection"),
            }
        }
        connections.close();
        connections.wait().await;
    };
    tokio::select! {
        () = serving => {
            let _ = done.send(Ok(()));
            release.cancelled().await;
        }
        () = release.cancelled() => {}
    }
}

/// Serves one connection until it closes; on `stop`, lets its current request finish and then
/// closes it. `_place` is its place under the connection cap.
async fn serve_connection<S>(
    http: Arc<hyper::server::conn::http1::Builder>,
    tcp: TcpStream,
    service: S,
    stop: CancellationToken,
    _place: OwnedSemaphorePermit,
) where
    S: Service<hyper::Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            log_connection_end(result);
            return;
        }
        () = stop.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    log_connection_end(conn.await);
}

/// A connection's end: header-read timeouts and clients that hang up are routine.
fn log_connection_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        if e.is_timeout() {
            tracing::debug!("closed a connection that sent no request head in time");
        } else {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}

/// Accepts connections and hands them to the serving threads in turn, until `stop` (or the
/// threads' `release`).
async fn hand_out(
    listener: TcpListener,
    threads: Vec<mpsc::UnboundedSender<Handed>>,
    places: Arc<Semaphore>,
    stop: CancellationToken,
    release: CancellationToken,
) {
    let mut next = 0;
    loop {
        // A place under the connection cap first: at the cap, nothing is accepted, and new
        // connections wait in the kernel's backlog until one closes.
        let place = tokio::select! {
            () = stop.cancelled() => return,
            () = release.cancelled() => return,
            place = Arc::clone(&places).acquire_owned() => place,
        };
        let Ok(place) = place else {
            return;
        };
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            () = release.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, addr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                accept_failed(&e).await;
                continue;
            }
        };
        // Without TCP_NODELAY, Nagle's algorithm holds a small write (the next SSE event)
        // until the client acknowledges the previous one, which a delayed ACK can put off for
        // 40 ms.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
        // Off this runtime's reactor; the serving thread registers it with its own.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::debug!(error = %e, "cannot hand over an accepted connection");
                continue;
            }
        };
        let Some(thread) = threads.get(next) else {
            return;
        };
        next = (next + 1) % threads.len();
        if thread.send((tcp, addr, place)).is_err() {
            // The thread has ended: the server is going away.
            return;
        }
    }
}

/// Per-connection failures (the peer gave up before the accept) are skipped; anything else
/// (out of file descriptors, say) is logged and waited out for a moment instead of spinning.
async fn accept_failed(e: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The router for one connection, behind [`RequestIdLayer`] (applied once per connection rather
/// than through `Router::layer`, which wraps every route in one more boxed service, cloned and
/// its future boxed on every request), given the peer's address for axum's
/// `ConnectInfo<SocketAddr>` (login throttling and the console read it) and each request body
/// its idle limit.
#[derive(Clone)]
struct WithPeer {
    app: Router,
    peer: ConnectInfo<SocketAddr>,
    body_idle: Duration,
}

impl Service<hyper::Request<Incoming>> for WithPeer {
    type Response = Response;
    type Error = Infallible;
    type Future = <Router as Service<axum::extract::Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<axum::extract::Request>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, request: hyper::Request<Incoming>) -> Self::Future {
        let idle = self.body_idle;
        let mut request = request.map(|body| Body::new(IdleBody::new(body, idle)));
        request.extensions_mut().insert(self.peer);
        self.app.call(request)
    }
}

/// How often each serving thread's timer driver wakes up anyway (see [`pacemaker`]).
const PACE: Duration = Duration::from_millis(500);

/// Keeps a timer due within [`PACE`] on this thread's runtime.
///
/// tokio's time driver wakes itself (an `eventfd` write, then an `epoll_wait` that returns at
/// once) whenever a timer is registered that may expire before the wake-up it planned when it
/// last went to sleep. Every request registers timers (its deadline, hyper's wait for the next
/// request's head), and without a nearer timer each of those registrations paid the two system
/// calls: `perf trace -s` on a serving thread at 1,000 req/s counted 0.9 `eventfd` writes and
/// 2.5 `epoll_wait`s per request. With a timer always due within half a second, none of the
/// request's timers comes first, and a serving thread makes only the bare proxy's calls (two
/// `recvfrom`, two `writev`, two `epoll_wait` per request). The cost is two wake-ups a second
/// per idle serving thread.
async fn pacemaker() {
    loop {
        tokio::time::sleep(PACE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    /// The serving thread's name, and whether the caller's address reached the handler.
    async fn whoami(
        axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    ) -> String {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        format!("{name} {}", peer.ip().is_loopback())
    }

    async fn start(threads: usize) -> (ServingThreads, String, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let app = Router::new().route("/", get(whoami));
        let serving =
            ServingThreads::start(listener, app, threads, ConnectionLimits::default(), &stop)
                .unwrap();
        (serving, url, stop)
    }

    /// A new connection per call, so each lands on the next thread.
    async fn call(url: &str) -> String {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        client.get(url).send().await.unwrap().text().await.unwrap()
    }

    #[tokio::test]
    async fn connections_are_spread_over_the_threads_and_shutdown_ends_them() {
        let (mut serving, url, stop) = start(2).await;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..4 {
            seen.insert(call(&url).await);
        }
        let expected: std::collections::BTreeSet<String> =
            ["flo2-serve-0 true", "flo2-serve-1 true"]
                .into_iter()
                .map(str::to_owned)
                .collect();
        assert_eq!(
            seen, expected,
            "round-robin over both threads, peer address known"
        );
        stop.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), serving.stopped())
            .await
            .expect("the servers stop once `stop` fires");
        assert!(
            tokio::net::TcpStream::connect(url.trim_start_matches("http://").trim_end_matches('/'))
                .await
                .is_err(),
            "the listener is closed"
        );
        tokio::time::timeout(std::time::Duration::from_secs(5), serving.release())
            .await
            .expect("the threads end once released");
    }

    #[tokio::test]
    async fn dropping_the_threads_without_a_shutdown_ends_them() {
        let (mut serving, url, _stop) = start(1).await;
        assert_eq!(call(&url).await, "flo2-serve-0 true");
        let threads = std::mem::take(&mut serving.threads);
        drop(serving);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !threads.iter().all(std::thread::JoinHandle::is_finished) {
            assert!(
                std::time::Instant::now() < deadline,
                "the dropped thread still runs"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let client = reqwest::Client::new();
        assert!(
            client.get(&url).send().await.is_err(),
            "nothing accepts connections any more"
        );
    }
}
