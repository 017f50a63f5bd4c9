//! Criterion bench of the verifier: throughput in committed bytes per second on a
//! generated sink directory (3 workers, interleaved keys, rollbacks, a leaving worker),
//! through both I/O paths, and of the checker core alone on bytes already in memory.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use soakcheck::bench::verify::generate_fixture;
use soakcheck::formats::mapped::IoMode;
use soakcheck::formats::txnlog::parse_txnlog;
use soakcheck::verify::{verify, Checker, Semantics, VerifyPlan};

fn setup(keys: usize, bytes_per_key: u64) -> (tempfile::TempDir, VerifyPlan, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (plan, summary) = generate_fixture(
        dir.path(),
        keys,
        bytes_per_key,
        3,
        soakcheck::bench::verify::Shape {
            interleave: 1.5,
            commit_bytes: None,
        },
    )
    .unwrap();
    (dir, plan, summary.committed_bytes)
}

fn bench_verify(c: &mut Criterion) {
    let (_dir, plan, bytes) = setup(10, 400_000);
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Bytes(bytes));
    for io in [IoMode::Mmap, IoMode::Read] {
        let plan = VerifyPlan { io, ..plan.clone() };
        group.bench_function(format!("sink-dir/{io:?}"), |b| {
            b.iter(|| {
                let report = verify(black_box(&plan)).unwrap();
                assert_eq!(report.verdict.exit_code(), 0);
            })
        });
    }
    group.finish();

    // Txnlog parsing alone (the only per-record work).
    let txnlogs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(plan.sink_dir.as_ref().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txnlog"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    let mut group = c.benchmark_group("txnlog");
    group.throughput(Throughput::Bytes(
        txnlogs.iter().map(|(_, b)| b.len() as u64).sum(),
    ));
    group.bench_function("parse", |b| {
        b.iter(|| {
            for (path, bytes) in &txnlogs {
                black_box(parse_txnlog(path, bytes).unwrap());
            }
        })
    });
    group.finish();

    // The checker core alone: one key's input fed back as one chunk per 16 KiB.
    let input: Vec<u8> = std::fs::read(&plan.inputs[0].path).unwrap();
    let mut group = c.benchmark_group("checker");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("one-key-16k-chunks", |b| {
        b.iter(|| {
            let mut checker = Checker::new(Semantics::ExactlyOnce, &[(b'A', &input[..])]);
            for (i, chunk) in input.chunks(16 * 1024).enumerate() {
                checker.feed(i, (i * 16 * 1024) as u64, chunk);
            }
            checker.finish();
            assert!(checker.cursors()[0].complete());
        })
    });
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
