//! `soakcheck demo sink OUT_PREFIX ABORT_PREFIX PORT`: the connector sink with 2PC on
//! stream 0, compatible with `aloc_sink` (wallaroo-formats.md §5) on the wire and on disk.
//!
//! One thread per connection. After HELLO the worker's files are opened and its txnlog is
//! replayed with the same strict parser `verify` uses: pending phase-1 state, the next
//! vote and the last committed offset are rebuilt, and the output is truncated to the
//! last commit (or to a pending phase-1 end that was voted commit). Stream-1 data whose
//! message id is the output offset is appended; PHASE1 flushes and fsyncs the output and
//! the txnlog before voting; every txnlog record is fsynced, and the directory after each
//! file it creates or renames (so a power cut never loses a file it wrote to and
//! synced; `--skip-fsync` plants the bug of acknowledging before any of it is durable,
//! to prove power-loss faults find it). Protocol violations the spec
//! lists are logged CRITICAL and end the process with status 66, as the original does.
//! Unlike the original, one worker name has at most one active connection: a second one
//! is refused with ERROR (the worker retries), so a file never has two writers.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::demo::log::Level;
use crate::demo::Peer;
use crate::formats::pyliteral::{self, Value};
use crate::formats::txnlog::{format_record, read_txnlog, Record, TxnlogTail, WhereRange};
use crate::plog;
use crate::wire::connector::{Frame, TwoPc, VERSION_SINK};
use crate::wire::{read_frame, write_frame, WireError};

/// Exit status for protocol violations, as the original's.
pub const EXIT_PROTOCOL: i32 = 66;

#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub out_prefix: PathBuf,
    pub abort_prefix: PathBuf,
    pub port: u16,
    /// The address it listens on.
    pub host: String,
    /// `ALOC_SINK_PHASE1_SLEEP`: delay before every phase-1 reply.
    pub phase1_sleep: Duration,
    /// The run this sink belongs to (see [`crate::demo`]): a worker of another run is
    /// refused with an ERROR, and the sink goes on serving its own.
    pub run_id: Option<String>,
    pub durability: Durability,
}

/// Whether the sink makes its writes durable before it acknowledges them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync of the output and the txnlog before each vote, of each txnlog record, and of
    /// the directory after each file created or renamed.
    #[default]
    Fsync,
    /// The planted bug: no fsync of the output or the txnlog at all (directories still
    /// are), so what it acknowledged lives in the page cache until the kernel writes it.
    SkipFsync,
}

/// fsyncs the directory `path` is in (so the entries created or renamed there survive
/// a power cut).
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[derive(Default)]
struct Shared {
    /// Process-wide PHASE1 count (for `local-txn` rules).
    phase1_count: u64,
    active: HashSet<String>,
}

/// Runs the sink until a fatal protocol violation (exit 66) or an accept error.
pub fn run_sink(config: SinkConfig) -> std::io::Result<()> {
    let listener = TcpListener::bind((config.host.as_str(), config.port))?;
    plog!(
        Level::Info,
        "Process started, listening on {}",
        listener.local_addr()?
    );
    serve(listener, config)
}

/// Serves connections on an already bound listener (tests bind port 0).
pub fn serve(listener: TcpListener, config: SinkConfig) -> std::io::Result<()> {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let config = Arc::new(config);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                plog!(Level::Warning, "accept failed: {e}");
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        plog!(Level::Info, "Incoming connection from {peer}");
        let shared = Arc::clone(&shared);
        let config = Arc::clone(&config);
        std::thread::spawn(move || {
            let mut conn = Connection::new(stream, shared, config);
            let result = conn.run();
            conn.close(result);
        });
    }
    Ok(())
}

/// An abort rule from `ABORT_PREFIX.<worker>` (wallaroo-formats.md §5.9).
#[derive(Debug, Clone)]
enum AbortRule {
    TxnIdRegexp {
        regex: regex::Regex,
        vote: bool,
        close_before: bool,
        close_after: bool,
    },
    LocalTxn {
        n: u64,
        vote: bool,
        close_before: bool,
        close_after: bool,
    },
    StreamContent {
        stream_id: u64,
        regex: regex::Regex,
    },
}

fn load_abort_rules(path: &Path) -> Result<Vec<AbortRule>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut rules = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let value = pyliteral::parse(line.as_bytes())
            .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        let Value::Tuple(items) = value else { continue };
        let regex = |v: &Value| match v {
            Value::Str(s) => {
                regex::Regex::new(s).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
            }
            _ => Err(format!(
                "{}:{}: expected a regexp string",
                path.display(),
                i + 1
            )),
        };
        let flag = |v: &Value| matches!(v, Value::Bool(true));
        match items.as_slice() {
            [Value::Str(k), re, vote, cb, ca] if k == "txnid-regexp" => {
                rules.push(AbortRule::TxnIdRegexp {
                    regex: regex(re)?,
                    vote: flag(vote),
                    close_before: flag(cb),
                    close_after: flag(ca),
                })
            }
            [Value::Str(k), Value::Int(n), vote, cb, ca] if k == "local-txn" => {
                rules.push(AbortRule::LocalTxn {
                    n: *n as u64,
                    vote: flag(vote),
                    close_before: flag(cb),
                    close_after: flag(ca),
                })
            }
            [Value::Str(k), Value::Int(sid), re] if k == "stream-content" => {
                rules.push(AbortRule::StreamContent {
                    stream_id: *sid as u64,
                    regex: regex(re)?,
                })
            }
            _ => {}
        }
    }
    Ok(rules)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vote {
    Commit,
    Abort,
}

struct WorkerFiles {
    name: String,
    output: BufWriter<File>,
    txnlog: File,
    /// O: the output offset (bytes appended so far).
    offset: u64,
    last_committed: u64,
    pending: HashMap<String, (Vote, Vec<WhereRange>)>,
    next_vote: Vote,
    gap_recorded: bool,
    rules: Vec<AbortRule>,
}

struct Connection {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    shared: Arc<Mutex<Shared>>,
    config: Arc<SinkConfig>,
    files: Option<WorkerFiles>,
    registered: Option<String>,
}

/// How a connection ended.
enum End {
    /// The peer closed or a non-fatal condition closed it.
    Closed(String),
    /// A protocol violation: CRITICAL and exit 66.
    Fatal(String),
    /// Its files failed it (an I/O error: a full or failing disk). Not a protocol
    /// violation: a WARNING and exit 74 (EX_IOERR); a restart replays its txnlog from
    /// what is durable.
    Disk(String),
}

impl From<WireError> for End {
    fn from(e: WireError) -> End {
        match e {
            WireError::Io(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                End::Closed("peer closed".into())
            }
            WireError::Io(io) => End::Closed(format!("connection error: {io}")),
            other => End::Fatal(format!("_handle_frame error: {other}")),
        }
    }
}

impl From<std::io::Error> for End {
    fn from(e: std::io::Error) -> End {
        End::Disk(e.to_string())
    }
}

/// The exit status after an I/O failure on its files (sysexits' EX_IOERR).
const EXIT_IO: i32 = 74;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Connection {
    fn new(stream: TcpStream, shared: Arc<Mutex<Shared>>, config: Arc<SinkConfig>) -> Connection {
        let _ = stream.set_nodelay(true);
        let writer = BufWriter::new(stream.try_clone().expect("clone a TCP stream"));
        Connection {
            reader: BufReader::with_capacity(1 << 16, stream),
            writer,
            shared,
            config,
            files: None,
            registered: None,
        }
    }

    fn send(&mut self, frame: &Frame) -> Result<(), End> {
        write_frame(&mut self.writer, &frame.encode())
            .and_then(|_| self.writer.flush())
            .map_err(|e| End::Closed(format!("send failed: {e}")))
    }

    fn record(&mut self, record: &Record) -> Result<(), End> {
        let files = self.files.as_mut().expect("files are open after HELLO");
        files
            .txnlog
            .write_all(format_record(now(), record).as_bytes())?;
        if self.config.durability == Durability::Fsync {
            files.txnlog.sync_data()?;
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), End> {
        loop {
            let body = read_frame(&mut self.reader)?;
            let frame = Frame::decode(&body)
                .map_err(|e| End::Fatal(format!("_handle_frame error: {e}")))?;
            match frame {
                Frame::Hello {
                    version,
                    cookie,
                    program,
                    instance,
                } => {
                    plog!(Level::Info, "Got HelloMsg: Hello(version={version:?}, cookie={cookie:?}, program_name={program:?}, instance_name={instance:?})");
                    let expected = crate::demo::run_cookie(self.config.run_id.as_deref());
                    match crate::demo::peer_of(&expected, &cookie) {
                        Peer::Ours if version == VERSION_SINK => {}
                        Peer::OtherRun => {
                            plog!(
                                Level::Error,
                                "refused worker {instance:?} of another run: its cookie is {cookie:?}, this run's is {expected:?}"
                            );
                            let _ = self.send(&Frame::Error {
                                message: "this sink belongs to another run".into(),
                            });
                            return Err(End::Closed(format!("worker {instance:?} of another run")));
                        }
                        _ => {
                            return Err(End::Fatal(format!(
                                "Bad HELLO: version {version:?} cookie {cookie:?}"
                            )))
                        }
                    }
                    self.hello(instance)?;
                }
                _ if self.files.is_none() => {
                    return Err(End::Fatal(format!("{:?} before HELLO", frame.tag())))
                }
                Frame::Notify { stream_id, .. } if stream_id != 1 => {
                    self.send(&Frame::Error {
                        message: format!("Unsupported stream id {stream_id}"),
                    })?;
                    return Err(End::Closed(format!("unsupported stream id {stream_id}")));
                }
                Frame::Notify { stream_id, .. } => {
                    let offset = self.files.as_ref().map_or(0, |f| f.offset);
                    self.send(&Frame::NotifyAck {
                        success: true,
                        stream_id,
                        point_of_ref: offset,
                    })?;
                }
                Frame::Message {
                    stream_id: 1,
                    message_id,
                    payload,
                    ..
                } => self.data(message_id, &payload)?,
                Frame::Message {
                    stream_id: 0,
                    payload,
                    ..
                } => {
                    let msg = TwoPc::decode(&payload)
                        .map_err(|e| End::Fatal(format!("_handle_frame error: {e}")))?;
                    self.two_pc(msg)?;
                }
                Frame::Message { stream_id, .. } => {
                    return Err(End::Fatal(format!("MESSAGE on unknown stream {stream_id}")))
                }
                Frame::Eos { stream_id } => {
                    let offset = self.files.as_ref().map_or(0, |f| f.offset);
                    self.send(&Frame::Ack {
                        credits: 1,
                        acks: vec![(stream_id, offset)],
                    })?;
                }
                Frame::Error { message } => {
                    return Err(End::Fatal(format!("ERROR from worker: {message}")))
                }
                echo @ (Frame::Ok { .. }
                | Frame::NotifyAck { .. }
                | Frame::Ack { .. }
                | Frame::Restart { .. }) => self.send(&echo)?,
            }
        }
    }

    fn hello(&mut self, worker: String) -> Result<(), End> {
        {
            let mut shared = self.shared.lock().expect("sink state lock");
            if !shared.active.insert(worker.clone()) {
                drop(shared);
                plog!(
                    Level::Warning,
                    "worker {worker} is already connected; refusing a second connection"
                );
                let _ = self.send(&Frame::Error {
                    message: format!("worker {worker} already connected"),
                });
                return Err(End::Closed("duplicate worker".into()));
            }
        }
        self.registered = Some(worker.clone());
        self.send(&Frame::Ok { credits: 500 })?;
        let prefix = self.config.out_prefix.display().to_string();
        let output_path = PathBuf::from(format!("{prefix}.{worker}"));
        let txnlog_path = PathBuf::from(format!("{prefix}.{worker}.txnlog"));
        let abort_path = PathBuf::from(format!("{}.{worker}", self.config.abort_prefix.display()));
        let rules = load_abort_rules(&abort_path).map_err(End::Fatal)?;
        let output = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&output_path)?;
        let Replayed {
            pending,
            next_vote,
            last_committed,
        } = replay_txnlog(&txnlog_path)?;
        let target = truncate_target(&pending, last_committed)?;
        plog!(
            Level::Info,
            "last committed offset for {worker} is {last_committed}; truncate at offset {target}"
        );
        output.set_len(target)?;
        let mut output = BufWriter::with_capacity(1 << 20, output);
        output.seek(SeekFrom::Start(target))?;
        let txnlog = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&txnlog_path)?;
        sync_parent(&output_path)?;
        self.files = Some(WorkerFiles {
            name: worker,
            output,
            txnlog,
            offset: target,
            last_committed,
            pending,
            next_vote,
            gap_recorded: false,
            rules,
        });
        Ok(())
    }

    fn data(&mut self, message_id: u64, payload: &[u8]) -> Result<(), End> {
        let files = self.files.as_mut().expect("after HELLO");
        for rule in &files.rules {
            if let AbortRule::StreamContent {
                stream_id: 1,
                regex,
            } = rule
            {
                if regex.is_match(&pyliteral::bytes_repr(payload)) {
                    files.next_vote = Vote::Abort;
                }
            }
        }
        let o = files.offset;
        if message_id == o {
            files.output.write_all(payload)?;
            files.offset += payload.len() as u64;
        } else if message_id > o {
            files.next_vote = Vote::Abort;
            if !files.gap_recorded {
                files.gap_recorded = true;
                let message = format!("MISSING DATA: self._output_offset {o} tell {o} < msg.message_id {message_id} worker {}", files.name);
                plog!(Level::Warning, "{message}");
                self.record(&Record::NextTxnForceAbort { message })?;
            }
        } else {
            return Err(End::Fatal(format!(
                "duplicate data: message_id {message_id} < output offset {o} worker {}",
                files.name
            )));
        }
        Ok(())
    }

    fn two_pc(&mut self, msg: TwoPc) -> Result<(), End> {
        match msg {
            TwoPc::ListUncommitted { rtag } => {
                let mut txn_ids: Vec<String> = self
                    .files
                    .as_ref()
                    .expect("after HELLO")
                    .pending
                    .keys()
                    .cloned()
                    .collect();
                txn_ids.sort();
                self.send(
                    &TwoPc::ReplyUncommitted {
                        rtag,
                        txn_ids: txn_ids.clone(),
                    }
                    .into_frame(),
                )?;
                self.record(&Record::ListUncommitted { txn_ids })
            }
            TwoPc::Phase1 { txn_id, where_list } => self.phase1(txn_id, where_list),
            TwoPc::Phase2 { txn_id, commit } => self.phase2(txn_id, commit),
            TwoPc::WorkersLeft { workers, .. } => {
                let suffix = {
                    let mut s = String::new();
                    pyliteral::write_float(&mut s, now());
                    s
                };
                let prefix = self.config.out_prefix.display().to_string();
                for w in &workers {
                    // Every remaining worker sends the same message; only the first rename succeeds.
                    let _ =
                        std::fs::rename(format!("{prefix}.{w}"), format!("{prefix}.{w}.{suffix}"));
                    let _ = std::fs::rename(
                        format!("{prefix}.{w}.txnlog"),
                        format!("{prefix}.{w}.{suffix}.txnlog"),
                    );
                }
                sync_parent(&self.config.out_prefix)?;
                plog!(Level::Info, "workers left: {workers:?}");
                self.record(&Record::WorkersLeft { workers })
            }
            TwoPc::Reply { .. } | TwoPc::ReplyUncommitted { .. } => {
                Err(End::Fatal("2PC reply received from the worker".into()))
            }
        }
    }

    fn phase1(&mut self, txn_id: String, where_list: Vec<(u64, u64, u64)>) -> Result<(), End> {
        let count = {
            let mut shared = self.shared.lock().expect("sink state lock");
            shared.phase1_count += 1;
            shared.phase1_count
        };
        let files = self.files.as_mut().expect("after HELLO");
        files.output.flush()?;
        let position = files.output.get_mut().stream_position()?;
        let mut vote = files.next_vote;
        if files.offset != position {
            plog!(
                Level::Error,
                "output offset {} != file position {position}",
                files.offset
            );
            vote = Vote::Abort;
        }
        for &(sid, s, e) in &where_list {
            let o = files.offset;
            if sid != 1 || s != files.last_committed || s > e {
                vote = Vote::Abort;
            }
            if e > o {
                vote = Vote::Abort;
                if o != s {
                    let message = format!(
                        "2PC: Phase 1 invalid start_por {s} end_por {e} self._output_offset {o} file size {position} msg2 {txn_id:?}"
                    );
                    self.record(&Record::NextTxnForceAbort {
                        message: message.clone(),
                    })?;
                    return Err(End::Fatal(message));
                }
            }
        }
        let files = self.files.as_mut().expect("after HELLO");
        let (close_before, close_after) = match abort_rule_hit(&files.rules, &txn_id, count) {
            Some((v, cb, ca)) => {
                vote = if v { Vote::Commit } else { Vote::Abort };
                (cb, ca)
            }
            None => (false, false),
        };
        if self.config.durability == Durability::Fsync {
            files.output.get_ref().sync_data()?;
            files.txnlog.sync_data()?;
        }
        let wl: Vec<WhereRange> = where_list
            .iter()
            .map(|&(stream_id, start, end)| WhereRange {
                stream_id,
                start,
                end,
            })
            .collect();
        files.pending.insert(txn_id.clone(), (vote, wl.clone()));
        let record = match vote {
            Vote::Commit => Record::Phase1Commit {
                txn_id: txn_id.clone(),
                where_list: wl,
            },
            Vote::Abort => Record::Phase1Rollback {
                txn_id: txn_id.clone(),
                where_list: wl,
            },
        };
        self.record(&record)?;
        if close_before {
            self.record(&Record::Close {
                when: "before reply".into(),
            })?;
            return Err(End::Closed("abort rule: close before reply".into()));
        }
        if !self.config.phase1_sleep.is_zero() {
            std::thread::sleep(self.config.phase1_sleep);
        }
        self.send(
            &TwoPc::Reply {
                txn_id,
                commit: vote == Vote::Commit,
            }
            .into_frame(),
        )?;
        let files = self.files.as_mut().expect("after HELLO");
        files.next_vote = Vote::Commit;
        files.gap_recorded = false;
        if close_after {
            self.record(&Record::Close {
                when: "after reply".into(),
            })?;
            return Err(End::Closed("abort rule: close after reply".into()));
        }
        Ok(())
    }

    fn phase2(&mut self, txn_id: String, commit: bool) -> Result<(), End> {
        let files = self.files.as_mut().expect("after HELLO");
        let Some((vote, wl)) = files.pending.remove(&txn_id) else {
            let message = format!(
                "unknown txn_id, commit {}",
                if commit { "True" } else { "False" }
            );
            return self.record(&Record::Phase2Error { txn_id, message });
        };
        let Some(first) = wl.first().copied() else {
            return Err(End::Fatal(format!("2PC: empty where_list for {txn_id}")));
        };
        if !commit {
            if first.stream_id != 1 {
                return Err(End::Fatal(format!(
                    "2PC: abort of {txn_id} on stream {}",
                    first.stream_id
                )));
            }
            files.output.flush()?;
            files.output.get_ref().set_len(first.start)?;
            files.output.seek(SeekFrom::Start(first.start))?;
            files.offset = first.start;
            return self.record(&Record::Phase2Rollback {
                txn_id,
                offset: first.start,
            });
        }
        if vote == Vote::Abort {
            return Err(End::Fatal(
                "2PC: Protocol error: phase 1 status was rollback but phase 2 says commit".into(),
            ));
        }
        let off = first.end;
        if off < files.last_committed {
            return Err(End::Fatal(format!(
                "2PC: phase 2 offset {off} < last committed {}",
                files.last_committed
            )));
        }
        if off != files.offset {
            return Err(End::Fatal(format!(
                "2PC: phase 2 offset {off} != {} worker {}",
                files.offset, files.name
            )));
        }
        files.last_committed = off;
        self.record(&Record::Phase2Commit {
            txn_id,
            offset: off,
        })
    }

    fn close(&mut self, result: Result<(), End>) {
        let worker = self.registered.clone().unwrap_or_else(|| "None".into());
        let fatal = match result {
            Ok(()) => None,
            Err(End::Closed(why)) => {
                plog!(Level::Info, "Closing the connection for {worker}: {why}");
                None
            }
            Err(End::Fatal(why)) => Some(why),
            Err(End::Disk(why)) => {
                plog!(
                    Level::Warning,
                    "I/O failure on its files ({why}); exiting: a restart replays the txnlog"
                );
                std::process::exit(EXIT_IO);
            }
        };
        if self.files.is_some() {
            let _ = self.record(&Record::ConnectionClosed);
            if let Some(files) = self.files.as_mut() {
                let _ = files.output.flush();
                if self.config.durability == Durability::Fsync {
                    let _ = files.output.get_ref().sync_data();
                }
            }
        }
        if let Some(why) = fatal {
            plog!(Level::Critical, "{why}");
            std::process::exit(EXIT_PROTOCOL);
        }
        if let Some(name) = self.registered.take() {
            self.shared
                .lock()
                .expect("sink state lock")
                .active
                .remove(&name);
        }
        self.files = None;
    }
}

/// What a worker's txnlog says on its reconnect.
struct Replayed {
    pending: HashMap<String, (Vote, Vec<WhereRange>)>,
    next_vote: Vote,
    last_committed: u64,
}

/// Replays a worker's txnlog (wallaroo-formats.md §5.3). A torn last record was never completed: it is
/// cut off so the next record starts on its own line.
fn replay_txnlog(txnlog_path: &Path) -> Result<Replayed, End> {
    let mut r = Replayed {
        pending: HashMap::new(),
        next_vote: Vote::Commit,
        last_committed: 0,
    };
    if !txnlog_path.exists() {
        return Ok(r);
    }
    let log = read_txnlog(txnlog_path).map_err(|e| End::Fatal(e.to_string()))?;
    if let TxnlogTail::Torn { line, bytes } = log.tail {
        plog!(
            Level::Warning,
            "{}: dropping torn record at line {line} ({bytes} bytes)",
            txnlog_path.display()
        );
        OpenOptions::new()
            .write(true)
            .open(txnlog_path)?
            .set_len(log.complete_bytes)?;
    }
    for entry in log.entries {
        match entry.record {
            Record::Phase1Commit { txn_id, where_list } => {
                if r.next_vote == Vote::Abort {
                    return Err(End::Fatal(format!(
                        "replay: 1-ok for {txn_id} after next-txn-force-abort"
                    )));
                }
                r.pending.insert(txn_id, (Vote::Commit, where_list));
                r.next_vote = Vote::Commit;
            }
            Record::Phase1Rollback { txn_id, where_list } => {
                r.pending.insert(txn_id, (Vote::Abort, where_list));
                r.next_vote = Vote::Commit;
            }
            Record::Phase2Commit { txn_id, offset } => {
                if r.pending.remove(&txn_id).is_none() {
                    return Err(End::Fatal(format!("replay: 2-ok for unknown txn {txn_id}")));
                }
                r.last_committed = offset;
            }
            // The guard removes the pending entry; only a missing one is fatal.
            Record::Phase2Rollback { txn_id, .. } if r.pending.remove(&txn_id).is_none() => {
                return Err(End::Fatal(format!(
                    "replay: 2-rollback for unknown txn {txn_id}"
                )));
            }
            Record::NextTxnForceAbort { .. } => r.next_vote = Vote::Abort,
            _ => {}
        }
    }
    Ok(r)
}

/// Where the output is cut on reconnect: the end of a pending commit vote, else the
/// last committed offset.
fn truncate_target(
    pending: &HashMap<String, (Vote, Vec<WhereRange>)>,
    last_committed: u64,
) -> Result<u64, End> {
    if pending.len() > 1 {
        return Err(End::Fatal(format!(
            "replay: {} pending transactions",
            pending.len()
        )));
    }
    Ok(match pending.values().next() {
        None => last_committed,
        Some((vote, wl)) => match wl.as_slice() {
            [w] if w.stream_id == 1 => match vote {
                Vote::Commit => w.end,
                Vote::Abort => last_committed,
            },
            _ => {
                return Err(End::Fatal(format!(
                    "replay: pending where_list {wl:?} is not one stream-1 triple"
                )))
            }
        },
    })
}

/// The last abort rule that matches transaction `txn_id`, the `count`th phase 1 of this
/// sink: (its vote, close before the reply, close after it).
fn abort_rule_hit(rules: &[AbortRule], txn_id: &str, count: u64) -> Option<(bool, bool, bool)> {
    rules.iter().rev().find_map(|rule| match rule {
        AbortRule::TxnIdRegexp {
            regex,
            vote,
            close_before,
            close_after,
        } if regex.is_match(txn_id) => Some((*vote, *close_before, *close_after)),
        AbortRule::LocalTxn {
            n,
            vote,
            close_before,
            close_after,
        } if *n == count => Some((*vote, *close_before, *close_after)),
        _ => None,
    })
}
