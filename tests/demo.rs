//! End-to-end tests of the embedded system under test: real processes on free ports,
//! killed with SIGKILL at seeded random moments, and verified with `verify`.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use soakcheck::demo::cluster::{
    feed_command, free_port, sink_command, wait_ready, worker_command, ChildGuard, WorkerPorts,
};
use soakcheck::formats::input::input_path;
use soakcheck::formats::mapped::IoMode;
use soakcheck::formats::txnlog::{read_txnlog, Record};
use soakcheck::gen::inputs::{generate_inputs, DataSource};
use soakcheck::gen::Rng;
use soakcheck::verify::{verify, KeyInput, Semantics, VerifyPlan};
use soakcheck::wire::connector::{Frame, TwoPc, COOKIE, VERSION_SINK};
use soakcheck::wire::{read_frame, write_frame};

/// These tests start servers and time kills; run them one at a time so they neither
/// share ports nor starve each other of the CI machine's two cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("soakcheck")
}

fn verify_dir(dir: &Path, keys: &[u8]) -> soakcheck::verify::Report {
    verify(&VerifyPlan {
        sink_dir: Some(dir.join("sink-out")),
        plain_outputs: vec![],
        inputs: keys
            .iter()
            .map(|&key| KeyInput {
                key,
                path: input_path(&dir.join("in"), key),
            })
            .collect(),
        expect_complete: true,
        semantics: Semantics::ExactlyOnce,
        io: IoMode::Read,
    })
    .unwrap()
}

/// A sink and an initializer on free ports, waited on until the initializer is
/// processing: the sink writes under `sink_dir`, the worker keeps its state and log
/// under `dir`.
struct OneWorker {
    sink: ChildGuard,
    worker: ChildGuard,
    ports: WorkerPorts,
}

impl OneWorker {
    fn start(dir: &Path, sink_dir: &Path, checkpoint: Duration) -> OneWorker {
        let exe = exe();
        let sink_port = free_port().unwrap();
        let ports = WorkerPorts {
            source: free_port().unwrap(),
            external: free_port().unwrap(),
            control: free_port().unwrap(),
        };
        let sink = ChildGuard::spawn(
            "sink",
            sink_command(&exe, sink_dir, sink_port),
            &sink_dir.join("stdout-stderr"),
        )
        .unwrap();
        let worker = ChildGuard::spawn(
            "worker",
            worker_command(&exe, 0, 1, ports, sink_port, &dir.join("state"), checkpoint),
            &dir.join("wallaroo.0"),
        )
        .unwrap();
        assert!(wait_ready(&[ports], Duration::from_secs(10)));
        OneWorker {
            sink,
            worker,
            ports,
        }
    }
}

/// What the test restarts after a kill.
enum Role {
    Sink,
    Worker(usize),
    Feed(usize),
}

#[test]
fn survives_seeded_sigkills_of_sink_workers_and_feeds() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = b"ABC";
    generate_inputs(keys, 60_000, &d.join("in"), &DataSource::Seeded(3)).unwrap();
    std::fs::create_dir_all(d.join("sink-out")).unwrap();
    let exe = exe();
    let workers = 2;
    let sink_port = free_port().unwrap();
    let control = free_port().unwrap();
    let ports: Vec<WorkerPorts> = (0..workers)
        .map(|_| WorkerPorts {
            source: free_port().unwrap(),
            external: free_port().unwrap(),
            control,
        })
        .collect();
    let interval = Duration::from_millis(100);
    let start = |role: &Role| -> ChildGuard {
        match *role {
            Role::Sink => ChildGuard::spawn(
                "sink",
                sink_command(&exe, &d.join("sink-out"), sink_port),
                &d.join("sink-out/stdout-stderr"),
            ),
            Role::Worker(n) => ChildGuard::spawn(
                &format!("worker {n}"),
                worker_command(
                    &exe,
                    n,
                    workers,
                    ports[n],
                    sink_port,
                    &d.join("state"),
                    interval,
                ),
                &d.join(format!("wallaroo.{n}")),
            ),
            Role::Feed(i) => ChildGuard::spawn(
                &format!("feed {i}"),
                // About 185 KB per key at 25 KB/s: 7 to 8 seconds of feeding without faults.
                feed_command(
                    &exe,
                    &d.join("in"),
                    keys[i],
                    25_000,
                    ports[i % workers].source,
                ),
                &d.join(format!("sender.out.{}", keys[i] as char)),
            ),
        }
        .unwrap()
    };
    let roles: Vec<Role> = std::iter::once(Role::Sink)
        .chain((0..workers).map(Role::Worker))
        .chain((0..keys.len()).map(Role::Feed))
        .collect();
    let mut procs: Vec<Option<ChildGuard>> = roles.iter().map(|r| Some(start(r))).collect();
    let mut done = vec![false; roles.len()];
    let mut rng = Rng::new(20261128);
    let began = Instant::now();
    let mut kills = 0;
    let mut next_kill = began + Duration::from_millis(rng.range(150, 450));
    while !(1 + workers..roles.len()).all(|i| done[i]) {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "not finished in 60 s after {kills} kills; logs in {}",
            d.display()
        );
        for (i, p) in procs.iter_mut().enumerate() {
            if let Some(child) = p {
                if let Some(status) = child.try_wait() {
                    match roles[i] {
                        Role::Feed(_) if status.success() => done[i] = true,
                        _ => panic!(
                            "{} exited with {status}; logs in {}",
                            child.name,
                            d.display()
                        ),
                    }
                    *p = None;
                }
            }
        }
        if kills < 24 && Instant::now() >= next_kill {
            // Kill a random live component, and start it again a moment later.
            let live: Vec<usize> = (0..roles.len()).filter(|&i| procs[i].is_some()).collect();
            let victim = live[rng.range(0, live.len() as u64 - 1) as usize];
            procs[victim].as_mut().unwrap().kill();
            kills += 1;
            std::thread::sleep(Duration::from_millis(rng.range(0, 150)));
            procs[victim] = Some(start(&roles[victim]));
            next_kill = Instant::now() + Duration::from_millis(rng.range(150, 450));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(kills >= 20, "only {kills} kills before the feeds finished");
    for p in procs.iter_mut().flatten() {
        p.stop(Duration::from_secs(2));
    }
    let report = verify_dir(d, keys);
    assert_eq!(
        report.verdict.exit_code(),
        0,
        "{}\nlogs in {}",
        report.to_human(false),
        d.display()
    );
    assert!(report.keys.iter().all(|k| k.complete));
    let log = std::fs::read_to_string(d.join("sink-out/stdout-stderr")).unwrap();
    assert!(
        !log.contains("CRITICAL"),
        "the sink saw a protocol violation:\n{log}"
    );
}

#[test]
fn each_injected_fault_is_caught_by_verify() {
    let _serial = serial();
    for kind in ["loss", "duplicate", "reorder", "corrupt"] {
        let dir = tempfile::tempdir().unwrap();
        let out = assert_cmd::Command::new(exe())
            .args([
                "demo",
                "cluster",
                "--workers",
                "2",
                "--keys",
                "A,B,C",
                "--bytes-per-key",
                "20000",
                "--json",
            ])
            .args([
                "--checkpoint-interval",
                "50ms",
                "--inject",
                kind,
                "--inject-after",
                "300",
                "--inject-key",
                "B",
            ])
            .arg("--dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            doc["keys"][1]["violation"]["kind"], kind,
            "{kind}: {}",
            doc["keys"][1]
        );
        // The fault is at the 301st line of B (49-byte lines); a duplicate shows on the
        // line after the original copy.
        let at = if kind == "duplicate" { 301 } else { 300 };
        assert_eq!(
            doc["keys"][1]["violation"]["input_offset"],
            at * 49,
            "{kind}"
        );
        assert!(doc["keys"][0]["violation"].is_null() && doc["keys"][2]["violation"].is_null());
    }
}

/// Plays a worker against a real sink process.
struct FakeWorker {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl FakeWorker {
    fn connect(port: u16, name: &str) -> FakeWorker {
        let mut w = FakeWorker::open(port);
        w.send(&Frame::Hello {
            version: VERSION_SINK.into(),
            cookie: COOKIE.into(),
            program: "Passthrough".into(),
            instance: name.into(),
        });
        assert_eq!(w.recv(), Frame::Ok { credits: 500 });
        w
    }

    /// A connection to the sink, before any HELLO.
    fn open(port: u16) -> FakeWorker {
        let deadline = Instant::now() + Duration::from_secs(5);
        let socket = loop {
            match TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("sink not up: {e}"),
            }
        };
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        FakeWorker {
            reader: BufReader::new(socket.try_clone().unwrap()),
            writer: socket,
        }
    }
    fn send(&mut self, f: &Frame) {
        write_frame(&mut self.writer, &f.encode()).unwrap();
        self.writer.flush().unwrap();
    }
    fn recv(&mut self) -> Frame {
        Frame::decode(&read_frame(&mut self.reader).unwrap()).unwrap()
    }
    fn two_pc(&mut self, m: TwoPc) {
        self.send(&m.into_frame());
    }
    fn recv_2pc(&mut self) -> TwoPc {
        match self.recv() {
            Frame::Message {
                stream_id: 0,
                payload,
                ..
            } => TwoPc::decode(&payload).unwrap(),
            other => panic!("expected a 2PC message, got {other:?}"),
        }
    }
    /// NOTIFY stream 1; returns the sink's offset.
    fn notify(&mut self) -> u64 {
        self.send(&Frame::Notify {
            stream_id: 1,
            stream_name: b"Passthrough-w-initializer-id-1".to_vec(),
            point_of_ref: 0,
        });
        match self.recv() {
            Frame::NotifyAck {
                success: true,
                stream_id: 1,
                point_of_ref,
            } => point_of_ref,
            other => panic!("{other:?}"),
        }
    }
    fn list_uncommitted(&mut self) -> Vec<String> {
        self.two_pc(TwoPc::ListUncommitted { rtag: 77778 });
        match self.recv_2pc() {
            TwoPc::ReplyUncommitted {
                rtag: 77778,
                txn_ids,
            } => txn_ids,
            other => panic!("{other:?}"),
        }
    }
    fn data(&mut self, offset: u64, line: &[u8]) {
        self.send(&Frame::Message {
            stream_id: 1,
            message_id: offset,
            event_time: 0,
            key: None,
            payload: line.to_vec(),
        });
    }
    fn phase1(&mut self, txn: &str, start: u64, end: u64) -> bool {
        self.two_pc(TwoPc::Phase1 {
            txn_id: txn.into(),
            where_list: vec![(1, start, end)],
        });
        match self.recv_2pc() {
            TwoPc::Reply { txn_id, commit } if txn_id == txn => commit,
            other => panic!("{other:?}"),
        }
    }
}

fn kinds(txnlog: &Path) -> Vec<String> {
    read_txnlog(txnlog)
        .unwrap()
        .entries
        .iter()
        .map(|e| e.record.kind().to_string())
        .collect()
}

#[test]
fn sink_recovers_a_voted_transaction_after_sigkill_between_phase1_and_phase2() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let log = dir.path().join("sink.log");
    let mut sink = ChildGuard::spawn("sink", sink_command(&exe(), dir.path(), port), &log).unwrap();
    let mut w = FakeWorker::connect(port, "initializer");
    assert_eq!(w.notify(), 0);
    assert!(w.list_uncommitted().is_empty());
    w.data(0, b"A1\n");
    w.data(3, b"A2\n");
    assert!(w.phase1("T:c_id=1", 0, 6));
    w.two_pc(TwoPc::Phase2 {
        txn_id: "T:c_id=1".into(),
        commit: true,
    });
    w.data(6, b"A3\n");
    assert!(w.phase1("T:c_id=2", 6, 9));
    // Crash between phase 1 and phase 2.
    sink.kill();
    let mut sink = ChildGuard::spawn("sink", sink_command(&exe(), dir.path(), port), &log).unwrap();
    let mut w = FakeWorker::connect(port, "initializer");
    assert_eq!(w.notify(), 9, "a pending commit vote keeps its data");
    assert_eq!(w.list_uncommitted(), vec!["T:c_id=2".to_string()]);
    w.two_pc(TwoPc::Phase2 {
        txn_id: "T:c_id=2".into(),
        commit: true,
    });
    w.data(9, b"A4\n");
    assert!(w.phase1("T:c_id=3", 9, 12));
    w.two_pc(TwoPc::Phase2 {
        txn_id: "T:c_id=3".into(),
        commit: false,
    });
    assert_eq!(w.notify(), 9, "the abort truncated back to the commit");
    drop(w);
    std::thread::sleep(Duration::from_millis(200));
    sink.kill();
    assert_eq!(
        std::fs::read(dir.path().join("output.initializer")).unwrap(),
        b"A1\nA2\nA3\n"
    );
    assert_eq!(
        kinds(&dir.path().join("output.initializer.txnlog")),
        [
            "list-uncommitted",
            "1-ok",
            "2-ok",
            "1-ok",
            "list-uncommitted",
            "2-ok",
            "1-ok",
            "2-rollback",
            "connection-closed"
        ]
    );
}

#[test]
fn sink_truncates_unvoted_data_after_sigkill_between_data_and_vote() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let log = dir.path().join("sink.log");
    let mut sink = ChildGuard::spawn("sink", sink_command(&exe(), dir.path(), port), &log).unwrap();
    let mut w = FakeWorker::connect(port, "worker1");
    w.notify();
    w.list_uncommitted();
    w.data(0, b"B1\n");
    assert!(w.phase1("T:c_id=1", 0, 3));
    w.two_pc(TwoPc::Phase2 {
        txn_id: "T:c_id=1".into(),
        commit: true,
    });
    w.data(3, b"B2\n");
    w.data(6, b"B3\n");
    std::thread::sleep(Duration::from_millis(100));
    sink.kill();
    let _sink = ChildGuard::spawn("sink", sink_command(&exe(), dir.path(), port), &log).unwrap();
    let mut w = FakeWorker::connect(port, "worker1");
    assert_eq!(w.notify(), 3);
    assert!(w.list_uncommitted().is_empty());
    assert_eq!(
        std::fs::read(dir.path().join("output.worker1")).unwrap(),
        b"B1\n"
    );
}

#[test]
fn sink_protocol_violations_exit_66_with_critical() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let log = dir.path().join("sink.log");
    let mut sink = ChildGuard::spawn("sink", sink_command(&exe(), dir.path(), port), &log).unwrap();
    let mut w = FakeWorker::connect(port, "initializer");
    w.notify();
    w.data(0, b"A1\n");
    w.data(0, b"A1\n"); // a message id that goes back
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = sink.try_wait() {
            break s;
        }
        assert!(Instant::now() < deadline, "the sink did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(66));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("CRITICAL") && l.contains("duplicate data")),
        "{text}"
    );
    let records = read_txnlog(&dir.path().join("output.initializer.txnlog")).unwrap();
    assert!(matches!(
        records.entries.last().unwrap().record,
        Record::ConnectionClosed
    ));
}

#[test]
fn a_malformed_frame_closes_a_source_connection_with_an_error() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let OneWorker {
        sink: _sink,
        worker: _worker,
        ports,
    } = OneWorker::start(dir.path(), dir.path(), Duration::from_millis(100));
    for garbage in [
        &[0u8, 0, 0, 2, 42, 0][..],
        &[0, 0, 0, 3, 0, 0, 9][..],
        &[0, 0, 0, 9, 0][..],
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", ports.source)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(garbage).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reader = BufReader::new(s);
        // Either an ERROR frame then close, or a plain close: never a hang.
        while let Ok(body) = read_frame(&mut reader) {
            assert!(matches!(Frame::decode(&body), Ok(Frame::Error { .. })));
        }
    }
    // The worker is still serving.
    assert!(wait_ready(&[ports], Duration::from_secs(2)));
}

#[test]
fn abort_rules_drive_every_recovery_path_and_nothing_is_lost() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate_inputs(b"A", 20_000, &d.join("in"), &DataSource::Seeded(5)).unwrap();
    let sink_dir = d.join("sink-out");
    std::fs::create_dir_all(&sink_dir).unwrap();
    // A forced abort vote at checkpoint 3; a close right after a commit vote at 6 (the
    // worker recorded its decision, so it must commit on reconnect); a close before the
    // reply at 9 (no decision recorded: it must abort).
    std::fs::write(
        sink_dir.join("abort.initializer"),
        "(\"txnid-regexp\", \":c_id=3$\", False, False, False)\n\
         (\"txnid-regexp\", \":c_id=6$\", True, False, True)\n\
         (\"txnid-regexp\", \":c_id=9$\", True, True, False)\n\
         (\"# the original's comment idiom\")\n",
    )
    .unwrap();
    let exe = exe();
    let OneWorker {
        mut sink,
        mut worker,
        ports,
    } = OneWorker::start(d, &sink_dir, Duration::from_millis(100));
    let mut feed = ChildGuard::spawn(
        "feed",
        feed_command(&exe, &d.join("in"), b'A', 30_000, ports.source),
        &d.join("sender.out.A"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(s) = feed.try_wait() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the feed did not finish; logs in {}",
            d.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    worker.stop(Duration::from_secs(2));
    sink.stop(Duration::from_secs(2));
    let report = verify_dir(d, b"A");
    assert_eq!(report.verdict.exit_code(), 0, "{}", report.to_human(false));
    let records = read_txnlog(&sink_dir.join("output.initializer.txnlog"))
        .unwrap()
        .entries;
    let has = |pred: &dyn Fn(&Record) -> bool| records.iter().any(|e| pred(&e.record));
    assert!(has(
        &|r| matches!(r, Record::Phase1Rollback { txn_id, .. } if txn_id.ends_with(":c_id=3"))
    ));
    assert!(has(
        &|r| matches!(r, Record::Close { when } if when == "after reply")
    ));
    assert!(has(
        &|r| matches!(r, Record::Close { when } if when == "before reply")
    ));
    assert!(has(
        &|r| matches!(r, Record::ListUncommitted { txn_ids } if txn_ids.len() == 1 && txn_ids[0].ends_with(":c_id=6"))
    ));
    assert!(has(
        &|r| matches!(r, Record::Phase2Commit { txn_id, .. } if txn_id.ends_with(":c_id=6"))
    ));
    assert!(has(
        &|r| matches!(r, Record::Phase2Rollback { txn_id, .. } if txn_id.ends_with(":c_id=9"))
    ));
    // Every txnlog line is a Python literal the original tools can eval.
    let text = std::fs::read_to_string(sink_dir.join("output.initializer.txnlog")).unwrap();
    match std::process::Command::new("python3")
        .args([
            "-c",
            "import ast,sys\nfor l in open(sys.argv[1]): ast.literal_eval(l)\nprint('ok')",
        ])
        .arg(sink_dir.join("output.initializer.txnlog"))
        .output()
    {
        Ok(out) => assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{text}"),
        Err(e) => assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is needed in CI (scripts/test installs it): {e}"
        ),
    }
}

fn external_request(port: u16, id: u16, payload: &[u8]) -> (u16, Vec<u8>) {
    use soakcheck::wire::external::{read_message, write_message};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write_message(&mut s, id, payload).unwrap();
    read_message(&mut s).unwrap()
}

fn members(port: u16) -> Vec<String> {
    let status = soakcheck::wire::external::query_cluster_status(
        &format!("127.0.0.1:{port}"),
        Duration::from_secs(2),
    )
    .unwrap()
    .unwrap();
    assert_eq!(status.worker_count, status.worker_names.len());
    status.worker_names
}

#[test]
fn shrink_moves_sources_to_the_initializer_and_join_grows_the_membership() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = b"ABC";
    generate_inputs(keys, 40_000, &d.join("in"), &DataSource::Seeded(8)).unwrap();
    let sink_dir = d.join("sink-out");
    std::fs::create_dir_all(&sink_dir).unwrap();
    let exe = exe();
    let sink_port = free_port().unwrap();
    let control = free_port().unwrap();
    let ports: Vec<WorkerPorts> = (0..4)
        .map(|_| WorkerPorts {
            source: free_port().unwrap(),
            external: free_port().unwrap(),
            control,
        })
        .collect();
    let interval = Duration::from_millis(100);
    let _sink = ChildGuard::spawn(
        "sink",
        sink_command(&exe, &sink_dir, sink_port),
        &sink_dir.join("stdout-stderr"),
    )
    .unwrap();
    let mut workers: Vec<ChildGuard> = (0..3)
        .map(|n| {
            ChildGuard::spawn(
                "worker",
                worker_command(&exe, n, 3, ports[n], sink_port, &d.join("state"), interval),
                &d.join(format!("wallaroo.{n}")),
            )
            .unwrap()
        })
        .collect();
    assert!(wait_ready(&ports[..3], Duration::from_secs(10)));
    assert_eq!(
        members(ports[0].external),
        ["initializer", "worker1", "worker2"]
    );
    let mut feeds: Vec<ChildGuard> = (0..3)
        .map(|i| {
            let cmd = feed_command(&exe, &d.join("in"), keys[i], 30_000, ports[i].source);
            ChildGuard::spawn(
                "feed",
                cmd,
                &d.join(format!("sender.out.{}", keys[i] as char)),
            )
            .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    // Which workers may go?
    let (id, body) = external_request(
        ports[0].external,
        4,
        br#"{"query":true,"node_names":[],"node_count":0}"#,
    );
    assert_eq!(id, 5);
    let eligible: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        eligible["node_names"],
        serde_json::json!(["worker1", "worker2"])
    );
    assert_eq!(
        external_request(ports[0].external, 4, br#"{"node_names":["initializer"]}"#).1,
        b"Invalid shrink targets!"
    );
    // Shrink worker2: it commits, hands its stream to the initializer, and exits 0.
    let (id, body) = external_request(
        ports[0].external,
        4,
        br#"{"query":false,"node_names":["worker2"],"node_count":0}"#,
    );
    assert_eq!(
        (id, String::from_utf8_lossy(&body).into_owned()),
        (6, "Shrinking by 1 workers!".to_string())
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = workers[2].try_wait() {
            break s;
        }
        assert!(Instant::now() < deadline, "worker2 did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    assert_eq!(members(ports[0].external), ["initializer", "worker1"]);
    // A new worker joins.
    let mut joiner = worker_command(&exe, 3, 3, ports[3], sink_port, &d.join("state"), interval);
    joiner.arg("--join");
    let _worker3 = ChildGuard::spawn("worker3", joiner, &d.join("wallaroo.3")).unwrap();
    assert!(wait_ready(&ports[3..], Duration::from_secs(10)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while members(ports[0].external).len() < 3 {
        assert!(Instant::now() < deadline, "worker3 never joined");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        members(ports[0].external),
        ["initializer", "worker1", "worker3"]
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    for f in feeds.iter_mut() {
        loop {
            if let Some(s) = f.try_wait() {
                assert!(s.success());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "feeds did not finish; logs in {}",
                d.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for w in workers.iter_mut() {
        w.stop(Duration::from_secs(2));
    }
    // worker2's pair was renamed, and key C continued on the initializer.
    let renamed: Vec<String> = std::fs::read_dir(&sink_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("output.worker2.") && n.ends_with(".txnlog"))
        .collect();
    assert_eq!(renamed.len(), 1, "{renamed:?}");
    let sender_c = std::fs::read_to_string(d.join("sender.out.C")).unwrap();
    assert!(
        sender_c.contains("Received RESTART message"),
        "feed C was moved"
    );
    let report = verify_dir(d, keys);
    assert_eq!(
        report.verdict.exit_code(),
        0,
        "{}\nlogs in {}",
        report.to_human(false),
        d.display()
    );
}

#[test]
fn the_sink_refuses_a_second_connection_for_the_same_worker() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let _sink = ChildGuard::spawn(
        "sink",
        sink_command(&exe(), dir.path(), port),
        &dir.path().join("sink.log"),
    )
    .unwrap();
    let mut first = FakeWorker::connect(port, "worker1");
    first.notify();
    let socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut second = FakeWorker {
        reader: BufReader::new(socket.try_clone().unwrap()),
        writer: socket,
    };
    second.send(&Frame::Hello {
        version: VERSION_SINK.into(),
        cookie: COOKIE.into(),
        program: "Passthrough".into(),
        instance: "worker1".into(),
    });
    assert!(
        matches!(second.recv(), Frame::Error { message } if message.contains("already connected"))
    );
    // The first connection still works, and once it is gone the name is free again.
    first.data(0, b"B1\n");
    assert!(first.phase1("T:c_id=1", 0, 3));
    drop(first);
    std::thread::sleep(Duration::from_millis(200));
    let mut third = FakeWorker::connect(port, "worker1");
    assert_eq!(third.notify(), 3);
}

#[test]
fn a_following_feed_sends_lines_appended_later() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let exe = exe();
    let OneWorker {
        sink: _sink,
        worker: _worker,
        ports,
    } = OneWorker::start(d, d, Duration::from_millis(50));
    let input = d.join("input-file.F.txt");
    std::fs::write(&input, b"F1\nF2\n").unwrap();
    let mut cmd = feed_command(&exe, d, b'F', 0, ports.source);
    cmd.arg("--follow");
    let _feed = ChildGuard::spawn("feed", cmd, &d.join("sender.out.F")).unwrap();
    let output = d.join("output.initializer");
    let wait_for = |want: &[u8]| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read(&output).unwrap_or_default() != want {
            assert!(
                Instant::now() < deadline,
                "output is {:?}",
                String::from_utf8_lossy(&std::fs::read(&output).unwrap_or_default())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(b"F1\nF2\n");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap()
        .write_all(b"F3\n")
        .unwrap();
    wait_for(b"F1\nF2\nF3\n");
}

/// Waits until `path` contains `needle` (a component's log line), or fails.
fn wait_for_line(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{}: no {needle:?} in:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 8.6: components of different runs never talk. A sink of run r1 refuses a
/// worker of run r2 with a logged ERROR and goes on serving r1; a worker of r1 refuses a
/// feed of r2; a worker handed another worker's state refuses it with exit 2.
#[test]
fn components_of_another_run_are_refused() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let exe = exe();
    let sink_port = free_port().unwrap();
    let mut sink = sink_command(&exe, d, sink_port);
    sink.args(["--run-id", "r1"]);
    let _sink = ChildGuard::spawn("sink", sink, &d.join("sink.log")).unwrap();
    let mut stranger = FakeWorker::open(sink_port);
    stranger.send(&Frame::Hello {
        version: VERSION_SINK.into(),
        cookie: format!("{COOKIE}/r2"),
        program: "Passthrough".into(),
        instance: "worker7".into(),
    });
    assert!(matches!(stranger.recv(), Frame::Error { message } if message.contains("another run")));
    let line = wait_for_line(&d.join("sink.log"), "another run");
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        !d.join("output.worker7").exists(),
        "nothing written for the stranger"
    );
    // The sink still serves its own run.
    let ports = WorkerPorts {
        source: free_port().unwrap(),
        external: free_port().unwrap(),
        control: free_port().unwrap(),
    };
    let mut worker = worker_command(
        &exe,
        0,
        1,
        ports,
        sink_port,
        &d.join("state"),
        Duration::from_millis(50),
    );
    worker.args(["--run-id", "r1"]);
    let _worker = ChildGuard::spawn("worker", worker, &d.join("wallaroo.0")).unwrap();
    assert!(
        wait_ready(&[ports], Duration::from_secs(10)),
        "the run's own worker is served"
    );
    // A feed of another run is refused by the worker.
    std::fs::write(d.join("input-file.A.txt"), b"A1\n").unwrap();
    let mut feed = feed_command(&exe, d, b'A', 0, ports.source);
    feed.args(["--run-id", "r2"]);
    let _feed = ChildGuard::spawn("feed", feed, &d.join("sender.out.A")).unwrap();
    let line = wait_for_line(&d.join("wallaroo.0"), "refused a source of another run");
    assert!(line.contains("ERROR"), "{line}");
    // Another worker handed the initializer's state refuses it, before binding anything.
    let shared = d.join("shared-state");
    let owned = soakcheck::demo::state::load_owned(&shared, "initializer", Some("r1")).unwrap();
    soakcheck::demo::state::store(&shared, &owned).unwrap();
    let out = assert_cmd::Command::new(&exe)
        .args([
            "demo",
            "worker",
            "--name",
            "worker1",
            "--run-id",
            "r1",
            "--state-dir",
        ])
        .arg(&shared)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the state of initializer (run r1), not of worker1"),
        "{stderr}"
    );
}

/// `demo cluster` without `--dir` works in a temporary directory of its own: removed
/// after a pass (it was left in /tmp every time), kept and named after a violation,
/// whose logs and sink output are the evidence.
#[test]
fn demo_cluster_removes_its_temp_dir_after_a_pass_and_keeps_it_after_a_finding() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let cluster = |extra: &[&str]| {
        assert_cmd::Command::new(exe())
            .args(["demo", "cluster", "--workers", "2", "--keys", "A,B"])
            .args(["--bytes-per-key", "20000", "--checkpoint-interval", "50ms"])
            .args(extra)
            .env("TMPDIR", tmp.path())
            .output()
            .unwrap()
    };
    let entries = || std::fs::read_dir(tmp.path()).unwrap().count();
    let out = cluster(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(entries(), 0, "a pass left its directory");
    let out = cluster(&[
        "--inject",
        "loss",
        "--inject-key",
        "B",
        "--inject-after",
        "100",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kept = std::fs::read_dir(tmp.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        stderr.contains(&format!("kept in {}", kept.display())),
        "{stderr}"
    );
    assert!(kept.join("sink-out").is_dir(), "{}", kept.display());
}
