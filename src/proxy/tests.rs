//! The proxy against real loopback sockets: per fault kind, what arrives and when; and a
//! property test: whatever faults and heals come, what arrives is a prefix of what was
//! sent (all of it, when no reset came).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

/// An upstream that accepts connections and reports, per connection, each read (with
/// its time) on a channel; the end of a connection is an empty read.
fn upstream() -> (SocketAddr, mpsc::Receiver<(Instant, Vec<u8>)>) {
    let listener =
        TcpListener::bind(("127.0.0.1", crate::demo::cluster::free_port().unwrap())).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    if tx.send((Instant::now(), buf[..n].to_vec())).is_err() || n == 0 {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn proxy_to(upstream: SocketAddr) -> (Proxy, SocketAddr) {
    let spec = LinkSpec {
        name: "a->b".into(),
        listen: std::net::SocketAddr::from((
            [127, 0, 0, 1],
            crate::demo::cluster::free_port().unwrap(),
        )),
        upstream,
    };
    let proxy = Proxy::start(vec![spec], 7).unwrap();
    let addr = proxy.addr("a->b").unwrap();
    (proxy, addr)
}

/// Reads from `rx` until `want` bytes or the end of the connection (or `limit` passes).
fn collect(rx: &mpsc::Receiver<(Instant, Vec<u8>)>, want: usize, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((_, piece)) if piece.is_empty() => break,
            Ok((_, piece)) => got.extend(piece),
            Err(_) => break,
        }
    }
    got
}

fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    crate::gen::Rng::new(seed).fill(&mut v);
    v
}

#[test]
fn a_clear_link_forwards_every_byte_both_ways() {
    let listener =
        TcpListener::bind(("127.0.0.1", crate::demo::cluster::free_port().unwrap())).unwrap();
    let echo = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut r = s.try_clone().unwrap();
        std::io::copy(&mut r, &mut s).unwrap();
    });
    let (proxy, addr) = proxy_to(echo);
    let data = pattern(3 << 20, 1);
    let mut client = TcpStream::connect(addr).unwrap();
    let mut reader = client.try_clone().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        client.write_all(&sent).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    reader.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert!(
        back == data,
        "{} bytes came back of {}",
        back.len(),
        data.len()
    );
    let s = &proxy.status()[0];
    assert_eq!((s.forwarded_up, s.forwarded_down), (3 << 20, 3 << 20));
}

#[test]
fn a_partition_holds_every_byte_until_the_heal() {
    let (up, rx) = upstream();
    let (proxy, addr) = proxy_to(up);
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"before").unwrap();
    assert_eq!(collect(&rx, 6, Duration::from_secs(10)), b"before");
    proxy
        .apply("a->b", Directions::Up, Fault::Partition)
        .unwrap();
    let held = pattern(200_000, 2);
    client.write_all(&held).unwrap();
    // A blackhole: the connection stays open and nothing arrives.
    assert!(collect(&rx, 1, Duration::from_millis(400)).is_empty());
    let mut buf = [0u8; 1];
    client
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let still_open = client.read(&mut buf).unwrap_err().kind();
    assert!(matches!(
        still_open,
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
    proxy.apply("a->b", Directions::Both, Fault::Heal).unwrap();
    assert!(collect(&rx, held.len(), Duration::from_secs(10)) == held);
}

/// The race a clean-clone CI run caught: bytes written right after a partition was
/// applied must be held, even when the clear path wakes for them and for the fault at
/// once. Many tries, each on a warm clear path.
#[test]
fn bytes_written_after_a_partition_never_cross_it() {
    let (up, rx) = upstream();
    let (proxy, addr) = proxy_to(up);
    let mut client = TcpStream::connect(addr).unwrap();
    for round in 0..40u8 {
        client.write_all(&[round]).unwrap();
        assert_eq!(collect(&rx, 1, Duration::from_secs(10)), [round]);
        proxy
            .apply("a->b", Directions::Up, Fault::Partition)
            .unwrap();
        client.write_all(b"held").unwrap();
        let leaked = collect(&rx, 1, Duration::from_millis(30));
        assert!(
            leaked.is_empty(),
            "round {round}: {leaked:?} crossed the partition"
        );
        proxy.apply("a->b", Directions::Up, Fault::Heal).unwrap();
        assert_eq!(collect(&rx, 4, Duration::from_secs(10)), b"held");
    }
}

#[test]
fn a_reset_is_econnreset_and_refuses_new_connections_for_a_while() {
    let (up, rx) = upstream();
    let (proxy, addr) = proxy_to(up);
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"x").unwrap();
    assert_eq!(collect(&rx, 1, Duration::from_secs(10)), b"x");
    proxy
        .apply("a->b", Directions::Both, Fault::Reset { refuse_ms: 1500 })
        .unwrap();
    let mut buf = [0u8; 16];
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let e = client.read(&mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
    // Refused: accepted, then reset at once.
    let mut again = TcpStream::connect(addr).unwrap();
    again
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let refused = again.read(&mut buf);
    assert!(
        matches!(&refused, Err(e) if e.kind() == ErrorKind::ConnectionReset)
            || matches!(refused, Ok(0)),
        "{refused:?}"
    );
    // After the refusal, connections work again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = TcpStream::connect(addr).unwrap();
        // While still refused, the write may meet the RST.
        let _ = c.write_all(b"y");
        if collect(&rx, 1, Duration::from_millis(300)).contains(&b'y') {
            break;
        }
        assert!(Instant::now() < deadline, "still refused");
    }
}

#[test]
fn a_delay_holds_each_byte_that_long() {
    let (up, rx) = upstream();
    let (proxy, addr) = proxy_to(up);
    let delay = Delay {
        ms: 300,
        jitter_ms: 0,
    };
    proxy
        .apply("a->b", Directions::Up, Fault::Delay(delay))
        .unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    for _ in 0..3 {
        let sent = Instant::now();
        client.write_all(b"ping").unwrap();
        let (at, piece) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(piece, b"ping");
        let took = at - sent;
        assert!(
            took >= Duration::from_millis(270) && took <= Duration::from_millis(330),
            "{took:?} for a 300 ms delay"
        );
    }
}

#[test]
fn bandwidth_holds_the_rate() {
    let (up, rx) = upstream();
    let (proxy, addr) = proxy_to(up);
    let rate = 2_000_000u64;
    proxy
        .apply(
            "a->b",
            Directions::Up,
            Fault::Bandwidth { bytes_per_s: rate },
        )
        .unwrap();
    let data = pattern(3_000_000, 3);
    let mut client = TcpStream::connect(addr).unwrap();
    let sent = data.clone();
    std::thread::spawn(move || client.write_all(&sent));
    // The rate between the first arrival and the last.
    let (first_at, first) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let mut got = first.len();
    let mut last_at = first_at;
    while got < data.len() {
        let (at, piece) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        got += piece.len();
        last_at = at;
    }
    let measured = (got - first.len()) as f64 / (last_at - first_at).as_secs_f64();
    let ratio = measured / rate as f64;
    assert!(
        (0.9..=1.1).contains(&ratio),
        "{measured:.0} B/s for {rate} B/s"
    );
}

#[test]
fn slicing_splits_writes_but_keeps_every_byte() {
    let (up, rx) = upstream();
    let (proxy, addr) = proxy_to(up);
    proxy.apply("a->b", Directions::Up, Fault::Slice).unwrap();
    let data = pattern(4000, 4);
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(&data).unwrap();
    let got = collect(&rx, data.len(), Duration::from_secs(10));
    assert!(got == data);
    // Each piece is its own write of at most SLICE_MAX bytes.
    let writes = proxy.status()[0].writes;
    assert!(
        writes >= (data.len() / fault::SLICE_MAX) as u64,
        "{writes} writes"
    );
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Step {
    Send(usize),
    Apply(Directions, Fault),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let fault = prop_oneof![
        Just(Fault::Partition),
        Just(Fault::Heal),
        Just(Fault::Slice),
        (0u64..30, 0u64..10).prop_map(|(ms, jitter_ms)| Fault::Delay(Delay { ms, jitter_ms })),
        (20_000u64..2_000_000).prop_map(|b| Fault::Bandwidth { bytes_per_s: b }),
        Just(Fault::Reset { refuse_ms: 0 }),
    ];
    let dirs = prop_oneof![
        Just(Directions::Both),
        Just(Directions::Up),
        Just(Directions::Down)
    ];
    prop_oneof![
        3 => (1usize..20_000).prop_map(Step::Send),
        2 => (dirs, fault).prop_map(|(d, f)| Step::Apply(d, f)),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Whatever faults and heals come between the writes, what arrives is a prefix of
    /// what was sent, in order; all of it when no reset came.
    #[test]
    fn any_faults_deliver_a_prefix_of_the_stream(steps in proptest::collection::vec(step(), 1..12)) {
        let (up, rx) = upstream();
        let (proxy, addr) = proxy_to(up);
        let mut client = TcpStream::connect(addr).unwrap();
        client.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        // Every byte the client wrote: a reset acts on its own time, so bytes written
        // just after it may still get through.
        let mut sent: Vec<u8> = Vec::new();
        let mut reset = false;
        for (i, s) in steps.iter().enumerate() {
            match s {
                Step::Send(n) => {
                    let bytes = pattern(*n, i as u64);
                    match client.write(&bytes) {
                        Ok(written) => sent.extend(&bytes[..written]),
                        Err(_) => break,
                    }
                }
                Step::Apply(d, f) => {
                    reset |= matches!(f, Fault::Reset { .. });
                    proxy.apply("a->b", *d, *f).unwrap();
                }
            }
        }
        proxy.apply("a->b", Directions::Both, Fault::Heal).unwrap();
        let _ = client.shutdown(std::net::Shutdown::Write);
        let got = collect(&rx, sent.len(), Duration::from_secs(if reset { 2 } else { 20 }));
        proptest::prop_assert!(got.len() <= sent.len(), "{} bytes arrived of {}", got.len(), sent.len());
        let n = got.len().min(sent.len());
        proptest::prop_assert!(got[..n] == sent[..n], "not a prefix");
        if !reset {
            proptest::prop_assert_eq!(got.len(), sent.len());
        }
    }
}
