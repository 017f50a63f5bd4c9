//! Property test: `verify` on a real sink directory agrees with a naive reference model.
//!
//! Each case makes unique input lines for a few keys, interleaves them into one committed
//! stream, applies random mutations (drop, duplicate, swap, corrupt, replay, foreign line,
//! truncate), cuts the stream into chunks at random byte positions (mid-line too), deals
//! the chunks to two workers' output files with `1-ok`/`2-ok` records in commit order,
//! and checks the verdict, verified bytes and violation kind of every key against the
//! model: concatenate, split lines, keep a key's lines, and apply the definitions of
//! issue 2 literally, with plain vectors and linear searches.

use std::io::Write;
use std::path::Path;

use proptest::prelude::*;
use soakcheck::formats::mapped::IoMode;
use soakcheck::formats::txnlog::{format_record, Record, WhereRange};
use soakcheck::verify::{verify, KeyInput, Semantics, VerifyPlan};

const KEYS: [u8; 3] = [b'A', b'B', b'C'];

#[derive(Debug, Clone)]
enum Mutation {
    Drop(usize),
    Duplicate(usize),
    Swap(usize),
    Corrupt(usize),
    /// Re-send from `back` lines earlier (an at-least-once replay), at position `at`.
    Replay {
        at: usize,
        back: usize,
    },
    Foreign(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Drop),
        any::<usize>().prop_map(Mutation::Duplicate),
        any::<usize>().prop_map(Mutation::Swap),
        any::<usize>().prop_map(Mutation::Corrupt),
        (any::<usize>(), 1usize..5).prop_map(|(at, back)| Mutation::Replay { at, back }),
        any::<usize>().prop_map(Mutation::Foreign),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn input_lines(key: u8, count: usize, salt: u32) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            format!(
                "{}{:05} {:08x}\n",
                key as char,
                i,
                (i as u32).wrapping_mul(2654435761) ^ salt
            )
            .into_bytes()
        })
        .collect()
}

/// The stream of output lines after mutations.
fn mutate(mut lines: Vec<Vec<u8>>, mutations: &[Mutation]) -> Vec<Vec<u8>> {
    for m in mutations {
        let n = lines.len();
        if n == 0 {
            break;
        }
        match *m {
            Mutation::Drop(i) => {
                lines.remove(i % n);
            }
            Mutation::Duplicate(i) => {
                let l = lines[i % n].clone();
                lines.insert((i % n) + 1 + (i / n) % 3.min(n - i % n), l);
            }
            Mutation::Swap(i) if n >= 2 => lines.swap(i % (n - 1), i % (n - 1) + 1),
            Mutation::Swap(_) => {}
            Mutation::Corrupt(i) => {
                let l = &mut lines[i % n];
                let at = 1 + (i / n) % (l.len() - 2);
                l[at] = b'#';
            }
            Mutation::Replay { at, back } => {
                let at = at % n;
                let from = at.saturating_sub(back);
                let copy: Vec<Vec<u8>> = lines[from..at].to_vec();
                for (k, l) in copy.into_iter().enumerate() {
                    lines.insert(at + k, l);
                }
            }
            Mutation::Foreign(i) => lines.insert(i % n, b"Zforeign line\n".to_vec()),
            Mutation::Truncate(i) => lines.truncate(i % (n + 1)),
        }
    }
    lines
}

#[derive(Debug, PartialEq)]
struct Expect {
    verified_bytes: u64,
    kind: Option<&'static str>,
}

/// The reference model for one key (exactly-once), straight from the definitions.
fn model_exactly_once(input: &[Vec<u8>], output: &[Vec<u8>], expect_complete: bool) -> Expect {
    let p = (0..output.len()).find(|&i| i >= input.len() || output[i] != input[i]);
    let verified = |p: usize| input[..p].iter().map(|l| l.len() as u64).sum();
    let Some(p) = p else {
        let kind = (expect_complete && output.len() < input.len()).then_some("loss");
        return Expect {
            verified_bytes: verified(output.len()),
            kind,
        };
    };
    let f = &output[p];
    let kind = if !f.ends_with(b"\n") {
        "corrupt"
    } else if input[..p].contains(f) {
        "duplicate"
    } else if let Some(j) = (p + 1..input.len()).find(|&j| &input[j] == f) {
        if input[p..j]
            .iter()
            .any(|skipped| output[p + 1..].contains(skipped))
        {
            "reorder"
        } else {
            "loss"
        }
    } else {
        "corrupt"
    };
    Expect {
        verified_bytes: verified(p),
        kind: Some(kind),
    }
}

/// The at-least-once model: each line continues the stream, or restarts it at a line
/// already delivered; anything else is the violation (classified as above).
fn model_at_least_once(input: &[Vec<u8>], output: &[Vec<u8>], expect_complete: bool) -> Expect {
    let (mut next, mut delivered) = (0usize, 0usize);
    for (i, f) in output.iter().enumerate() {
        if next < input.len() && &input[next] == f {
            next += 1;
        } else if let Some(j) = (0..delivered.min(input.len()) + 1)
            .rev()
            .find(|&j| j < input.len() && &input[j] == f)
        {
            next = j + 1;
        } else {
            let bytes = input[..delivered].iter().map(|l| l.len() as u64).sum();
            let kind = if !f.ends_with(b"\n") {
                "corrupt"
            } else if let Some(j) = (delivered..input.len()).find(|&j| &input[j] == f) {
                if input[delivered..j]
                    .iter()
                    .any(|s| output[i + 1..].contains(s))
                {
                    "reorder"
                } else {
                    "loss"
                }
            } else {
                "corrupt"
            };
            return Expect {
                verified_bytes: bytes,
                kind: Some(kind),
            };
        }
        delivered = delivered.max(next);
    }
    let bytes = input[..delivered].iter().map(|l| l.len() as u64).sum();
    Expect {
        verified_bytes: bytes,
        kind: (expect_complete && delivered < input.len()).then_some("loss"),
    }
}

/// Writes `stream` as a sink directory: chunk i ends at `cuts[i]` and goes to worker
/// `owners[i]`; commit times increase, so commit order is chunk order.
fn write_sink(dir: &Path, stream: &[u8], cuts: &[usize], owners: &[bool]) {
    let names = ["initializer", "worker1"];
    let mut outputs: [Vec<u8>; 2] = Default::default();
    let mut logs: [String; 2] = Default::default();
    let mut start = 0;
    for (i, (&cut, &owner)) in cuts.iter().zip(owners).enumerate() {
        let w = usize::from(owner);
        let from = outputs[w].len() as u64;
        outputs[w].extend_from_slice(&stream[start..cut]);
        let end = outputs[w].len() as u64;
        let txn_id = format!("Passthrough-w-{}-id-1:c_id={i}", names[w]);
        let time = 1_700_000_000.0 + i as f64 * 0.25;
        let where_list = vec![WhereRange {
            stream_id: 1,
            start: from,
            end,
        }];
        logs[w] += &format_record(
            time,
            &Record::Phase1Commit {
                txn_id: txn_id.clone(),
                where_list,
            },
        );
        logs[w] += &format_record(
            time + 0.125,
            &Record::Phase2Commit {
                txn_id,
                offset: end,
            },
        );
        start = cut;
    }
    for w in 0..2 {
        std::fs::write(dir.join(format!("output.{}", names[w])), &outputs[w]).unwrap();
        let mut log =
            std::fs::File::create(dir.join(format!("output.{}.txnlog", names[w]))).unwrap();
        log.write_all(logs[w].as_bytes()).unwrap();
    }
}

fn split_lines(stream: &[u8]) -> Vec<Vec<u8>> {
    stream
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn verify_agrees_with_the_reference_model(
        counts in prop::collection::vec(0usize..30, 3),
        order in prop::collection::vec(0usize..3, 0..200),
        mutations in prop::collection::vec(mutation(), 0..3),
        cut_points in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        owners in prop::collection::vec(any::<bool>(), 13),
        tail_fragment in any::<bool>(),
        at_least_once in any::<bool>(),
        expect_complete in any::<bool>(),
        io_read in any::<bool>(),
    ) {
        let inputs: Vec<Vec<Vec<u8>>> = KEYS.iter().zip(&counts).map(|(&k, &n)| input_lines(k, n, 7)).collect();
        // Interleave the keys in the order drawn, then the rest.
        let mut next = [0usize; 3];
        let mut lines = Vec::new();
        for &k in order.iter().chain([0, 1, 2].iter().flat_map(|k| std::iter::repeat_n(k, 30))) {
            if next[k] < inputs[k].len() {
                lines.push(inputs[k][next[k]].clone());
                next[k] += 1;
            }
        }
        let lines = mutate(lines, &mutations);
        let mut stream: Vec<u8> = lines.concat();
        if tail_fragment && !stream.is_empty() {
            stream.extend_from_slice(b"A00");
        }
        let mut cuts: Vec<usize> = cut_points.iter().map(|i| i.index(stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        cuts.dedup();
        cuts.retain(|&c| c > 0);

        let dir = tempfile::tempdir().unwrap();
        let input_dir = dir.path().join("in");
        let sink_dir = dir.path().join("sink");
        std::fs::create_dir_all(&input_dir).unwrap();
        std::fs::create_dir_all(&sink_dir).unwrap();
        let mut key_inputs = Vec::new();
        for (k, lines) in KEYS.iter().zip(&inputs) {
            let path = input_dir.join(format!("input-file.{}.txt", *k as char));
            std::fs::write(&path, lines.concat()).unwrap();
            key_inputs.push(KeyInput { key: *k, path });
        }
        write_sink(&sink_dir, &stream, &cuts, &owners);
        let semantics = if at_least_once { Semantics::AtLeastOnce } else { Semantics::ExactlyOnce };
        let plan = VerifyPlan {
            sink_dir: Some(sink_dir),
            plain_outputs: vec![],
            inputs: key_inputs,
            expect_complete,
            semantics,
            io: if io_read { IoMode::Read } else { IoMode::Mmap },
        };
        let report = verify(&plan);
        let all = split_lines(&stream);
        let model = |i: usize, k: u8| {
            let output: Vec<Vec<u8>> = all.iter().filter(|l| l[0] == k).cloned().collect();
            if at_least_once {
                model_at_least_once(&inputs[i], &output, expect_complete)
            } else {
                model_exactly_once(&inputs[i], &output, expect_complete)
            }
        };
        let report = match report {
            Ok(report) => report,
            // A pass on nothing is refused (exit 2): the model found nothing wrong and
            // verified nothing either.
            Err(e @ soakcheck::verify::VerifyError::NothingVerified { .. }) => {
                for (i, k) in KEYS.iter().enumerate() {
                    prop_assert_eq!(model(i, *k), Expect { verified_bytes: 0, kind: None }, "{}", e);
                }
                return Ok(());
            }
            Err(e) => panic!("{e}"),
        };
        for (i, k) in KEYS.iter().enumerate() {
            let expected = model(i, *k);
            let key = &report.keys[i];
            let got = Expect {
                verified_bytes: key.verified_bytes,
                kind: key.violation.as_ref().map(|v| v.kind.as_str()),
            };
            prop_assert_eq!(&got, &expected, "key {}", *k as char);
        }
        prop_assert_eq!(report.verdict.exit_code(), i32::from(report.keys.iter().any(|k| k.violation.is_some())));
    }
}
