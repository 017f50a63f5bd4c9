//! The fault proxy: a TCP proxy per link of the system under test, through which `run`
//! (or `soakcheck proxy`) partitions, resets, delays, throttles and slices traffic.
//!
//! How it works: a [`Proxy`] owns a multi-threaded tokio runtime. Each [`LinkSpec`]
//! gets a listener; each accepted connection gets its upstream connection and one task
//! that runs a pump per direction. A pump is a reader and a writer joined by a queue of
//! `Bytes` chunks, bounded by bytes ([`QUEUE_BYTES`]): the reader stamps each chunk with
//! when it may leave (its delay), the writer holds chunks while the direction is
//! partitioned, sleeps until they are due, paces them to the bandwidth and, when
//! slicing, writes them in small random pieces. A direction's faults live in a
//! `tokio::sync::watch` channel, so a change reaches every open connection at once; a
//! reset is a broadcast that makes every connection of the link close with an RST.
//!
//! Bytes are never dropped, reordered or invented: a fault only changes when they
//! leave. So after a heal every byte read has been written, in order; a reset ends a
//! connection, and what it delivered is a prefix of what was sent.

pub mod control;
pub mod fault;
mod splice;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch, Semaphore};
use tokio::time::Instant;

pub use fault::{Delay, Direction, Directions, Fault, Faults};

/// The most bytes one read takes.
pub const CHUNK: usize = 256 << 10;

/// The most bytes a direction holds between its reader and its writer (read but not yet
/// written: delayed, throttled or partitioned).
pub const QUEUE_BYTES: usize = 8 << 20;

/// One link: where the proxy listens, and where it connects for each connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSpec {
    /// `sender-A->worker1`, `worker1->sink`, `worker2->initializer`.
    pub name: String,
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
}

impl LinkSpec {
    /// A link between two `HOST:PORT` addresses, resolved now.
    pub fn resolved(name: String, listen: &str, upstream: &str) -> std::io::Result<LinkSpec> {
        let resolve = |addr: &str| -> std::io::Result<SocketAddr> {
            use std::net::ToSocketAddrs;
            addr.to_socket_addrs()?.next().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("{addr}: no address"))
            })
        };
        Ok(LinkSpec {
            name,
            listen: resolve(listen)?,
            upstream: resolve(upstream)?,
        })
    }

    /// A topology's links, each resolved now.
    pub fn resolve_all(links: Vec<crate::topology::LinkAddrs>) -> std::io::Result<Vec<LinkSpec>> {
        links
            .into_iter()
            .map(|l| LinkSpec::resolved(l.name, &l.listen, &l.upstream))
            .collect()
    }
}

/// Parses `--link NAME,LISTEN,UPSTREAM`.
pub fn parse_link(text: &str) -> Result<LinkSpec, String> {
    let parts: Vec<&str> = text.split(',').collect();
    let [name, listen, upstream] = parts[..] else {
        return Err(format!("{text:?}: expected NAME,LISTEN,UPSTREAM (such as worker1->sink,127.0.0.1:7300,127.0.0.1:7200)"));
    };
    let addr = |a: &str| {
        a.parse::<SocketAddr>()
            .map_err(|_| format!("{text:?}: {a:?} is not HOST:PORT"))
    };
    Ok(LinkSpec {
        name: name.to_string(),
        listen: addr(listen)?,
        upstream: addr(upstream)?,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("link {0:?}: no such link (the links are {1})")]
    UnknownLink(String, String),
    #[error("link {name}: cannot listen on {addr}: {source}")]
    Listen {
        name: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the proxy's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("link {0:?}: {1}")]
    BadLink(String, String),
    #[error("link {0:?}: {1}")]
    BadFault(String, String),
}

/// Refuses links that could not be faulted or would feed themselves: an empty name, a
/// name given twice (the second would forward but never be faulted), and an upstream
/// that is a listen address of the proxy itself (each connection would open another,
/// a storm that outlives its client).
pub fn check_links(specs: &[LinkSpec]) -> Result<(), ProxyError> {
    // `[::ffff:127.0.0.1]` is 127.0.0.1.
    let same_endpoint = |listen: SocketAddr, upstream: SocketAddr| {
        let (l, u) = (listen.ip().to_canonical(), upstream.ip().to_canonical());
        listen.port() == upstream.port() && (l == u || l.is_unspecified() || u.is_unspecified())
    };
    for (i, spec) in specs.iter().enumerate() {
        let bad = |why: String| Err(ProxyError::BadLink(spec.name.clone(), why));
        if spec.name.trim().is_empty() {
            return bad("a link needs a name (NAME,LISTEN,UPSTREAM)".into());
        }
        if specs[..i].iter().any(|s| s.name == spec.name) {
            return bad(
                "given twice: each link needs a name of its own, or it cannot be faulted".into(),
            );
        }
        if let Some(loop_to) = specs
            .iter()
            .find(|s| s.listen.port() != 0 && same_endpoint(s.listen, spec.upstream))
        {
            return bad(format!(
                "its upstream {} is where link {:?} listens ({}): each connection would open another through the proxy itself",
                spec.upstream, loop_to.name, loop_to.listen
            ));
        }
    }
    Ok(())
}

/// What one link shares with its connections.
struct Link {
    spec: LinkSpec,
    bound: SocketAddr,
    up: watch::Sender<Faults>,
    down: watch::Sender<Faults>,
    reset: broadcast::Sender<()>,
    forwarded_up: AtomicU64,
    forwarded_down: AtomicU64,
    connections: AtomicU64,
    /// Writes made, both directions (a sliced chunk is many).
    writes: AtomicU64,
}

impl Link {
    fn faults(&self, d: Direction) -> &watch::Sender<Faults> {
        match d {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    fn counter(&self, d: Direction) -> &AtomicU64 {
        match d {
            Direction::Up => &self.forwarded_up,
            Direction::Down => &self.forwarded_down,
        }
    }
}

/// A link's state, for the control interface and the tests.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LinkStatus {
    pub name: String,
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub up: String,
    pub down: String,
    pub forwarded_up: u64,
    pub forwarded_down: u64,
    pub connections: u64,
    pub writes: u64,
}

/// The running proxy; dropping it closes every listener and connection.
pub struct Proxy {
    runtime: Option<tokio::runtime::Runtime>,
    links: BTreeMap<String, Arc<Link>>,
}

impl Proxy {
    /// Binds every link's listener (so a taken port is an error here, and port 0 is
    /// resolved) and starts forwarding.
    pub fn start(specs: Vec<LinkSpec>, seed: u64) -> Result<Proxy, ProxyError> {
        check_links(&specs)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("soakcheck-proxy")
            .enable_all()
            .build()
            .map_err(ProxyError::Runtime)?;
        let seed = Arc::new(Mutex::new(crate::gen::Rng::new(seed)));
        let mut links = BTreeMap::new();
        for spec in specs {
            let listener = std::net::TcpListener::bind(spec.listen)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|source| ProxyError::Listen {
                    name: spec.name.clone(),
                    addr: spec.listen,
                    source,
                })?;
            let bound = listener.local_addr().map_err(ProxyError::Runtime)?;
            let link = Arc::new(Link {
                spec: spec.clone(),
                bound,
                up: watch::channel(Faults::default()).0,
                down: watch::channel(Faults::default()).0,
                reset: broadcast::channel(4).0,
                forwarded_up: AtomicU64::new(0),
                forwarded_down: AtomicU64::new(0),
                connections: AtomicU64::new(0),
                writes: AtomicU64::new(0),
            });
            let listener = {
                let _guard = runtime.enter();
                TcpListener::from_std(listener).map_err(ProxyError::Runtime)?
            };
            runtime.spawn(accept_loop(listener, Arc::clone(&link), Arc::clone(&seed)));
            links.insert(spec.name, link);
        }
        Ok(Proxy {
            runtime: Some(runtime),
            links,
        })
    }

    /// Where link `name` listens.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.links.get(name).map(|l| l.bound)
    }

    pub fn link_names(&self) -> Vec<String> {
        self.links.keys().cloned().collect()
    }

    /// Applies `fault` to the `directions` of link `name`.
    pub fn apply(
        &self,
        name: &str,
        directions: Directions,
        fault: Fault,
    ) -> Result<(), ProxyError> {
        let link = self.links.get(name).ok_or_else(|| {
            ProxyError::UnknownLink(name.to_string(), self.link_names().join(", "))
        })?;
        fault
            .check()
            .map_err(|why| ProxyError::BadFault(name.to_string(), why))?;
        let now = std::time::Instant::now();
        for d in [Direction::Up, Direction::Down] {
            if directions.includes(d) {
                link.faults(d).send_modify(|f| *f = fault.apply(*f, now));
            }
        }
        if let Fault::Reset { .. } = fault {
            let _ = link.reset.send(());
        }
        Ok(())
    }

    /// Every link's state.
    pub fn status(&self) -> Vec<LinkStatus> {
        self.links
            .values()
            .map(|l| LinkStatus {
                name: l.spec.name.clone(),
                listen: l.bound,
                upstream: l.spec.upstream,
                up: describe(&l.up.borrow()),
                down: describe(&l.down.borrow()),
                forwarded_up: l.forwarded_up.load(Ordering::Relaxed),
                forwarded_down: l.forwarded_down.load(Ordering::Relaxed),
                connections: l.connections.load(Ordering::Relaxed),
                writes: l.writes.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// The runtime the proxy runs on (the control server runs there too).
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.as_ref().expect("running").handle().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// A direction's faults in words (`partition, delay 100±20 ms`), `clear` when none.
pub fn describe(f: &Faults) -> String {
    let mut words = Vec::new();
    if f.partition {
        words.push("partition".to_string());
    }
    if let Some(d) = f.delay {
        words.push(format!("delay {}±{} ms", d.ms, d.jitter_ms));
    }
    if let Some(b) = f.bandwidth {
        words.push(format!("bandwidth {b} B/s"));
    }
    if f.slice {
        words.push("slice".into());
    }
    if f.refuse_until
        .is_some_and(|t| t > std::time::Instant::now())
    {
        words.push("refusing".into());
    }
    if words.is_empty() {
        "clear".into()
    } else {
        words.join(", ")
    }
}

async fn accept_loop(listener: TcpListener, link: Arc<Link>, seed: Arc<Mutex<crate::gen::Rng>>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let refusing = [Direction::Up, Direction::Down].iter().any(|d| {
            link.faults(*d)
                .borrow()
                .refuse_until
                .is_some_and(|t| t > std::time::Instant::now())
        });
        if refusing {
            rst_on_close(&client);
            continue;
        }
        let jitter_seed = seed.lock().map_or(1, |mut r| r.next_u64());
        tokio::spawn(connection(client, Arc::clone(&link), jitter_seed));
    }
}

/// How a connection ended.
enum Ending {
    /// Both directions reached EOF and were shut down in turn.
    Closed,
    /// A reset of the link, or an error on either side: both sides get an RST.
    Reset,
}

async fn connection(mut client: TcpStream, link: Arc<Link>, seed: u64) {
    let mut reset = link.reset.subscribe();
    // A partitioned link holds new connections too: nothing reaches the other side.
    let mut up = link.up.subscribe();
    let ready = tokio::select! {
        open = up.wait_for(|f| !f.partition) => open.is_ok(),
        _ = reset.recv() => false,
    };
    let opened = match ready {
        true => TcpStream::connect(link.spec.upstream).await.ok(),
        false => None,
    };
    let Some(mut upstream) = opened else {
        rst_on_close(&client);
        return;
    };
    link.connections.fetch_add(1, Ordering::Relaxed);
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let ending = {
        let (cr, cw) = client.split();
        let (ur, uw) = upstream.split();
        let up = pump(cr, uw, &link, Direction::Up, seed);
        let down = pump(ur, cw, &link, Direction::Down, seed.rotate_left(17));
        tokio::select! {
            _ = reset.recv() => Ending::Reset,
            done = async { tokio::try_join!(up, down) } => match done {
                Ok(_) => Ending::Closed,
                Err(_) => Ending::Reset,
            },
        }
    };
    if let Ending::Reset = ending {
        rst_on_close(&client);
        rst_on_close(&upstream);
    }
}

/// Forwards one direction until EOF (then shuts the writer down) or an error. While the
/// direction has no fault, bytes go socket to pipe to socket with splice(2) and never
/// through user space ([`splice_while_clear`]); while it has one, they go through the
/// queue ([`queue_while_faulted`]). Each mode hands over to the other with nothing in
/// flight, so order is kept.
async fn pump(
    mut from: tokio::net::tcp::ReadHalf<'_>,
    mut to: tokio::net::tcp::WriteHalf<'_>,
    link: &Link,
    d: Direction,
    seed: u64,
) -> std::io::Result<()> {
    let mut faults = link.faults(d).subscribe();
    let pipe = splice::Pipe::new()?;
    let mut jitter = crate::gen::Rng::new(seed);
    loop {
        let clear = faults.borrow_and_update().is_clear();
        let mode = if clear {
            splice_while_clear(from.as_ref(), to.as_ref(), &mut faults, &pipe, link, d).await?
        } else {
            queue_while_faulted(&mut from, &mut to, &mut faults, link, d, &mut jitter).await?
        };
        if mode == Mode::Ended {
            return to.shutdown().await;
        }
    }
}

/// Why a mode of [`pump`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The faults changed: the other mode takes over (nothing is in flight).
    Changed,
    /// The reading side reached EOF and everything read was written.
    Ended,
}

/// The clear path: splice from `from` into the pipe, then from the pipe into `to`,
/// until the faults change (the pipe is empty then) or EOF.
async fn splice_while_clear(
    from: &TcpStream,
    to: &TcpStream,
    faults: &mut watch::Receiver<Faults>,
    pipe: &splice::Pipe,
    link: &Link,
    d: Direction,
) -> std::io::Result<Mode> {
    use tokio::io::Interest;
    loop {
        tokio::select! {
            biased;
            changed = faults.changed() => {
                changed.map_err(closed)?;
                if !faults.borrow_and_update().is_clear() {
                    return Ok(Mode::Changed);
                }
                continue;
            }
            ready = from.readable() => ready?,
        }
        // A fault applied before these bytes arrived holds them: look again right
        // before moving them (the wake-up may have raced the change).
        if !faults.borrow().is_clear() {
            return Ok(Mode::Changed);
        }
        let n = match from.try_io(Interest::READABLE, || pipe.fill_from(from)) {
            Ok(0) => return Ok(Mode::Ended),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        let mut left = n;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || pipe.drain_into(to, left)) {
                Ok(m) => left -= m,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            link.writes.fetch_add(1, Ordering::Relaxed);
        }
        link.counter(d).fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The faulted path: a reader and a writer joined by a queue of chunks (bounded by
/// bytes), the writer holding, delaying, pacing and slicing them. Returns once the
/// faults are clear again and the queue is drained, or at EOF.
async fn queue_while_faulted(
    from: &mut tokio::net::tcp::ReadHalf<'_>,
    to: &mut tokio::net::tcp::WriteHalf<'_>,
    faults: &mut watch::Receiver<Faults>,
    link: &Link,
    d: Direction,
    jitter: &mut crate::gen::Rng,
) -> std::io::Result<Mode> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Bytes)>();
    let room = Semaphore::new(QUEUE_BYTES);
    let mut read_faults = faults.clone();
    let slice_seed = jitter.next_u64() ^ 0x5eed;
    let read = async {
        // The queue's sender ends with the reader: the writer then sees the end.
        let tx = tx;
        let mut last_due = Instant::now();
        // One buffer, split into chunks: once the writer has dropped them, `reserve`
        // takes the space back instead of allocating (a small read must not cost a
        // large allocation).
        let mut buf = BytesMut::with_capacity(CHUNK);
        loop {
            let f = *read_faults
                .wait_for(|f| !f.partition)
                .await
                .map_err(closed)?;
            if f.is_clear() {
                return Ok::<Mode, std::io::Error>(Mode::Changed);
            }
            buf.reserve(CHUNK);
            // A fault that clears while the read waits ends the wait: the clear path
            // takes over without a byte in the queue's hands.
            let n = tokio::select! {
                n = from.read_buf(&mut buf) => n?,
                _ = read_faults.wait_for(|f| f.is_clear()) => continue,
            };
            if n == 0 {
                return Ok(Mode::Ended);
            }
            let chunk = buf.split_to(n).freeze();
            // The chunk's bytes are held until the writer is done with them: a full
            // queue stops the reading (TCP's backpressure does the rest).
            room.acquire_many(n as u32).await.map_err(closed)?.forget();
            let due = match f.delay {
                Some(delay) => last_due.max(Instant::now() + jittered(delay, jitter)),
                None => Instant::now(),
            };
            last_due = due;
            if tx.send((due, chunk)).is_err() {
                return Ok(Mode::Ended);
            }
        }
    };
    let write = async {
        let mut pace = Pace::default();
        let mut slicer = crate::gen::Rng::new(slice_seed);
        let mut write_faults = faults.clone();
        while let Some((due, bytes)) = rx.recv().await {
            // Only a delayed chunk waits: tokio's timer rounds up to whole milliseconds,
            // so sleeping until "now" would add a millisecond to every chunk.
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            let len = bytes.len();
            write_chunk(
                to,
                bytes,
                &mut write_faults,
                &mut pace,
                &mut slicer,
                &link.writes,
            )
            .await?;
            link.counter(d).fetch_add(len as u64, Ordering::Relaxed);
            room.add_permits(len);
        }
        Ok::<(), std::io::Error>(())
    };
    let (r, w) = tokio::join!(read, write);
    w?;
    r
}

/// Makes the socket's close an RST (SO_LINGER of zero). A zero linger never blocks the
/// close, which is what tokio's deprecation of `set_linger` warns about.
#[allow(deprecated)]
fn rst_on_close(s: &TcpStream) {
    let _ = s.set_linger(Some(Duration::ZERO));
}

fn closed<T>(_: T) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the link is gone")
}

/// `delay` give or take up to its jitter.
fn jittered(delay: Delay, rng: &mut crate::gen::Rng) -> Duration {
    let base = delay.ms as i64;
    let j = delay.jitter_ms as i64;
    let ms = if j == 0 {
        base
    } else {
        base + rng.range(0, 2 * j as u64) as i64 - j
    };
    Duration::from_millis(ms.max(0) as u64)
}

/// Bandwidth pacing: when the next byte may leave.
#[derive(Default)]
struct Pace {
    next: Option<Instant>,
}

impl Pace {
    /// Waits until `n` more bytes may leave at `bytes_per_s`.
    async fn take(&mut self, n: usize, bytes_per_s: u64) {
        let now = Instant::now();
        let start = self.next.map_or(now, |t| t.max(now));
        if start > now {
            tokio::time::sleep_until(start).await;
        }
        self.next = Some(start + Duration::from_secs_f64(n as f64 / bytes_per_s as f64));
    }
}

/// Writes one chunk under the direction's faults as they are at each piece: held while
/// partitioned, paced to the bandwidth, sliced; a heal mid-chunk writes the rest at once.
/// Each write is counted in `writes` before it is made.
async fn write_chunk<W: AsyncWrite + Unpin>(
    to: &mut W,
    mut bytes: Bytes,
    faults: &mut watch::Receiver<Faults>,
    pace: &mut Pace,
    slicer: &mut crate::gen::Rng,
    writes: &AtomicU64,
) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let f = *faults.wait_for(|f| !f.partition).await.map_err(closed)?;
        writes.fetch_add(1, Ordering::Relaxed);
        if f.is_clear() {
            return to.write_all(&bytes).await;
        }
        // Paced pieces of at most 1/20 s, so the rate holds at any chunk size.
        let mut n = bytes.len();
        if let Some(b) = f.bandwidth {
            n = n.min((b as usize / 20).max(1));
        }
        if f.slice {
            // `range` is inclusive: pieces of 1 to SLICE_MAX bytes.
            n = n.min(1 + slicer.range(0, fault::SLICE_MAX as u64 - 1) as usize);
        }
        if let Some(b) = f.bandwidth {
            pace.take(n, b).await;
        }
        let piece = bytes.split_to(n);
        to.write_all(&piece).await?;
        if f.slice {
            to.flush().await?;
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
