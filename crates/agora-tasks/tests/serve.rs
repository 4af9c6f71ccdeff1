//! `agora_tasks::serve` against attacks, over real sockets: a slowloris
//! client is dropped while others are served, requests beyond the in-flight
//! cap get a fast 503 and the server recovers, one client address beyond
//! its share gets a 429 while another is served, a late response head gets
//! a 504 while a long stream is never cut, and shutdown is still graceful.

use std::time::{Duration, Instant};

use agora_tasks::{serve, Refusal, ServeLimits};
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Mutex};

/// Far more than any step here needs; only reached when something is wrong.
const BOUND: Duration = Duration::from_secs(10);

/// What the test routes share: `/slow` reports its arrival, then waits
/// until the gate opens.
#[derive(Clone)]
struct Gate {
    arrived: mpsc::UnboundedSender<()>,
    open: watch::Receiver<bool>,
}

async fn slow(State(gate): State<Gate>) -> &'static str {
    let _ = gate.arrived.send(());
    let mut open = gate.open.clone();
    let _ = open.wait_for(|open| *open).await;
    "slow done"
}

/// A body whose second chunk comes once the gate is open, and no sooner
/// than `delay` after the first.
fn stream(gate: Gate, delay: Duration) -> Body {
    let chunks = futures::stream::unfold(0u8, move |n| {
        let mut open = gate.open.clone();
        async move {
            match n {
                0 => Some((Ok::<_, std::io::Error>("first;"), 1)),
                1 => {
                    tokio::time::sleep(delay).await;
                    let _ = open.wait_for(|open| *open).await;
                    Some((Ok("second"), 2))
                }
                _ => None,
            }
        }
    });
    Body::from_stream(chunks)
}

/// A server on a loopback port; the gate's sender and arrivals, and the
/// shutdown trigger, stay with the test.
struct Server {
    addr: std::net::SocketAddr,
    open: watch::Sender<bool>,
    arrivals: Mutex<mpsc::UnboundedReceiver<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: ServeLimits) -> Server {
        let (arrived, arrivals) = mpsc::unbounded_channel();
        let (open_tx, open) = watch::channel(false);
        let stream_delay = limits.response_head * 3;
        let router = Router::new()
            .route("/fast", get(|| async { "fast done" }))
            .route("/slow", get(slow))
            .route("/hang", get(std::future::pending::<&'static str>))
            .route(
                "/stream",
                get(move |State(gate): State<Gate>| async move { stream(gate, stream_delay) }),
            )
            .with_state(Gate { arrived, open });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, router, limits, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            open: open_tx,
            arrivals: Mutex::new(arrivals),
            stop: Some(stop),
            task,
        }
    }

    /// Wait until `n` more `/slow` requests are inside the handler.
    async fn arrived(&self, n: usize) {
        let mut arrivals = self.arrivals.lock().await;
        for _ in 0..n {
            tokio::time::timeout(BOUND, arrivals.recv())
                .await
                .expect("a slow request never arrived")
                .unwrap();
        }
    }

    /// Send `path` as a complete request in the background.
    fn spawn_get(&self, path: &'static str) -> tokio::task::JoinHandle<Reply> {
        let addr = self.addr;
        tokio::spawn(async move { fetch(addr, path).await })
    }
}

/// A response as read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    text: String,
}

/// One `GET` over a fresh connection, read to the end.
async fn fetch(addr: std::net::SocketAddr, path: &str) -> Reply {
    fetch_from([127, 0, 0, 1], addr, path).await
}

/// [`fetch`] from the loopback address `source` (any of 127.0.0.0/8), so
/// one test can be several clients.
async fn fetch_from(source: [u8; 4], addr: std::net::SocketAddr, path: &str) -> Reply {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind((std::net::Ipv4Addr::from(source), 0).into())
        .unwrap();
    let mut socket = socket.connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(BOUND, socket.read_to_end(&mut raw))
        .await
        .expect("no complete response")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    Reply { status, text }
}

/// Read until the server closes the connection; how long that took.
async fn until_closed(socket: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(BOUND, socket.read(&mut buf)).await {
            Err(_) => panic!("the server kept a stalled connection open for {BOUND:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

fn limits(header_read: Duration, max_in_flight: usize, response_head: Duration) -> ServeLimits {
    ServeLimits {
        header_read,
        max_in_flight,
        // No share per client unless a test sets one (all clients here are loopback).
        max_per_client: usize::MAX,
        response_head,
        refuse: Refusal::plain,
    }
}

#[tokio::test]
async fn a_slowloris_client_is_dropped_while_others_are_served() {
    let header_read = Duration::from_millis(300);
    let server = Server::start(limits(header_read, 16, BOUND)).await;
    // One client sends half a head and stalls; another trickles a byte at a time.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(b"GET /fast HTTP/1.1\r\nhost: te")
        .await
        .unwrap();
    let mut trickler = TcpStream::connect(server.addr).await.unwrap();
    let trickled = tokio::spawn(async move {
        let started = Instant::now();
        let mut tick = tokio::time::interval(header_read / 10);
        for byte in b"GET /fast HTTP/1.1\r\nx-pad: "
            .iter()
            .chain([b'a'; 200].iter())
        {
            tick.tick().await;
            if trickler.write_all(&[*byte]).await.is_err() {
                return started.elapsed();
            }
        }
        until_closed(&mut trickler).await + started.elapsed()
    });
    // Meanwhile, a normal client is served.
    let reply = fetch(server.addr, "/fast").await;
    assert_eq!(reply.status, 200);
    assert!(reply.text.ends_with("fast done"));
    let waited = until_closed(&mut stalled).await;
    assert!(
        waited < header_read * 10,
        "stalled client dropped after {waited:?}"
    );
    let trickled = trickled.await.unwrap();
    assert!(
        trickled < header_read * 10,
        "trickling client dropped after {trickled:?}"
    );
    // The server still serves after dropping them.
    assert_eq!(fetch(server.addr, "/fast").await.status, 200);
}

#[tokio::test]
async fn requests_beyond_the_cap_get_503_at_once_and_the_server_recovers() {
    let server = Server::start(limits(BOUND, 2, BOUND)).await;
    let first = server.spawn_get("/slow");
    let second = server.spawn_get("/slow");
    server.arrived(2).await;
    // The cap is reached: more requests are refused without waiting.
    for _ in 0..5 {
        let started = Instant::now();
        let reply = fetch(server.addr, "/fast").await;
        assert_eq!(reply.status, 503, "{}", reply.text);
        assert!(reply.text.to_ascii_lowercase().contains("retry-after: 1"));
        assert!(reply.text.contains("2 requests in flight"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    server.open.send(true).unwrap();
    for held in [first, second] {
        let reply = held.await.unwrap();
        assert_eq!(reply.status, 200);
        assert!(reply.text.ends_with("slow done"));
    }
    // Recovered: the cap's permits came back.
    for _ in 0..3 {
        assert_eq!(fetch(server.addr, "/fast").await.status, 200);
    }
}

/// Issue 13, row 14h: one client may not take the whole server. Beyond its
/// share of requests in flight it gets a fast 429, while another address
/// is still served; its slots come back when its requests end.
#[tokio::test]
async fn one_client_beyond_its_share_gets_429_while_others_are_served() {
    let mut l = limits(BOUND, 8, BOUND);
    l.max_per_client = 2;
    let server = Server::start(l).await;
    let (a, b) = ([127, 0, 0, 2], [127, 0, 0, 3]);
    let addr = server.addr;
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(async move { fetch_from(a, addr, "/slow").await }))
        .collect();
    server.arrived(2).await;
    for _ in 0..3 {
        let started = Instant::now();
        let reply = fetch_from(a, addr, "/fast").await;
        assert_eq!(reply.status, 429, "{}", reply.text);
        assert!(reply.text.to_ascii_lowercase().contains("retry-after: 1"));
        assert!(reply.text.contains("the limit per client"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    // Another address is served, up to its own share.
    let other = tokio::spawn(async move { fetch_from(b, addr, "/slow").await });
    server.arrived(1).await;
    assert_eq!(fetch_from(b, addr, "/fast").await.status, 200);
    server.open.send(true).unwrap();
    for h in held.into_iter().chain([other]) {
        assert_eq!(h.await.unwrap().status, 200);
    }
    // Its requests ended: the client is served again.
    for _ in 0..3 {
        assert_eq!(fetch_from(a, addr, "/fast").await.status, 200);
    }
}

#[tokio::test]
async fn a_late_head_gets_504_but_a_long_stream_runs_to_its_end() {
    let head = Duration::from_millis(200);
    let server = Server::start(limits(BOUND, 1, head)).await;
    let started = Instant::now();
    let reply = fetch(server.addr, "/hang").await;
    assert_eq!(reply.status, 504, "{}", reply.text);
    assert!(started.elapsed() < BOUND);
    // The timed-out request gave its permit back.
    assert_eq!(fetch(server.addr, "/fast").await.status, 200);
    // The stream's second chunk comes after the gate opens, at least three
    // deadlines after its head.
    let mut streaming = TcpStream::connect(server.addr).await.unwrap();
    streaming
        .write_all(b"GET /stream HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&raw).contains("first;") {
        let n = tokio::time::timeout(BOUND, streaming.read(&mut buf))
            .await
            .expect("no first chunk")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    }
    // While it streams it holds the only permit: the next request is refused...
    assert_eq!(fetch(server.addr, "/fast").await.status, 503);
    server.open.send(true).unwrap();
    tokio::time::timeout(BOUND, streaming.read_to_end(&mut raw))
        .await
        .expect("the stream never ended")
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("second"), "the stream was cut: {text}");
    // ...and once it ends, the permit is back.
    assert_eq!(fetch(server.addr, "/fast").await.status, 200);
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish() {
    let mut server = Server::start(limits(BOUND, 4, BOUND)).await;
    let held = server.spawn_get("/slow");
    server.arrived(1).await;
    server.stop.take().unwrap().send(()).unwrap();
    // The server stops accepting, but waits for the request it is serving.
    let refused = tokio::time::timeout(BOUND, async {
        loop {
            if TcpStream::connect(server.addr).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(refused.is_ok(), "still accepting after shutdown");
    assert!(!server.task.is_finished());
    server.open.send(true).unwrap();
    let reply = held.await.unwrap();
    assert_eq!(reply.status, 200);
    tokio::time::timeout(BOUND, &mut server.task)
        .await
        .expect("the server did not stop")
        .unwrap()
        .unwrap();
}

#[test]
fn refusals_map_to_503_429_and_504() {
    let busy = Refusal::Overloaded(3);
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.code(), "overloaded");
    let greedy = Refusal::ClientBusy(2);
    assert_eq!(greedy.status(), 429);
    assert_eq!(greedy.code(), "rate_limit_exceeded");
    assert_eq!(greedy.kind(), "rate_limit_error");
    assert_eq!(busy.kind(), "server_error");
    assert_eq!(greedy.plain().headers()["retry-after"], "1");
    let late = Refusal::TimedOut(Duration::from_secs(1));
    assert_eq!(late.status(), 504);
    assert_eq!(late.code(), "timeout");
    assert!(late.plain().headers().get("retry-after").is_none());
    assert_eq!(busy.plain().headers()["retry-after"], "1");
}
