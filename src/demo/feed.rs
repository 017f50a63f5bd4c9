//! `soakcheck demo feed INPUT_FILE [BYTES_PER_SEC]`: an at-least-once line feed, a
//! compatible replacement for `at_least_once_line_file_feed` (wallaroo-formats.md §4).
//!
//! One stream per input file (id = first 8 bytes of SHA-256 of the path as given), one
//! MESSAGE per line whose id is the byte offset of the line's first byte, credits and
//! the original's rate limiter, and resume from the NOTIFY_ACK point of reference after
//! any reconnect. Unlike the original it always reconnects in-process (with backoff) and
//! follows RESTART to a new address. At end of file it sends EOS, and once the ack for the
//! last line's message id arrives it logs the stream closed and exits 0. It logs the
//! original's lines, with the original's `[file:line]` tags and Python 2 reprs, because
//! progress checks read them.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::demo::log::{write_line, Level};
use crate::wire::connector::{encode_message_into, stream_id_for, Frame, U64MAX, VERSION_SOURCE};
use crate::wire::{read_frame, write_frame};

#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// The input path exactly as given (it is also the stream name).
    pub input: PathBuf,
    /// Bytes per second; 0 = unlimited.
    pub rate: u64,
    pub connect: String,
    /// At end of file, keep polling for appended lines instead of ending the stream.
    pub follow: bool,
    /// The run this feed belongs to: its HELLO cookie carries it (see [`crate::demo`]).
    pub run_id: Option<String>,
}

/// Python 2's repr of an int: an `L` suffix from 2**63 on.
fn py2_int(v: u64) -> String {
    if v >= 1 << 63 {
        format!("{v}L")
    } else {
        v.to_string()
    }
}

struct Stream {
    id: u64,
    name: String,
    por: u64,
    open: bool,
}

impl Stream {
    fn repr(&self) -> String {
        format!(
            "Stream(id={}, name='{}', point_of_ref={}, is_open={})",
            py2_int(self.id),
            self.name,
            py2_int(self.por),
            if self.open { "True" } else { "False" }
        )
    }

    fn log(&self, what: &str, line: u32) {
        write_line(
            Level::Debug,
            "connectors.py",
            line,
            &format!("MultiSourceConnector {what} {}", self.repr()),
        );
    }
}

/// The original reader's rate limiter (wallaroo-formats.md §4.5).
struct RateLimiter {
    limit: f64,
    t0: Option<Instant>,
    bytes: f64,
}

impl RateLimiter {
    fn allows(&mut self) -> bool {
        if self.limit <= 0.0 {
            return true;
        }
        let now = Instant::now();
        let t0 = *self.t0.get_or_insert(now);
        let elapsed = now.duration_since(t0).as_secs_f64().max(1e-6);
        self.bytes / elapsed <= self.limit
    }

    fn consumed(&mut self, n: usize) {
        if self.bytes > 60.0 * self.limit && self.limit > 0.0 {
            self.bytes = 0.0;
            self.t0 = Some(Instant::now() - Duration::from_millis(1));
        }
        self.bytes += n as f64;
    }
}

enum Event {
    Frame(Frame),
    Closed(String),
}

/// Why a session ended.
enum SessionEnd {
    Done,
    Reconnect,
}

/// Runs the feed; returns the process exit status.
pub fn run_feed(config: FeedConfig) -> i32 {
    let name = config.input.display().to_string();
    let mut stream = Stream {
        id: stream_id_for(name.as_bytes()),
        name,
        por: 0,
        open: false,
    };
    let mut file = match File::open(&config.input) {
        Ok(f) => BufReader::with_capacity(1 << 16, f),
        Err(e) => {
            write_line(
                Level::Error,
                "feed.rs",
                line!(),
                &format!("{}: {e}", config.input.display()),
            );
            return 2;
        }
    };
    let mut target = config.connect.clone();
    println!(
        "version {VERSION_SOURCE} cookie {} program_name celsius at least once instance_name instance host {} delay 0.05",
        crate::demo::run_cookie(config.run_id.as_deref()),
        target.replace(':', " port ")
    );
    let mut limiter = RateLimiter {
        limit: config.rate as f64,
        t0: None,
        bytes: 0.0,
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        let socket = match connect(&target) {
            Ok(s) => {
                backoff = Duration::from_millis(100);
                s
            }
            Err(e) => {
                write_line(
                    Level::Info,
                    "__init__.py",
                    749,
                    &format!("connect to {target} failed: {e}; retrying"),
                );
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        match session(
            &config,
            socket,
            &mut stream,
            &mut file,
            &mut limiter,
            &mut target,
        ) {
            SessionEnd::Done => {
                println!("Reached the end of all files. Shutting down.");
                return 0;
            }
            SessionEnd::Reconnect => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn connect(target: &str) -> std::io::Result<TcpStream> {
    let addr: SocketAddr = target
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?;
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn session(
    config: &FeedConfig,
    socket: TcpStream,
    stream: &mut Stream,
    file: &mut BufReader<File>,
    limiter: &mut RateLimiter,
    target: &mut String,
) -> SessionEnd {
    let Ok(read_half) = socket.try_clone() else {
        return SessionEnd::Reconnect;
    };
    let mut out = BufWriter::with_capacity(1 << 16, socket);
    let rx = spawn_reader(read_half);
    let mut credits = match handshake(config, &mut out, &rx, stream) {
        Ok(credits) => credits,
        Err(end) => return end,
    };
    if let Err(end) = open_stream(&mut out, &rx, stream, file, &mut credits, target) {
        return end;
    }
    let mut sending = Sending {
        offset: file.stream_position().unwrap_or(0),
        last_line: None,
        eos_sent: false,
        line: Vec::with_capacity(128),
        frame: Vec::with_capacity(256),
    };
    loop {
        // Handle everything that arrived.
        loop {
            let ev = match rx.try_recv() {
                Ok(ev) => ev,
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => Event::Closed("reader ended".into()),
            };
            let (eos_sent, last_line) = (sending.eos_sent, sending.last_line);
            if let Some(end) = on_event(ev, stream, &mut credits, eos_sent, last_line, target) {
                return end;
            }
        }
        let sent = match sending.send(config, &mut out, stream, file, limiter, &mut credits) {
            Ok(sent) => sent,
            Err(end) => return end,
        };
        // Wait for acks or for the rate limiter.
        let wait = Duration::from_millis(if sent && credits > 0 { 1 } else { 20 });
        let ev = match rx.recv_timeout(wait) {
            Ok(ev) => ev,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => Event::Closed("reader ended".into()),
        };
        let (eos_sent, last_line) = (sending.eos_sent, sending.last_line);
        if let Some(end) = on_event(ev, stream, &mut credits, eos_sent, last_line, target) {
            return end;
        }
    }
}

/// Reads the connection's frames on a thread of its own, as events.
fn spawn_reader(read_half: TcpStream) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(read_half);
        loop {
            match read_frame(&mut reader)
                .map_err(|e| e.to_string())
                .and_then(|b| Frame::decode(&b).map_err(|e| e.to_string()))
            {
                Ok(f) => {
                    if tx.send(Event::Frame(f)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Event::Closed(e));
                    return;
                }
            }
        }
    });
    rx
}

/// HELLO, answered by OK: returns the credits it grants.
fn handshake(
    config: &FeedConfig,
    out: &mut BufWriter<TcpStream>,
    rx: &mpsc::Receiver<Event>,
    stream: &mut Stream,
) -> Result<i64, SessionEnd> {
    let hello = Frame::Hello {
        version: VERSION_SOURCE.into(),
        cookie: crate::demo::run_cookie(config.run_id.as_deref()),
        program: "celsius at least once".into(),
        instance: "instance".into(),
    };
    if write_frame(out, &hello.encode())
        .and_then(|_| out.flush())
        .is_err()
    {
        return Err(closed_session(stream, "write failed"));
    }
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Event::Frame(Frame::Ok { credits })) => Ok(i64::from(credits)),
        Ok(Event::Frame(other)) => Err(closed_session(
            stream,
            &format!("handshake answered with {other:?}"),
        )),
        Ok(Event::Closed(why)) => Err(closed_session(stream, &why)),
        Err(_) => Err(closed_session(stream, "no handshake reply")),
    }
}

/// NOTIFY until the stream is ours; then the input is at its point of reference.
fn open_stream(
    out: &mut BufWriter<TcpStream>,
    rx: &mpsc::Receiver<Event>,
    stream: &mut Stream,
    file: &mut BufReader<File>,
    credits: &mut i64,
    target: &mut String,
) -> Result<(), SessionEnd> {
    loop {
        stream.open = false;
        stream.log("added", 442);
        send_notify(out, stream)?;
        *credits -= 1;
        let (success, por) = notify_reply(rx, stream, credits, target)?;
        write_line(
            Level::Debug,
            "__init__.py",
            346,
            &format!(
                "NOTIFYack NotifyAck(notify_success={}, stream_id={}, point_of_ref={})",
                if success { "True" } else { "False" },
                py2_int(stream.id),
                py2_int(por)
            ),
        );
        stream.por = por;
        stream.open = success;
        stream.log("added", 442);
        if success {
            stream.log("stream_opened", 458);
            let position = if por == U64MAX { 0 } else { por };
            if file.seek(SeekFrom::Start(position)).is_err() {
                return Err(closed_session(stream, "cannot seek the input"));
            }
            return Ok(());
        }
        write_line(
            Level::Info,
            "__init__.py",
            0,
            &format!(
                "Stream {} id {} added to _retry_notify",
                stream.name,
                py2_int(stream.id)
            ),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn send_notify(out: &mut BufWriter<TcpStream>, stream: &mut Stream) -> Result<(), SessionEnd> {
    let notify = Frame::Notify {
        stream_id: stream.id,
        stream_name: stream.name.clone().into_bytes(),
        point_of_ref: stream.por,
    };
    write_line(
        Level::Debug,
        "__init__.py",
        633,
        &format!(
            "sending NOTIFY: Notify(stream_id={}, stream_name='{}', point_of_ref={})",
            py2_int(stream.id),
            stream.name,
            py2_int(stream.por)
        ),
    );
    if write_frame(out, &notify.encode())
        .and_then(|_| out.flush())
        .is_err()
    {
        return Err(closed_session(stream, "write failed"));
    }
    Ok(())
}

/// The NOTIFY_ACK of this stream: (success, point of reference). Acks that arrive
/// first add their credits; a RESTART ends the session.
fn notify_reply(
    rx: &mpsc::Receiver<Event>,
    stream: &mut Stream,
    credits: &mut i64,
    target: &mut String,
) -> Result<(bool, u64), SessionEnd> {
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Event::Frame(Frame::NotifyAck {
                success,
                stream_id,
                point_of_ref,
            })) if stream_id == stream.id => return Ok((success, point_of_ref)),
            Ok(Event::Frame(Frame::Ack { credits: c, .. })) => *credits += i64::from(c),
            Ok(Event::Frame(Frame::Restart { address })) => {
                return Err(restart(stream, address, target))
            }
            Ok(Event::Frame(_)) => {}
            Ok(Event::Closed(why)) => return Err(closed_session(stream, &why)),
            Err(_) => return Err(closed_session(stream, "no NOTIFY_ACK")),
        }
    }
}

/// Where the sending of a stream is.
struct Sending {
    offset: u64,
    last_line: Option<u64>,
    eos_sent: bool,
    /// Reused buffers: no per-line key or frame copy on the data path.
    line: Vec<u8>,
    frame: Vec<u8>,
}

impl Sending {
    /// Sends lines while credits and the rate allow (and EOS at the end of the input,
    /// unless following it); returns whether it sent anything.
    fn send(
        &mut self,
        config: &FeedConfig,
        out: &mut BufWriter<TcpStream>,
        stream: &mut Stream,
        file: &mut BufReader<File>,
        limiter: &mut RateLimiter,
        credits: &mut i64,
    ) -> Result<bool, SessionEnd> {
        let mut sent = false;
        while !self.eos_sent && *credits > 0 && limiter.allows() {
            self.line.clear();
            let n = match file.read_until(b'\n', &mut self.line) {
                Ok(n) => n,
                Err(_) => return Err(closed_session(stream, "cannot read the input")),
            };
            if n == 0 || self.line.last() != Some(&b'\n') {
                // End of file (or a last line still being written).
                if n > 0 {
                    let _ = file.seek(SeekFrom::Start(self.offset));
                }
                if config.follow || n > 0 {
                    break;
                }
                self.send_eos(out, stream)?;
                sent = true;
                break;
            }
            self.frame.clear();
            encode_message_into(
                &mut self.frame,
                stream.id,
                self.offset,
                0,
                Some(stream.name.as_bytes()),
                &self.line,
            );
            if write_frame(out, &self.frame).is_err() {
                return Err(closed_session(stream, "write failed"));
            }
            self.last_line = Some(self.offset);
            self.offset += n as u64;
            *credits -= 1;
            limiter.consumed(n);
            sent = true;
        }
        if sent && out.flush().is_err() {
            return Err(closed_session(stream, "write failed"));
        }
        Ok(sent)
    }

    fn send_eos(
        &mut self,
        out: &mut BufWriter<TcpStream>,
        stream: &mut Stream,
    ) -> Result<(), SessionEnd> {
        write_line(
            Level::Info,
            "__init__.py",
            649,
            &format!(
                "Sending End of Stream EosMessage(stream_id={})",
                py2_int(stream.id)
            ),
        );
        let eos = Frame::Eos {
            stream_id: stream.id,
        };
        if write_frame(out, &eos.encode()).is_err() {
            return Err(closed_session(stream, "write failed"));
        }
        self.eos_sent = true;
        Ok(())
    }
}

/// Handles one event while streaming; Some ends the session.
fn on_event(
    ev: Event,
    stream: &mut Stream,
    credits: &mut i64,
    eos_sent: bool,
    last_line: Option<u64>,
    target: &mut String,
) -> Option<SessionEnd> {
    match ev {
        Event::Frame(Frame::Ack { credits: c, acks }) => {
            *credits += i64::from(c);
            for (sid, por) in acks {
                if sid != stream.id {
                    continue;
                }
                stream.por = por;
                stream.log("acked", 493);
                // Done once the last line's message id is acked (wallaroo-formats.md §4.6).
                if eos_sent && (last_line.is_none() || Some(por) == last_line) {
                    stream.open = false;
                    stream.log("closed", 472);
                    return Some(SessionEnd::Done);
                }
            }
            None
        }
        Event::Frame(Frame::Restart { address }) => Some(restart(stream, address, target)),
        Event::Frame(Frame::Error { message }) => {
            Some(closed_session(stream, &format!("ERROR {message}")))
        }
        Event::Frame(_) => None,
        Event::Closed(why) => Some(closed_session(stream, &why)),
    }
}

fn closed_session(stream: &mut Stream, why: &str) -> SessionEnd {
    write_line(
        Level::Error,
        "__init__.py",
        749,
        &format!("handle_close ({why})"),
    );
    stream.open = false;
    stream.log("closed", 472);
    SessionEnd::Reconnect
}

fn restart(stream: &mut Stream, address: Option<String>, target: &mut String) -> SessionEnd {
    write_line(
        Level::Warning,
        "__init__.py",
        673,
        "Received RESTART message. Closing streams and reinitiating handshake.",
    );
    stream.open = false;
    stream.log("closed", 472);
    if let Some(a) = address.filter(|a| !a.is_empty()) {
        *target = a;
    }
    SessionEnd::Reconnect
}
