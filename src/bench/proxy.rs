//! `soakcheck bench proxy`: one connection's throughput over loopback through a clear
//! link of the proxy, side by side with the same transfer made directly, runs
//! alternating, medians reported.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::proxy::{LinkSpec, Proxy, ProxyError};

#[derive(Debug, Clone)]
pub struct BenchProxyPlan {
    /// Bytes per transfer.
    pub bytes: u64,
    pub runs: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchProxyReport {
    pub bytes: u64,
    pub runs: usize,
    pub direct_mb_per_s: f64,
    pub proxied_mb_per_s: f64,
    /// proxied / direct.
    pub ratio: f64,
}

/// The target: at least this many MB/s through the proxy.
pub const TARGET_MB_PER_S: f64 = 500.0;

/// A receiver that counts what it reads until EOF; returns its address and a handle
/// giving (bytes, when the last byte arrived).
fn receiver() -> std::io::Result<(SocketAddr, std::thread::JoinHandle<(u64, Instant)>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let handle = std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return (0, Instant::now());
        };
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        (total, Instant::now())
    });
    Ok((addr, handle))
}

/// One transfer of `bytes` to `to`; the receiver's address is `upstream` when `to` is a
/// proxy in front of it.
fn transfer(
    to: SocketAddr,
    bytes: u64,
    done: std::thread::JoinHandle<(u64, Instant)>,
) -> std::io::Result<Duration> {
    let block = vec![0x5au8; 1 << 20];
    let mut s = TcpStream::connect(to)?;
    let start = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        s.write_all(&block[..n])?;
        left -= n as u64;
    }
    s.shutdown(std::net::Shutdown::Write)?;
    let (got, at) = done
        .join()
        .map_err(|_| std::io::Error::other("the receiver panicked"))?;
    if got != bytes {
        return Err(std::io::Error::other(format!(
            "{got} bytes arrived of {bytes}"
        )));
    }
    Ok(at - start)
}

pub fn bench_proxy(plan: &BenchProxyPlan) -> Result<BenchProxyReport, ProxyError> {
    let io = ProxyError::Runtime;
    let mut direct = Vec::new();
    let mut proxied = Vec::new();
    for _ in 0..plan.runs.max(1) {
        let (addr, done) = receiver().map_err(io)?;
        direct.push(transfer(addr, plan.bytes, done).map_err(io)?);
        let (addr, done) = receiver().map_err(io)?;
        let spec = LinkSpec {
            name: "bench".into(),
            listen: "127.0.0.1:0".parse().expect("an address"),
            upstream: addr,
        };
        let proxy = Proxy::start(vec![spec], 1)?;
        let front = proxy.addr("bench").expect("the link");
        proxied.push(transfer(front, plan.bytes, done).map_err(io)?);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    let mb = plan.bytes as f64 / 1e6;
    let (d, p) = (mb / median(&mut direct), mb / median(&mut proxied));
    Ok(BenchProxyReport {
        bytes: plan.bytes,
        runs: plan.runs.max(1),
        direct_mb_per_s: d,
        proxied_mb_per_s: p,
        ratio: p / d,
    })
}

impl BenchProxyReport {
    pub fn to_human(&self) -> String {
        format!(
            "bench proxy: one connection over loopback, {:.0} MB a transfer, median of {} runs each, alternating\n  \
             direct {:.0} MB/s, through a clear proxy link {:.0} MB/s ({:.2}x direct; target >= {TARGET_MB_PER_S:.0} MB/s)\n",
            self.bytes as f64 / 1e6,
            self.runs,
            self.direct_mb_per_s,
            self.proxied_mb_per_s,
            self.ratio
        )
    }

    pub fn met(&self) -> bool {
        self.proxied_mb_per_s >= TARGET_MB_PER_S
    }
}
