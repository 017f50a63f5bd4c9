//! `soakcheck fs`, the FUSE layer that forgets what was never fsynced, through a real
//! mount: a model test (random writes, truncates, fsyncs, renames, unlinks, directory
//! fsyncs and power cuts, applied through the mount and to a model of what is durable),
//! a passthrough test (the same sequences on a plain directory give the same files),
//! and its control interface.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::{fuse_available, FsMount};
use proptest::prelude::*;

/// The files a sequence works on: three in the root, three in `d/`.
const NAMES: [&str; 6] = ["a", "b", "c", "d/a", "d/b", "d/c"];

#[derive(Debug, Clone)]
enum Step {
    Write {
        f: usize,
        off: u16,
        len: u16,
        byte: u8,
    },
    Truncate {
        f: usize,
        len: u16,
    },
    Fsync {
        f: usize,
        data_only: bool,
    },
    Rename {
        from: usize,
        to: usize,
    },
    Unlink {
        f: usize,
    },
    FsyncDir {
        d: usize,
    },
    PowerCut,
}

fn step() -> impl Strategy<Value = Step> {
    let f = 0..NAMES.len();
    prop_oneof![
        4 => (f.clone(), 0..6000u16, 1..3000u16, any::<u8>())
            .prop_map(|(f, off, len, byte)| Step::Write { f, off, len, byte }),
        1 => (f.clone(), 0..8000u16).prop_map(|(f, len)| Step::Truncate { f, len }),
        2 => (f.clone(), any::<bool>()).prop_map(|(f, data_only)| Step::Fsync { f, data_only }),
        1 => (f.clone(), f.clone()).prop_map(|(from, to)| Step::Rename { from, to }),
        1 => f.prop_map(|f| Step::Unlink { f }),
        2 => (0..2usize).prop_map(|d| Step::FsyncDir { d }),
        1 => Just(Step::PowerCut),
    ]
}

fn dir_of(name: &str) -> usize {
    usize::from(name.starts_with("d/"))
}

/// An entry of a directory (0 the root, 1 `d`), or every entry of one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Entry(String),
    Within(usize),
}

#[derive(Debug, Clone)]
enum Redo {
    Create(String, u32),
    Unlink(String),
    Rename(String, String),
}

/// What is live and what is durable, by file identity; entry operations not yet
/// durable are kept as what would redo them.
#[derive(Debug, Default)]
struct Model {
    live: BTreeMap<String, u32>,
    durable: BTreeMap<String, u32>,
    /// Per file: (live bytes, durable bytes).
    data: HashMap<u32, (Vec<u8>, Vec<u8>)>,
    pending: Vec<(Vec<Key>, Redo)>,
    next: u32,
}

impl Model {
    fn entry(&mut self, names: &[&str], redo: Redo) {
        let mut keys = Vec::new();
        for n in names {
            keys.extend([Key::Entry(n.to_string()), Key::Within(dir_of(n))]);
        }
        self.pending.push((keys, redo));
    }

    /// The id of `name`, created (empty, with nothing durable) when missing.
    fn open_create(&mut self, name: &str) -> u32 {
        if let Some(id) = self.live.get(name) {
            return *id;
        }
        self.next += 1;
        let id = self.next;
        self.live.insert(name.into(), id);
        self.data.insert(id, (Vec::new(), Vec::new()));
        self.entry(&[name], Redo::Create(name.into(), id));
        id
    }

    /// An fsync of directory `d`: its entry operations, and the earlier ones they
    /// depend on, are durable.
    fn fsync_dir(&mut self, d: usize) {
        let mut needed: Vec<Key> = Vec::new();
        let mut commit = vec![false; self.pending.len()];
        for (i, (keys, _)) in self.pending.iter().enumerate().rev() {
            let touches = keys
                .iter()
                .any(|k| matches!(k, Key::Entry(n) if dir_of(n) == d));
            if touches || keys.iter().any(|k| needed.contains(k)) {
                commit[i] = true;
                needed.extend(keys.iter().filter(|k| matches!(k, Key::Entry(_))).cloned());
            }
        }
        let pending = std::mem::take(&mut self.pending);
        for ((keys, redo), c) in pending.into_iter().zip(commit) {
            if !c {
                self.pending.push((keys, redo));
                continue;
            }
            match redo {
                Redo::Create(n, id) => {
                    self.durable.insert(n, id);
                }
                Redo::Unlink(n) => {
                    self.durable.remove(&n);
                }
                Redo::Rename(from, to) => {
                    let id = self.durable.remove(&from).expect("its create is durable");
                    self.durable.insert(to, id);
                }
            }
        }
    }

    fn power_cut(&mut self) {
        self.live = self.durable.clone();
        self.pending.clear();
        for (live, durable) in self.data.values_mut() {
            *live = durable.clone();
        }
    }

    /// The files a reader sees now.
    fn tree(&self) -> BTreeMap<String, Vec<u8>> {
        let files = self.live.iter();
        files
            .map(|(n, id)| (n.clone(), self.data[id].0.clone()))
            .collect()
    }
}

/// Carries `step` out on the files under `root`, and on `model` when given; a step on a
/// file that is not there is skipped by both.
fn apply(root: &Path, step: &Step, mut model: Option<&mut Model>) {
    let path = |f: usize| root.join(NAMES[f]);
    let exists = |f: usize| path(f).exists();
    match *step {
        Step::Write { f, off, len, byte } => {
            let mut file = OpenOptions::new();
            let file = file.write(true).create(true).truncate(false);
            let file = file.open(path(f)).unwrap();
            let data = vec![byte; len as usize];
            file.write_all_at(&data, off as u64).unwrap();
            if let Some(m) = model.as_deref_mut() {
                let id = m.open_create(NAMES[f]);
                let live = &mut m.data.get_mut(&id).unwrap().0;
                let end = off as usize + data.len();
                if live.len() < end {
                    live.resize(end, 0);
                }
                live[off as usize..end].copy_from_slice(&data);
            }
        }
        Step::Truncate { f, len } if exists(f) => {
            let file = OpenOptions::new().write(true).open(path(f)).unwrap();
            file.set_len(len as u64).unwrap();
            if let Some(m) = model {
                let id = m.live[NAMES[f]];
                m.data.get_mut(&id).unwrap().0.resize(len as usize, 0);
            }
        }
        Step::Fsync { f, data_only } if exists(f) => {
            let file = OpenOptions::new().write(true).open(path(f)).unwrap();
            if data_only {
                file.sync_data().unwrap();
            } else {
                file.sync_all().unwrap();
            }
            if let Some(m) = model {
                let id = m.live[NAMES[f]];
                let (live, durable) = m.data.get_mut(&id).unwrap();
                *durable = live.clone();
            }
        }
        Step::Rename { from, to } if from != to && exists(from) => {
            std::fs::rename(path(from), path(to)).unwrap();
            if let Some(m) = model {
                let id = m.live.remove(NAMES[from]).unwrap();
                m.live.insert(NAMES[to].into(), id);
                let redo = Redo::Rename(NAMES[from].into(), NAMES[to].into());
                m.entry(&[NAMES[from], NAMES[to]], redo);
            }
        }
        Step::Unlink { f } if exists(f) => {
            std::fs::remove_file(path(f)).unwrap();
            if let Some(m) = model {
                m.live.remove(NAMES[f]);
                m.entry(&[NAMES[f]], Redo::Unlink(NAMES[f].into()));
            }
        }
        Step::FsyncDir { d } => {
            let dir = if d == 0 {
                root.to_path_buf()
            } else {
                root.join("d")
            };
            std::fs::File::open(dir).unwrap().sync_all().unwrap();
            if let Some(m) = model {
                m.fsync_dir(d);
            }
        }
        _ => {}
    }
}

/// Every file under `root` (its `d/` included, the layer's own folder not), with its bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for (prefix, dir) in [("", root.to_path_buf()), ("d/", root.join("d"))] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_file() {
                let bytes = std::fs::read(entry.path()).unwrap();
                assert_eq!(bytes.len() as u64, entry.metadata().unwrap().len());
                out.insert(format!("{prefix}{name}"), bytes);
            }
        }
    }
    out
}

/// Empties the mount, with `d/` made and everything durable.
fn fresh(fs: &FsMount) {
    let m = &fs.mount;
    for name in NAMES {
        let _ = std::fs::remove_file(m.join(name));
    }
    std::fs::create_dir_all(m.join("d")).unwrap();
    let (status, body) = fs.call("POST", "/checkpoint", "");
    assert_eq!(status, 200, "{body}");
}

fn summary(t: &BTreeMap<String, Vec<u8>>) -> Vec<(String, usize)> {
    t.iter().map(|(n, b)| (n.clone(), b.len())).collect()
}

/// One mount for every case of a test.
fn mount() -> Option<(tempfile::TempDir, FsMount)> {
    if !fuse_available() {
        return None;
    }
    let top = tempfile::tempdir().unwrap();
    std::fs::create_dir(top.path().join("backing")).unwrap();
    let fs = FsMount::start(&top.path().join("mnt"), &top.path().join("backing"));
    Some((top, fs))
}

/// After every power cut the backing directory holds exactly what the model says is
/// durable, and the mount shows it; between cuts the mount shows what the model says
/// is live.
#[test]
fn after_every_power_cut_the_backing_directory_is_what_was_durable() {
    let Some((top, fs)) = mount() else { return };
    let backing = top.path().join("backing");
    let config = ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(steps in prop::collection::vec(step(), 1..60))| {
        fresh(&fs);
        let mut model = Model::default();
        for (i, s) in steps.iter().enumerate() {
            if let Step::PowerCut = s {
                let (status, body) = fs.call("POST", "/lose-unsynced", "");
                prop_assert_eq!(status, 200, "{}", body);
                model.power_cut();
                let durable = tree(&backing);
                prop_assert!(durable == model.tree(), "after step {}, the backing holds {:?}, the model {:?}", i, summary(&durable), summary(&model.tree()));
            } else {
                apply(&fs.mount, s, Some(&mut model));
            }
            let seen = tree(&fs.mount);
            prop_assert!(seen == model.tree(), "after step {} ({:?}), the mount shows {:?}, the model {:?}", i, s, summary(&seen), summary(&model.tree()));
        }
    });
}

/// With no fault, the same sequences give the same bytes and sizes through the mount
/// as on a plain directory.
#[test]
fn through_the_mount_files_are_what_a_plain_directory_gives() {
    let Some((_top, fs)) = mount() else { return };
    let config = ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(steps in prop::collection::vec(step(), 1..60))| {
        fresh(&fs);
        let plain = tempfile::tempdir().unwrap();
        std::fs::create_dir(plain.path().join("d")).unwrap();
        for s in &steps {
            apply(&fs.mount, s, None);
            apply(plain.path(), s, None);
            prop_assert_eq!(tree(&fs.mount), tree(plain.path()));
        }
    });
}

fn errno_of(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// An errno fault strikes the operation and paths it names, and no other, until it is
/// removed or its time is up; a request that is not a fault is refused with why.
#[test]
fn errno_faults_strike_what_they_name_until_removed() {
    let Some((_top, fs)) = mount() else { return };
    let m = &fs.mount;
    std::fs::write(m.join("x"), b"x").unwrap();
    std::fs::write(m.join("y"), b"y").unwrap();
    let fault = r#"{"op":"fsync","errno":"EIO","path":"^/x$"}"#;
    assert_eq!(fs.call("POST", "/faults", fault).0, 200);
    let sync = |n: &str| std::fs::File::open(m.join(n)).unwrap().sync_all();
    assert_eq!(sync("x").map_err(errno_of), Err(5), "fsync of /x is EIO");
    assert!(sync("y").is_ok(), "fsync of /y is not struck");
    let nospace = r#"{"op":"write","errno":"ENOSPC","for":0.3}"#;
    assert_eq!(fs.call("POST", "/faults", nospace).0, 200);
    let write = || std::fs::write(m.join("y"), b"more");
    assert_eq!(write().map_err(errno_of), Err(28), "writes are ENOSPC");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while write().is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the ENOSPC fault never ended"
        );
    }
    let (status, body) = fs.call("POST", "/faults", r#"{"op":"fsync"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("errno"), "{body}");
    assert_eq!(fs.call("DELETE", "/faults", "").0, 200);
    assert!(sync("x").is_ok(), "DELETE /faults removes them");
}

/// A torn power cut keeps a nonempty strict prefix of a file's last unsynced write,
/// and says how much.
#[test]
fn a_torn_power_cut_keeps_a_prefix_of_the_last_write() {
    let Some((top, fs)) = mount() else { return };
    let m = &fs.mount;
    std::fs::write(m.join("t"), b"durable:").unwrap();
    std::fs::File::open(m.join("t"))
        .unwrap()
        .sync_all()
        .unwrap();
    std::fs::File::open(m).unwrap().sync_all().unwrap();
    let mut f = OpenOptions::new().append(true).open(m.join("t")).unwrap();
    // An earlier unsynced write, then the last one: the cut falls inside the last, so
    // the earlier stays as written (no hole of zeros where it was).
    std::io::Write::write_all(&mut f, &[b'y'; 40]).unwrap();
    std::io::Write::write_all(&mut f, &[b'z'; 1000]).unwrap();
    drop(f);
    assert_eq!(fs.call("POST", "/faults", r#"{"torn":true}"#).0, 200);
    let (status, body) = fs.call("POST", "/lose-unsynced", "");
    assert_eq!(status, 200, "{body}");
    let lost: serde_json::Value = serde_json::from_str(&body).unwrap();
    let kept = lost["torn"]["/t"].as_u64().expect("/t was torn") as usize;
    assert!((1..1000).contains(&kept), "{body}");
    let after = std::fs::read(top.path().join("backing/t")).unwrap();
    assert_eq!(after.len(), 8 + 40 + kept);
    assert!(after.starts_with(b"durable:"));
    assert!(after[8..48].iter().all(|b| *b == b'y'), "{after:?}");
    assert!(after[48..].iter().all(|b| *b == b'z'));
}

/// After a cut, a file held open and mapped across it reads what was durable: the
/// kernel's cached pages of the lost writes are dropped.
#[test]
fn a_cut_drops_the_kernels_cached_pages_of_open_and_mapped_files() {
    let Some((_top, fs)) = mount() else { return };
    let path = fs.mount.join("cached");
    std::fs::write(&path, vec![b'A'; 8192]).unwrap();
    std::fs::File::open(&path).unwrap().sync_all().unwrap();
    std::fs::File::open(&fs.mount).unwrap().sync_all().unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.write_all_at(&[b'B'; 8192], 0).unwrap();
    let before = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    assert!(before.iter().all(|b| *b == b'B'));
    drop(before);
    assert_eq!(fs.call("POST", "/lose-unsynced", "").0, 200);
    let mut buf = vec![0; 8192];
    file.read_exact_at(&mut buf, 0).unwrap();
    assert!(
        buf.iter().all(|b| *b == b'A'),
        "a read through the open file"
    );
    let after = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    assert!(
        after.iter().all(|b| *b == b'A'),
        "a mapping made after the cut"
    );
}

/// SIGTERM makes everything durable (a shutdown is not a power cut), unmounts and
/// leaves nothing of the layer in the backing directory.
#[test]
fn sigterm_unmounts_and_leaves_the_backing_directory_whole() {
    let Some((top, mut fs)) = mount() else { return };
    std::fs::write(fs.mount.join("kept"), b"never fsynced").unwrap();
    let open = std::fs::File::open(fs.mount.join("kept")).unwrap();
    assert!(fs.stop().success());
    drop(open);
    assert!(!common::mounted(&fs.mount), "still mounted");
    let backing = top.path().join("backing");
    assert_eq!(
        std::fs::read(backing.join("kept")).unwrap(),
        b"never fsynced"
    );
    let names: Vec<_> = std::fs::read_dir(&backing)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["kept"]);
}

/// verify, which maps the files it reads, checks a sink directory through the mount as
/// it does directly.
#[test]
fn verify_reads_a_sink_directory_through_the_mount() {
    let Some((top, fs)) = mount() else { return };
    let d = top.path().to_str().unwrap();
    let inputs = format!("{d}/in");
    let gen = common::soakcheck(&[
        "gen", "inputs", "--keys", "A,B", "--bytes", "300000", "--dir", &inputs,
    ]);
    assert!(gen.status.success(), "{}", common::text(&gen));
    let sink = fs.mount.join("sink").display().to_string();
    let args = [
        "--input-dir",
        &inputs,
        "--keys",
        "A,B",
        "--workers",
        "2",
        "--sink-dir",
        &sink,
    ];
    let gen = common::soakcheck(&[&["gen", "sink"][..], &args].concat());
    assert!(gen.status.success(), "{}", common::text(&gen));
    let out = common::soakcheck(&[
        "verify",
        "--sink-dir",
        &sink,
        "--input-dir",
        &inputs,
        "--keys",
        "A,B",
    ]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(common::text(&out).contains("OK"), "{}", common::text(&out));
}

/// One layer per backing directory: a second one would empty the first one's trash and
/// undo its power cuts, so it is refused, naming the directory.
#[test]
fn a_second_layer_over_the_same_backing_is_refused() {
    let Some((top, fs)) = mount() else { return };
    let out = common::soakcheck(&[
        "fs",
        top.path().join("mnt2").to_str().unwrap(),
        "--backing",
        top.path().join("backing").to_str().unwrap(),
    ]);
    assert_refused(&out, "served by another soakcheck fs layer");
    assert!(
        !top.path().join("mnt2").exists(),
        "a refused layer made its mount point"
    );
    // Nor over a mount (a layer over a layer), nor over a folder it would hide.
    let other = top.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let full = top.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("x"), b"hidden").unwrap();
    for (at, why) in [(&fs.mount, "a mount point already"), (&full, "not empty")] {
        let out = common::soakcheck(&[
            "fs",
            at.to_str().unwrap(),
            "--backing",
            other.to_str().unwrap(),
        ]);
        assert_refused(&out, why);
        assert!(!other.join(".soakcheck-fs").exists());
    }
}

/// `--control-stdin`, as `run` drives a layer on another host: the layer answers each
/// command line once its effect is complete, refuses what is wrong with a reason, and
/// the end of its stdin unmounts it and leaves nothing of it in the backing directory.
#[test]
fn over_stdin_the_layer_answers_each_command_and_unmounts_at_its_end() {
    use soakcheck::fs::faults::{Errno, FaultRequest, Op};
    use soakcheck::fs::piped::PipedLayer;
    if !fuse_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mount, backing) = (dir.path().join("m"), dir.path().join("b"));
    std::fs::create_dir(&backing).unwrap();
    let mut command = std::process::Command::new(common::exe());
    command
        .arg("fs")
        .arg(&mount)
        .arg("--backing")
        .arg(&backing)
        .arg("--control-stdin")
        .arg("--keep-lost")
        .arg(dir.path().join("kept"));
    let mut layer = PipedLayer::start(command, "the test's layer").unwrap();
    assert!(common::mounted(&mount));
    std::fs::write(mount.join("f"), b"never synced").unwrap();
    // A file fsynced, in a directory that was not: the cut removes it whole.
    std::fs::write(mount.join("h"), b"synced, not its entry").unwrap();
    std::fs::File::open(mount.join("h"))
        .unwrap()
        .sync_all()
        .unwrap();
    let lost = layer.lose_unsynced().unwrap();
    assert_eq!(lost.bytes, 12, "{lost:?}");
    assert_eq!(lost.entries, vec!["create /h", "create /f"]);
    assert!(!backing.join("f").exists());
    // What the cut took back is kept: the bytes `f` held from offset 0.
    let kept = dir.path().join("kept/cut-1");
    assert_eq!(lost.kept.as_deref(), Some(kept.as_path()));
    assert_eq!(
        std::fs::read(kept.join("f.from-0")).unwrap(),
        b"never synced"
    );
    let h = std::fs::read(kept.join("h.from-0")).unwrap();
    assert_eq!(h, b"synced, not its entry");
    let fault = FaultRequest {
        op: Some(Op::Write),
        errno: Some(Errno::ENOSPC),
        torn: false,
        path: Some("(".into()),
        probability: None,
        for_s: None,
    };
    let refused = layer.add_fault(&fault).unwrap_err();
    assert!(refused.contains("the test's layer"), "{refused}");
    let fault = FaultRequest {
        path: None,
        ..fault
    };
    layer.add_fault(&fault).unwrap();
    let e = std::fs::write(mount.join("g"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(28), "{e}");
    layer.clear_faults().unwrap();
    std::fs::write(mount.join("g"), b"kept").unwrap();
    let made_durable = layer.stop().unwrap();
    assert_eq!(made_durable.bytes, 4, "{made_durable:?}");
    assert!(!common::mounted(&mount));
    assert!(!mount.exists(), "the mount point it made is left");
    assert_eq!(std::fs::read(backing.join("g")).unwrap(), b"kept");
    assert!(!backing.join(".soakcheck-fs").exists());
}

/// What a cut takes back cannot be kept inside the mount (the layer would write through
/// itself) or its backing directory (the system would see it): refused, exit 2, before
/// anything is mounted or made.
#[test]
fn kept_bytes_inside_the_mount_or_its_backing_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mount, backing) = (dir.path().join("m"), dir.path().join("b"));
    std::fs::create_dir(&backing).unwrap();
    // Through a symlink or `..` too: where it really is counts.
    std::os::unix::fs::symlink(&mount, dir.path().join("link")).unwrap();
    let around = [dir.path().join("link/kept"), backing.join("../m/kept")];
    for keep in [mount.join("kept"), backing.join("kept")]
        .into_iter()
        .chain(around)
    {
        let out = common::soakcheck(&[
            "fs",
            mount.to_str().unwrap(),
            "--backing",
            backing.to_str().unwrap(),
            "--keep-lost",
            keep.to_str().unwrap(),
        ]);
        assert_refused(&out, "must be kept outside");
        assert!(!mount.exists() && !keep.exists());
    }
    // A place it cannot keep anything in is refused at the start, not at the first cut.
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let out = common::soakcheck(&[
        "fs",
        mount.to_str().unwrap(),
        "--backing",
        backing.to_str().unwrap(),
        "--keep-lost",
        dir.path().join("file/kept").to_str().unwrap(),
    ]);
    assert_refused(&out, "Not a directory");
}

/// `soakcheck fs` refused to start (exit 2), saying `why`.
fn assert_refused(out: &std::process::Output, why: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", common::text(out));
    assert!(common::text(out).contains(why), "{}", common::text(out));
}
