//! `soakcheck demo worker`: a passthrough worker that keeps effectively-once through
//! kill -9 of itself, the sink or its sources.
//!
//! Sources (feeds) connect to its connector-source port; every MESSAGE line whose id is
//! above the stream's last seen id is forwarded to the sink as a stream-1 MESSAGE whose
//! id is the sink output offset. Every checkpoint interval the worker runs a 2PC round
//! with the sink while holding the core lock (so no data moves between PHASE1 and
//! PHASE2): PHASE1 for [(1, committed, current)], and on a commit vote it first writes the
//! decision durably ([`super::state`]), then sends PHASE2 commit, then acks each source's
//! streams with their checkpointed points of reference. An abort vote, or a lost sink
//! connection, rolls the worker back to the last checkpoint: the sink offset and every
//! stream's last seen id return to it, and the sources are sent RESTART so they resend
//! from the point of reference their NOTIFY is answered with. On (re)connecting to the
//! sink, the worker answers the sink's uncommitted transactions from its durable
//! decision: commit exactly the transaction it recorded.
//!
//! A round with nothing new to commit (no data, no stream ending) is skipped, so an idle
//! cluster does not fill the txnlog with empty `[(1, x, x)]` transactions.
//!
//! While it is not connected to the sink and recovered, the worker refuses NOTIFYs and
//! restarts sources that send data, so nothing is ever accepted that could be lost.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::demo::control::{self, Handoff, MemberAddr, Membership, Register};
use crate::demo::log::Level;
use crate::demo::state::{self, CheckpointState, StreamState};
use crate::plog;
use crate::wire::connector::{
    encode_message_into, Frame, TwoPc, U64MAX, VERSION_SINK, VERSION_SOURCE,
};
use crate::wire::external::{self, ClusterStatus, ShrinkRequest};
use crate::wire::{read_frame, write_frame, WireError};

/// A fault the worker injects once into the committed output, for testing checkers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InjectKind {
    Loss,
    Duplicate,
    Reorder,
    Corrupt,
    /// The sink's bug, not a worker's: `run` and `demo cluster` start the sink with
    /// `--skip-fsync`; a worker given it injects nothing.
    SkipFsync,
}

impl crate::choice::Choice for InjectKind {
    const CHOICES: &'static [(Self, &'static str)] = &[
        (InjectKind::Loss, "Drop lines of the committed output"),
        (InjectKind::Duplicate, "Send lines again"),
        (InjectKind::Reorder, "Swap two adjacent lines"),
        (InjectKind::Corrupt, "Change a byte of a line"),
        (
            InjectKind::SkipFsync,
            "The sink acknowledges commits it never fsynced (no --inject-key)",
        ),
    ];
}

crate::display_as_choice!(InjectKind);

/// How long a read from or a write to the sink may wait before the sink is taken as
/// lost (and reconnected to).
pub const SINK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Injection {
    pub kind: InjectKind,
    /// Inject at the line after this many lines (of `key`, if given).
    pub after_lines: u64,
    pub key: Option<u8>,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub name: String,
    pub worker_count: usize,
    pub source_addr: SocketAddr,
    pub external_addr: SocketAddr,
    pub sink_addr: SocketAddr,
    pub state_dir: PathBuf,
    pub checkpoint_interval: Duration,
    pub inject: Option<Injection>,
    /// The initializer's control port (the initializer listens on it).
    pub control_addr: SocketAddr,
    /// Register as a new member (grow) rather than an initial one.
    pub join: bool,
    /// The run this worker belongs to (see [`crate::demo`]): peers of another run are
    /// refused.
    pub run_id: Option<String>,
}

/// `payload` with one byte changed (the last before its LF, never the key byte when
/// there is another): an empty payload becomes one byte.
fn corrupted(payload: &[u8]) -> Vec<u8> {
    let mut line = payload.to_vec();
    let Some(last) = line.len().checked_sub(1) else {
        return b"#".to_vec();
    };
    let at = line.len().saturating_sub(2).max(1).min(last);
    line[at] = if line[at] == b'0' { b'1' } else { b'0' };
    line
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] state::StateError),
}

type ConnId = u64;
type SourceWriter = Arc<Mutex<BufWriter<TcpStream>>>;

struct SourceConn {
    writer: SourceWriter,
    socket: TcpStream,
}

#[derive(Debug, Default)]
struct LiveStream {
    name: String,
    last_seen: Option<u64>,
    owner: Option<ConnId>,
    eos: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum InjectState {
    Armed,
    Holding { stream_id: u64, payload: Vec<u8> },
    PendingCommit,
    Done,
}

struct SinkConn {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
}

struct Core {
    config: WorkerConfig,
    sink: Option<SinkConn>,
    durable: CheckpointState,
    sink_offset: u64,
    streams: HashMap<u64, LiveStream>,
    conns: HashMap<ConnId, SourceConn>,
    next_checkpoint: u64,
    dirty: bool,
    inject: Option<(Injection, u64, InjectState)>,
    frame: Vec<u8>,
}

/// The sink connection broke: roll back and reconnect.
struct SinkLost(String);

impl From<WireError> for SinkLost {
    fn from(e: WireError) -> Self {
        SinkLost(e.to_string())
    }
}
impl From<std::io::Error> for SinkLost {
    fn from(e: std::io::Error) -> Self {
        SinkLost(e.to_string())
    }
}

fn send(w: &mut impl Write, frame: &Frame) -> std::io::Result<()> {
    write_frame(w, &frame.encode())
}

impl Core {
    fn ready(&self) -> bool {
        self.sink.is_some()
    }

    fn sink_stream_name(&self) -> String {
        // A stable "sink routing id" per worker name, shaped like Wallaroo's.
        let id = crate::wire::connector::stream_id_for(self.config.name.as_bytes());
        format!("Passthrough-w-{}-id-{id}", self.config.name)
    }

    /// Connects to the sink and resolves its uncommitted transactions (wallaroo-formats.md §5.3).
    fn connect_sink(&mut self) -> Result<(), SinkLost> {
        let socket = TcpStream::connect_timeout(&self.config.sink_addr, Duration::from_secs(2))?;
        socket.set_nodelay(true)?;
        // A half-open sink (a partition, a dead host) must not stall the worker: a read or
        // a write that waits this long loses the sink, and the worker reconnects as after
        // a sink crash.
        socket.set_read_timeout(Some(SINK_TIMEOUT))?;
        socket.set_write_timeout(Some(SINK_TIMEOUT))?;
        let mut reader = BufReader::with_capacity(1 << 16, socket.try_clone()?);
        let mut writer = BufWriter::with_capacity(1 << 20, socket);
        let hello = Frame::Hello {
            version: VERSION_SINK.into(),
            cookie: crate::demo::run_cookie(self.config.run_id.as_deref()),
            program: "Passthrough".into(),
            instance: self.config.name.clone(),
        };
        send(&mut writer, &hello)?;
        let name = self.sink_stream_name().into_bytes();
        send(
            &mut writer,
            &Frame::Notify {
                stream_id: 1,
                stream_name: name,
                point_of_ref: self.durable.sink_committed,
            },
        )?;
        let rtag = 77778;
        send(&mut writer, &TwoPc::ListUncommitted { rtag }.into_frame())?;
        writer.flush()?;
        let mut uncommitted = None;
        while uncommitted.is_none() {
            match Frame::decode(&read_frame(&mut reader)?)? {
                Frame::Ok { .. } | Frame::NotifyAck { .. } => {}
                Frame::Error { message } => {
                    return Err(SinkLost(format!("sink refused: {message}")))
                }
                Frame::Message {
                    stream_id: 0,
                    payload,
                    ..
                } => {
                    if let TwoPc::ReplyUncommitted { txn_ids, .. } = TwoPc::decode(&payload)? {
                        uncommitted = Some(txn_ids);
                    }
                }
                other => return Err(SinkLost(format!("unexpected frame from sink: {other:?}"))),
            }
        }
        for txn_id in uncommitted.unwrap_or_default() {
            let commit = self.durable.decided_txn.as_deref() == Some(txn_id.as_str());
            plog!(
                Level::Info,
                "resolving uncommitted {txn_id}: {}",
                if commit { "commit" } else { "abort" }
            );
            send(&mut writer, &TwoPc::Phase2 { txn_id, commit }.into_frame())?;
        }
        writer.flush()?;
        self.sink = Some(SinkConn { reader, writer });
        self.rollback_to_checkpoint();
        plog!(
            Level::Info,
            "connected to the sink at {}; committed offset {}",
            self.config.sink_addr,
            self.durable.sink_committed
        );
        Ok(())
    }

    /// Forgets everything after the last checkpoint.
    fn rollback_to_checkpoint(&mut self) {
        self.sink_offset = self.durable.sink_committed;
        for (id, s) in self.streams.iter_mut() {
            s.last_seen = self.durable.streams.get(id).and_then(|d| d.por);
            s.eos = false;
        }
        self.dirty = false;
        if let Some((inj, seen, st)) = self.inject.as_mut() {
            if matches!(st, InjectState::Holding { .. } | InjectState::PendingCommit) {
                *st = InjectState::Armed;
                *seen = inj.after_lines;
            }
        }
    }

    /// RESTART every source to `address` (they reconnect there and resume from their
    /// NOTIFY_ACK), and forget which connection owned which stream.
    fn restart_sources_to(&mut self, address: &str) {
        let address = address.to_string();
        for (_, conn) in self.conns.drain() {
            if let Ok(mut w) = conn.writer.lock() {
                let _ = send(
                    &mut *w,
                    &Frame::Restart {
                        address: Some(address.clone()),
                    },
                );
                let _ = w.flush();
            }
            let _ = conn.socket.shutdown(Shutdown::Both);
        }
        for s in self.streams.values_mut() {
            s.owner = None;
        }
    }

    /// RESTART every source to this worker (after a rollback).
    fn restart_sources(&mut self) {
        let own = self.config.source_addr.to_string();
        self.restart_sources_to(&own);
    }

    fn lose_sink(&mut self, why: &str) {
        if self.sink.take().is_some() {
            plog!(
                Level::Warning,
                "lost the sink connection: {why}; rolling back to checkpoint {}",
                self.durable.checkpoint
            );
        }
        self.rollback_to_checkpoint();
        self.restart_sources();
    }

    /// Forwards one source line (dropping ids already seen) and injects the fault.
    fn forward(&mut self, stream_id: u64, message_id: u64, payload: &[u8]) -> Result<(), SinkLost> {
        let stream = self.streams.entry(stream_id).or_default();
        if stream.last_seen.is_some_and(|seen| message_id <= seen) {
            return Ok(());
        }
        stream.last_seen = Some(message_id);
        self.dirty = true;
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut plain = true;
        if let Some((inj, seen, st)) = self.inject.as_mut() {
            if inj.key.is_none_or(|k| payload.first() == Some(&k)) {
                match st.clone() {
                    InjectState::Armed => {
                        *seen += 1;
                        if *seen > inj.after_lines {
                            plain = false;
                            plog!(
                                Level::Warning,
                                "injecting {:?} at stream {stream_id} message {message_id}",
                                inj.kind
                            );
                            match inj.kind {
                                InjectKind::Loss => *st = InjectState::PendingCommit,
                                // Refused when the worker is planned: the sink's bug.
                                InjectKind::SkipFsync => {
                                    plain = true;
                                    *st = InjectState::Done;
                                }
                                InjectKind::Duplicate => {
                                    out.push(payload.to_vec());
                                    out.push(payload.to_vec());
                                    *st = InjectState::PendingCommit;
                                }
                                InjectKind::Corrupt => {
                                    out.push(corrupted(payload));
                                    *st = InjectState::PendingCommit;
                                }
                                InjectKind::Reorder => {
                                    *st = InjectState::Holding {
                                        stream_id,
                                        payload: payload.to_vec(),
                                    }
                                }
                            }
                        }
                    }
                    InjectState::Holding {
                        stream_id: held_stream,
                        payload: held,
                    } if held_stream == stream_id => {
                        plain = false;
                        out.push(payload.to_vec());
                        out.push(held);
                        *st = InjectState::PendingCommit;
                    }
                    _ => {}
                }
            }
        }
        if plain {
            self.write_sink(payload)?;
        } else {
            for line in out {
                self.write_sink(&line)?;
            }
        }
        Ok(())
    }

    fn write_sink(&mut self, payload: &[u8]) -> Result<(), SinkLost> {
        let Some(sink) = self.sink.as_mut() else {
            return Err(SinkLost("not connected".into()));
        };
        self.frame.clear();
        encode_message_into(&mut self.frame, 1, self.sink_offset, 0, None, payload);
        write_frame(&mut sink.writer, &self.frame)?;
        self.sink_offset += payload.len() as u64;
        Ok(())
    }

    /// One 2PC round; returns false when there was nothing to do.
    fn checkpoint(&mut self) -> Result<bool, SinkLost> {
        let eos_pending = self.streams.values().any(|s| s.eos && s.owner.is_some());
        let holding = matches!(self.inject, Some((_, _, InjectState::Holding { .. })));
        if self.sink.is_none() || holding || !(self.dirty || eos_pending) {
            return Ok(false);
        }
        let c = self.next_checkpoint.max(self.durable.checkpoint + 1);
        self.next_checkpoint = c + 1;
        let txn_id = format!("{}:c_id={c}", self.sink_stream_name());
        let (start, end) = (self.durable.sink_committed, self.sink_offset);
        let sink = self.sink.as_mut().expect("checked above");
        send(
            &mut sink.writer,
            &TwoPc::Phase1 {
                txn_id: txn_id.clone(),
                where_list: vec![(1, start, end)],
            }
            .into_frame(),
        )?;
        sink.writer.flush()?;
        let vote = loop {
            match Frame::decode(&read_frame(&mut sink.reader)?)? {
                Frame::Message {
                    stream_id: 0,
                    payload,
                    ..
                } => match TwoPc::decode(&payload)? {
                    TwoPc::Reply { txn_id: t, commit } if t == txn_id => break commit,
                    other => return Err(SinkLost(format!("unexpected 2PC message {other:?}"))),
                },
                Frame::Error { message } => return Err(SinkLost(format!("sink error: {message}"))),
                _ => {}
            }
        };
        if !vote {
            plog!(
                Level::Warning,
                "sink voted abort for {txn_id}; rolling back"
            );
            send(
                &mut sink.writer,
                &TwoPc::Phase2 {
                    txn_id,
                    commit: false,
                }
                .into_frame(),
            )?;
            sink.writer.flush()?;
            self.rollback_to_checkpoint();
            self.restart_sources();
            return Ok(true);
        }
        // The commit point: durable before PHASE2.
        let mut next = self.durable.clone();
        next.checkpoint = c;
        next.sink_committed = end;
        next.decided_txn = Some(txn_id.clone());
        for (id, s) in &self.streams {
            let entry = next.streams.entry(*id).or_insert_with(|| StreamState {
                name: s.name.clone(),
                por: None,
            });
            entry.por = s.last_seen.or(entry.por);
        }
        if let Some((_, _, st)) = self.inject.as_mut() {
            if *st == InjectState::PendingCommit {
                *st = InjectState::Done;
                next.injected = true;
            }
        }
        if let Err(e) = state::store(&self.config.state_dir, &next) {
            plog!(Level::Critical, "cannot write the checkpoint decision: {e}");
            std::process::exit(70);
        }
        self.durable = next;
        self.dirty = false;
        let sink = self.sink.as_mut().expect("checked above");
        send(
            &mut sink.writer,
            &TwoPc::Phase2 {
                txn_id,
                commit: true,
            }
            .into_frame(),
        )?;
        sink.writer.flush()?;
        self.ack_sources();
        Ok(true)
    }

    /// ACKs every source connection's streams with their checkpointed points of reference;
    /// finished streams are released.
    fn ack_sources(&mut self) {
        let mut by_conn: HashMap<ConnId, Vec<(u64, u64)>> = HashMap::new();
        for (id, s) in self.streams.iter_mut() {
            if let Some(owner) = s.owner {
                let por = self
                    .durable
                    .streams
                    .get(id)
                    .and_then(|d| d.por)
                    .unwrap_or(U64MAX);
                by_conn.entry(owner).or_default().push((*id, por));
                if s.eos {
                    s.owner = None;
                    s.eos = false;
                }
            }
        }
        for (conn, acks) in by_conn {
            if let Some(c) = self.conns.get(&conn) {
                if let Ok(mut w) = c.writer.lock() {
                    let _ = send(&mut *w, &Frame::Ack { credits: 0, acks });
                    let _ = w.flush();
                }
            }
        }
    }
}

/// Shared between the checkpoint loop, source handlers and the external channel.
struct Worker {
    core: Mutex<Core>,
    ready: AtomicBool,
    next_conn: AtomicU64,
    members: Mutex<Membership>,
    /// The initializer's connector-source address, where a leaving worker's sources go.
    initializer_source: Mutex<Option<SocketAddr>>,
}

impl Worker {
    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs the worker until it is killed.
pub fn run_worker(config: WorkerConfig) -> Result<(), WorkerError> {
    let durable = state::load_owned(&config.state_dir, &config.name, config.run_id.as_deref())?;
    let source_listener = bind(config.source_addr, "connector source port")?;
    let external_listener = bind(config.external_addr, "external channel port")?;
    let streams = durable
        .streams
        .iter()
        .map(|(id, s)| {
            let live = LiveStream {
                name: s.name.clone(),
                last_seen: s.por,
                owner: None,
                eos: false,
            };
            (*id, live)
        })
        .collect();
    let inject = config
        .inject
        .clone()
        .filter(|_| !durable.injected)
        .map(|i| (i, 0, InjectState::Armed));
    let is_initializer = config.name == "initializer";
    let members = if is_initializer {
        Membership::load(
            &config.state_dir,
            (0..config.worker_count.max(1))
                .map(crate::topology::worker_name)
                .collect(),
        )
    } else {
        Membership {
            names: vec![config.name.clone()],
            ..Default::default()
        }
    };
    let control_listener = is_initializer
        .then(|| bind(config.control_addr, "control port"))
        .transpose()?;
    let registration = Register {
        name: config.name.clone(),
        addr: MemberAddr {
            external: config.external_addr,
            source: config.source_addr,
        },
        join: config.join,
    };
    let control_addr = config.control_addr;
    let run_id = config.run_id.clone();
    plog!(
        Level::Info,
        "worker {} starting: sources on {}, external channel on {}, sink at {}, checkpoint {}",
        config.name,
        config.source_addr,
        config.external_addr,
        config.sink_addr,
        durable.checkpoint
    );
    let interval = config.checkpoint_interval;
    let worker = Arc::new(Worker {
        core: Mutex::new(Core {
            sink_offset: durable.sink_committed,
            next_checkpoint: durable.checkpoint + 1,
            durable,
            config,
            sink: None,
            streams,
            conns: HashMap::new(),
            dirty: false,
            inject,
            frame: Vec::with_capacity(256),
        }),
        ready: AtomicBool::new(false),
        next_conn: AtomicU64::new(1),
        members: Mutex::new(members),
        initializer_source: Mutex::new(None),
    });
    if let Some(listener) = control_listener {
        serve_each(listener, &worker, serve_control);
    }
    register(&worker, control_addr, run_id, registration);
    serve_each(source_listener, &worker, serve_source);
    serve_each(external_listener, &worker, serve_external);
    checkpoint_loop(&worker, interval)
}

fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, WorkerError> {
    TcpListener::bind(addr).map_err(|source| WorkerError::Bind { what, addr, source })
}

/// Serves each connection to `listener` with `serve`, on a thread of its own.
fn serve_each(listener: TcpListener, worker: &Arc<Worker>, serve: fn(&Worker, TcpStream)) {
    let worker = Arc::clone(worker);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let worker = Arc::clone(&worker);
            std::thread::spawn(move || serve(&worker, stream));
        }
    });
}

/// Registers with the initializer (retrying until it is up), and notes where its
/// source listens.
fn register(
    worker: &Arc<Worker>,
    control_addr: SocketAddr,
    run_id: Option<String>,
    registration: Register,
) {
    let worker = Arc::clone(worker);
    std::thread::spawn(move || loop {
        match control::request(
            control_addr,
            control::REGISTER,
            run_id.as_deref(),
            &registration,
        ) {
            Ok(body) => {
                if let Ok(reply) = serde_json::from_slice::<control::RegisterReply>(&body) {
                    *worker
                        .initializer_source
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(reply.initializer_source);
                }
                return;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    });
}

/// Connects to the sink (again, whenever it is lost) and checkpoints every
/// `interval`, until the worker is killed.
fn checkpoint_loop(worker: &Worker, interval: Duration) -> ! {
    let mut backoff = Duration::from_millis(50);
    loop {
        let connected = worker.lock().sink.is_some();
        if !connected {
            let result = worker.lock().connect_sink();
            match result {
                Ok(()) => {
                    worker.ready.store(true, Ordering::SeqCst);
                    backoff = Duration::from_millis(50);
                }
                Err(SinkLost(why)) => {
                    worker.ready.store(false, Ordering::SeqCst);
                    plog!(
                        Level::Info,
                        "sink not reachable ({why}); retrying in {backoff:?}"
                    );
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            }
        }
        std::thread::sleep(interval);
        let mut core = worker.lock();
        if let Err(SinkLost(why)) = core.checkpoint() {
            worker.ready.store(false, Ordering::SeqCst);
            core.lose_sink(&why);
        }
    }
}

fn serve_source(worker: &Worker, socket: TcpStream) {
    let _ = socket.set_nodelay(true);
    let Ok(read_half) = socket.try_clone() else {
        return;
    };
    let Ok(write_half) = socket.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(1 << 16, read_half);
    let writer: SourceWriter = Arc::new(Mutex::new(BufWriter::new(write_half)));
    let conn = worker.next_conn.fetch_add(1, Ordering::SeqCst);
    let result = source_session(worker, conn, &socket, &mut reader, &writer);
    if let Err(why) = result {
        plog!(Level::Debug, "source connection {conn} closed: {why}");
    }
    let _ = socket.shutdown(Shutdown::Both);
    let mut core = worker.lock();
    core.conns.remove(&conn);
    for s in core.streams.values_mut() {
        if s.owner == Some(conn) {
            s.owner = None;
            s.eos = false;
        }
    }
}

fn source_session(
    worker: &Worker,
    conn: ConnId,
    socket: &TcpStream,
    reader: &mut BufReader<TcpStream>,
    writer: &SourceWriter,
) -> Result<(), String> {
    const MAX_CREDITS: u32 = 500;
    const REFILL: u32 = 50;
    let reply = |frame: &Frame| reply_on(writer, frame);
    source_handshake(worker, reader, &reply)?;
    reply(&Frame::Ok {
        credits: MAX_CREDITS,
    })?;
    worker.lock().conns.insert(
        conn,
        SourceConn {
            writer: Arc::clone(writer),
            socket: socket.try_clone().map_err(|e| e.to_string())?,
        },
    );
    let mut counter = MAX_CREDITS;
    loop {
        let body = read_frame(reader).map_err(|e| e.to_string())?;
        counter = counter.saturating_sub(1);
        if counter <= REFILL {
            reply(&Frame::Ack {
                credits: MAX_CREDITS - counter,
                acks: vec![],
            })?;
            counter = MAX_CREDITS;
        }
        let frame = match Frame::decode(&body) {
            Ok(f) => f,
            Err(e) => {
                let _ = reply(&Frame::Error {
                    message: e.to_string(),
                });
                return Err(e.to_string());
            }
        };
        on_source_frame(worker, conn, frame, &reply)?;
    }
}

/// Sends `frame` to a source and flushes it.
fn reply_on(writer: &SourceWriter, frame: &Frame) -> Result<(), String> {
    let mut w = writer.lock().map_err(|_| "writer poisoned".to_string())?;
    send(&mut *w, frame)
        .and_then(|_| w.flush())
        .map_err(|e| e.to_string())
}

/// A source's HELLO: this run's cookie and the source protocol's version.
fn source_handshake(
    worker: &Worker,
    reader: &mut BufReader<TcpStream>,
    reply: &dyn Fn(&Frame) -> Result<(), String>,
) -> Result<(), String> {
    let expected = crate::demo::run_cookie(worker.lock().config.run_id.as_deref());
    match Frame::decode(&read_frame(reader).map_err(|e| e.to_string())?) {
        Ok(Frame::Hello {
            version, cookie, ..
        }) if version == VERSION_SOURCE && cookie == expected => Ok(()),
        Ok(Frame::Hello { cookie, .. })
            if crate::demo::peer_of(&expected, &cookie) == crate::demo::Peer::OtherRun =>
        {
            plog!(
                Level::Error,
                "refused a source of another run: its cookie is {cookie:?}, this run's is {expected:?}"
            );
            reply(&Frame::Error {
                message: "this worker belongs to another run".into(),
            })?;
            Err(format!("a source of another run ({cookie:?})"))
        }
        Ok(other) => {
            reply(&Frame::Error {
                message: "expected HELLO with version 0.0.1 and the cookie".into(),
            })?;
            Err(format!("bad handshake {other:?}"))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// One frame of a source after its handshake: NOTIFY, a message, EOS.
fn on_source_frame(
    worker: &Worker,
    conn: ConnId,
    frame: Frame,
    reply: &dyn Fn(&Frame) -> Result<(), String>,
) -> Result<(), String> {
    let mut core = worker.lock();
    if !core.conns.contains_key(&conn) {
        return Err("restarted".into());
    }
    match frame {
        Frame::Notify {
            stream_id,
            stream_name,
            ..
        } => {
            let ready = core.ready();
            let durable_por = core.durable.streams.get(&stream_id).and_then(|d| d.por);
            let stream = core.streams.entry(stream_id).or_default();
            let owned_elsewhere = stream.owner.is_some_and(|o| o != conn);
            let success = ready && !owned_elsewhere;
            if success {
                stream.owner = Some(conn);
                stream.name = String::from_utf8_lossy(&stream_name).into_owned();
            }
            drop(core);
            reply(&Frame::NotifyAck {
                success,
                stream_id,
                point_of_ref: durable_por.unwrap_or(U64MAX),
            })
        }
        Frame::Message {
            stream_id,
            message_id,
            payload,
            ..
        } => {
            if !core.ready() {
                drop(core);
                let _ = reply(&Frame::Restart { address: None });
                return Err("data while not connected to the sink".into());
            }
            if core.streams.get(&stream_id).and_then(|s| s.owner) != Some(conn) {
                drop(core);
                let _ = reply(&Frame::Error {
                    message: format!(
                        "Bad/unregistered stream_id {stream_id} with message_id {message_id}"
                    ),
                });
                return Err("message for an unregistered stream".into());
            }
            if let Err(SinkLost(why)) = core.forward(stream_id, message_id, &payload) {
                worker.ready.store(false, Ordering::SeqCst);
                core.lose_sink(&why);
                return Err("sink lost".into());
            }
            Ok(())
        }
        Frame::Eos { stream_id } => {
            if let Some(s) = core.streams.get_mut(&stream_id) {
                if s.owner == Some(conn) {
                    s.eos = true;
                }
            }
            Ok(())
        }
        other => {
            drop(core);
            let _ = reply(&Frame::Error {
                message: format!("unexpected frame tag {}", other.tag()),
            });
            Err("unexpected frame".into())
        }
    }
}

fn serve_external(worker: &Worker, mut socket: TcpStream) {
    let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
    while let Ok((id, payload)) = external::read_message(&mut socket) {
        let (reply_id, reply, exit_after) = match id {
            external::CLUSTER_STATUS_QUERY => {
                let names = worker
                    .members
                    .lock()
                    .map(|m| m.names.clone())
                    .unwrap_or_default();
                let status = ClusterStatus {
                    worker_count: names.len(),
                    worker_names: names,
                    processing_messages: worker.ready.load(Ordering::SeqCst),
                };
                (
                    external::CLUSTER_STATUS_RESPONSE,
                    serde_json::to_vec(&status).expect("status serializes"),
                    false,
                )
            }
            external::SHRINK_REQUEST => match serde_json::from_slice::<ShrinkRequest>(&payload) {
                Ok(request) => shrink(worker, request),
                Err(e) => (
                    external::SHRINK_ERROR_RESPONSE,
                    format!("Invalid shrink request: {e}").into_bytes(),
                    false,
                ),
            },
            _ => (
                external::SHRINK_ERROR_RESPONSE,
                b"Unsupported request".to_vec(),
                false,
            ),
        };
        if external::write_message(&mut socket, reply_id, &reply).is_err() {
            break;
        }
        if exit_after {
            let _ = socket.flush();
            plog!(Level::Info, "left the cluster; exiting");
            std::process::exit(0);
        }
    }
}

/// A shrink request: on the initializer it names workers to remove (or asks which may
/// be); on the named worker itself it makes that worker leave.
fn shrink(worker: &Worker, request: ShrinkRequest) -> (u16, Vec<u8>, bool) {
    let error = |text: &str| {
        (
            external::SHRINK_ERROR_RESPONSE,
            text.as_bytes().to_vec(),
            false,
        )
    };
    let me = worker.lock().config.name.clone();
    if me != "initializer" {
        if request.node_names != [me.clone()] {
            return error("Invalid shrink targets!");
        }
        return match leave(worker) {
            Ok(()) => (
                external::SHRINK_ERROR_RESPONSE,
                b"Shrinking by 1 workers!".to_vec(),
                true,
            ),
            Err(why) => {
                plog!(Level::Warning, "cannot leave now: {why}");
                error("Autoscale event currently underway, cannot shrink at this time")
            }
        };
    }
    let members = worker.members.lock().map(|m| m.clone()).unwrap_or_default();
    let eligible: Vec<String> = members
        .names
        .iter()
        .filter(|n| *n != "initializer")
        .cloned()
        .collect();
    if request.query {
        let body = serde_json::json!({ "node_names": eligible, "node_count": eligible.len() });
        return (
            external::SHRINK_QUERY_RESPONSE,
            body.to_string().into_bytes(),
            false,
        );
    }
    let targets: Vec<String> = if !request.node_names.is_empty() {
        if !request.node_names.iter().all(|n| eligible.contains(n)) {
            return error("Invalid shrink targets!");
        }
        request.node_names.clone()
    } else if request.node_count > 0 && request.node_count <= eligible.len() {
        eligible[eligible.len() - request.node_count..].to_vec()
    } else if request.node_count == 0 {
        return error("Cannot shrink 0 workers!");
    } else {
        return error("Invalid shrink targets!");
    };
    for target in &targets {
        let Some(addr) = members.addrs.get(target) else {
            return error("Invalid shrink targets!");
        };
        let forwarded = (|| -> Result<(), WireError> {
            let mut s = TcpStream::connect_timeout(&addr.external, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(60)))?;
            let body = serde_json::to_vec(&ShrinkRequest {
                node_names: vec![target.clone()],
                ..Default::default()
            })
            .expect("serializes");
            external::write_message(&mut s, external::SHRINK_REQUEST, &body)?;
            let (_, reply) = external::read_message(&mut s)?;
            if reply.starts_with(b"Shrinking") {
                Ok(())
            } else {
                Err(WireError::Malformed {
                    what: "shrink reply",
                    detail: String::from_utf8_lossy(&reply).into_owned(),
                })
            }
        })();
        if let Err(e) = forwarded {
            plog!(Level::Warning, "shrinking {target} failed: {e}");
            return error("Autoscale event currently underway, cannot shrink at this time");
        }
    }
    (
        external::SHRINK_ERROR_RESPONSE,
        format!("Shrinking by {} workers!", targets.len()).into_bytes(),
        false,
    )
}

/// Leaves the cluster: commit everything, hand the streams to the initializer, move the
/// sources there (RESTART with its address), and have the sink rename our files.
fn leave(worker: &Worker) -> Result<(), String> {
    let initializer_source = worker
        .initializer_source
        .lock()
        .map_err(|_| "poisoned".to_string())?
        .ok_or("not registered with the initializer yet")?;
    let mut core = worker.lock();
    if core.sink.is_none() {
        return Err("not connected to the sink".into());
    }
    if let Err(SinkLost(why)) = core.checkpoint() {
        worker.ready.store(false, Ordering::SeqCst);
        core.lose_sink(&why);
        return Err(why);
    }
    if core.dirty {
        return Err("uncommitted data remains".into());
    }
    let handoff = Handoff {
        from: core.config.name.clone(),
        streams: core.durable.streams.clone(),
    };
    control::request(
        core.config.control_addr,
        control::HANDOFF,
        core.config.run_id.as_deref(),
        &handoff,
    )
    .map_err(|e| format!("handoff: {e}"))?;
    // From here on, the initializer owns our streams; sources go there.
    core.restart_sources_to(&initializer_source.to_string());
    let name = core.config.name.clone();
    if let Some(sink) = core.sink.as_mut() {
        send(
            &mut sink.writer,
            &TwoPc::WorkersLeft {
                rtag: 7,
                workers: vec![name.clone()],
            }
            .into_frame(),
        )
        .map_err(|e| e.to_string())?;
        sink.writer.flush().map_err(|e| e.to_string())?;
    }
    control::request(
        core.config.control_addr,
        control::LEFT,
        core.config.run_id.as_deref(),
        &name,
    )
    .map_err(|e| format!("left: {e}"))?;
    // Give the sink a moment to rename before our connection closes.
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}

/// The initializer's control channel: registrations, handoffs, departures.
fn serve_control(worker: &Worker, mut socket: TcpStream) {
    let _ = socket.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok((id, payload)) = external::read_message(&mut socket) else {
        return;
    };
    let our_run = worker.lock().config.run_id.clone();
    let result: Result<Vec<u8>, String> = (|| {
        let envelope: control::Envelope<serde_json::Value> =
            serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
        if envelope.run_id != our_run {
            let why = format!(
                "refused a control message of another run ({:?}; this run is {our_run:?})",
                envelope.run_id
            );
            plog!(Level::Error, "{why}");
            return Err(why);
        }
        serve_control_message(worker, id, envelope.body)
    })();
    let _ = match result {
        Ok(body) => external::write_message(&mut socket, control::OK, &body),
        Err(why) => external::write_message(&mut socket, control::FAILED, why.as_bytes()),
    };
}

/// Handles one control message of this run.
fn serve_control_message(
    worker: &Worker,
    id: u16,
    payload: serde_json::Value,
) -> Result<Vec<u8>, String> {
    match id {
        control::REGISTER => {
            let r: Register = serde_json::from_value(payload).map_err(|e| e.to_string())?;
            let mut members = worker.members.lock().map_err(|_| "poisoned")?;
            if r.join && !members.names.contains(&r.name) {
                plog!(Level::Info, "Join {}", r.name);
                members.names.push(r.name.clone());
            }
            members.addrs.insert(r.name.clone(), r.addr);
            let dir = worker.lock().config.state_dir.clone();
            members.store(&dir).map_err(|e| e.to_string())?;
            let source = worker.lock().config.source_addr;
            Ok(serde_json::to_vec(&control::RegisterReply {
                initializer_source: source,
            })
            .expect("serializes"))
        }
        control::HANDOFF => {
            let h: Handoff = serde_json::from_value(payload).map_err(|e| e.to_string())?;
            let mut core = worker.lock();
            let mut next = core.durable.clone();
            for (id, s) in &h.streams {
                next.streams.insert(*id, s.clone());
            }
            state::store(&core.config.state_dir, &next).map_err(|e| e.to_string())?;
            core.durable = next;
            for (id, s) in h.streams {
                let live = core.streams.entry(id).or_default();
                live.name = s.name;
                live.last_seen = s.por;
            }
            plog!(Level::Info, "took over the streams of {}", h.from);
            Ok(Vec::new())
        }
        control::LEFT => {
            let name: String = serde_json::from_value(payload).map_err(|e| e.to_string())?;
            let mut members = worker.members.lock().map_err(|_| "poisoned")?;
            members.names.retain(|n| *n != name);
            members.addrs.remove(&name);
            let dir = worker.lock().config.state_dir.clone();
            members.store(&dir).map_err(|e| e.to_string())?;
            plog!(Level::Info, "Shrink {name}");
            Ok(Vec::new())
        }
        _ => Err(format!("unknown control message {id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruption_changes_one_byte_and_survives_empty_payloads() {
        assert_eq!(corrupted(b""), b"#");
        assert_eq!(corrupted(b"A"), b"0");
        assert_eq!(corrupted(b"A1\n"), b"A0\n");
        assert_eq!(corrupted(b"A0 12\n"), b"A0 10\n");
    }
}
