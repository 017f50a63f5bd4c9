//! The layer's operations on the backing directory, as the FUSE front calls them, each
//! recording in the [`Journal`] what a power cut must take back before it changes
//! anything; and the power cut, the checkpoint and the report of what is unsynced.
//!
//! Unlinked and replaced files are moved into the layer's trash (`.soakcheck-fs/trash`
//! in the backing directory, hidden from the mount) until their directory is fsynced,
//! so a power cut can put them back.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{Error, ErrorKind, Result};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::faults::{Faults, Op};
use super::journal::{EntryOp, FileUndo, Journal, Key, Undo};
use super::nodes::{relative, Nodes, ROOT};

/// The layer's own folder in the backing directory, hidden from the mount.
pub const HIDDEN: &str = ".soakcheck-fs";

/// An open file.
#[derive(Debug)]
struct Handle {
    file: File,
    ino: u64,
    append: bool,
}

/// What a power cut took back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lost {
    /// Bytes written or cut since each file's last fsync, by path.
    pub files: BTreeMap<String, u64>,
    pub bytes: u64,
    /// Entry operations undone, newest first, as "create /a", "unlink /b", "rename /c -> /d".
    pub entries: Vec<String>,
    /// Files whose last write a torn-write fault kept a prefix of, and how many bytes.
    pub torn: BTreeMap<String, usize>,
    /// Where this cut's taken-back bytes were kept (see [`Layer::keep_lost`]), when it
    /// took any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<PathBuf>,
}

/// What is not durable now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Unsynced {
    pub files: BTreeMap<String, u64>,
    pub bytes: u64,
    pub entries: Vec<String>,
}

/// The layer.
#[derive(Debug)]
pub struct Layer {
    pub nodes: Nodes,
    pub faults: Faults,
    journal: Journal,
    trash: PathBuf,
    next_trash: u64,
    /// Where each power cut keeps what it takes back (`cut-N/PATH.from-OFFSET`: the
    /// bytes PATH held from OFFSET to its end before the cut), so the evidence of a lost
    /// commit outlives the cut; None: nowhere.
    pub keep_lost: Option<PathBuf>,
    cuts: u64,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    /// Held while the layer lives: one layer per backing directory.
    _lock: nix::fcntl::Flock<File>,
}

/// Takes the backing directory for this layer (an exclusive lock on
/// `DIR/.soakcheck-fs/lock`): a second layer over it would empty the first one's trash
/// and undo its power cuts.
fn lock_backing(backing: &Path) -> Result<nix::fcntl::Flock<File>> {
    let path = backing.join(HIDDEN).join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        Error::new(
            ErrorKind::WouldBlock,
            format!(
                "{} is served by another soakcheck fs layer",
                backing.display()
            ),
        )
    })
}

fn errno(code: i32) -> Error {
    Error::from_raw_os_error(code)
}

impl Layer {
    /// A layer over `backing`, whose trash is emptied (what a layer that was stopped
    /// without a power cut kept there had been unlinked by the system).
    pub fn new(backing: &Path, seed: u64) -> Result<Layer> {
        let nodes = Nodes::new(backing)?;
        std::fs::create_dir_all(backing.join(HIDDEN))?;
        let lock = lock_backing(backing)?;
        let trash = backing.join(HIDDEN).join("trash");
        if trash.exists() {
            std::fs::remove_dir_all(&trash)?;
        }
        std::fs::create_dir_all(&trash)?;
        Ok(Layer {
            nodes,
            faults: Faults::new(seed),
            journal: Journal::default(),
            trash,
            next_trash: 0,
            keep_lost: None,
            cuts: 0,
            handles: HashMap::new(),
            next_fh: 1,
            _lock: lock,
        })
    }

    fn path(&self, ino: u64) -> Result<PathBuf> {
        self.nodes.path_of(ino).ok_or_else(|| errno(libc::ESTALE))
    }

    fn child(&self, dir: u64, name: &OsStr) -> Result<PathBuf> {
        if dir == ROOT && name == HIDDEN {
            return Err(errno(libc::ENOENT));
        }
        Ok(self.path(dir)?.join(name))
    }

    fn fault(&mut self, op: Op, path: &Path) -> Result<()> {
        let shown = relative(self.nodes.root(), path);
        match self.faults.errno(op, &shown) {
            Some(code) => Err(errno(code)),
            None => Ok(()),
        }
    }

    /// Looks `name` up in `dir`: its FUSE number and metadata.
    pub fn lookup(&mut self, dir: u64, name: &OsStr) -> Result<(u64, Metadata)> {
        let meta = std::fs::symlink_metadata(self.child(dir, name)?)?;
        let ino = self.nodes.fuse_ino(meta.ino());
        self.nodes.place(ino, dir, name);
        Ok((ino, meta))
    }

    pub fn getattr(&self, ino: u64) -> Result<Metadata> {
        if let Some(h) = self.handles.values().find(|h| h.ino == ino) {
            return h.file.metadata();
        }
        std::fs::symlink_metadata(self.path(ino)?)
    }

    /// Sets the length of `ino` (through `fh` when given), saving what a cut removes.
    pub fn truncate(&mut self, ino: u64, fh: Option<u64>, len: u64) -> Result<()> {
        let file = match fh.and_then(|fh| self.handles.get(&fh)) {
            Some(h) => h.file.try_clone()?,
            None => OpenOptions::new()
                .read(true)
                .write(true)
                .open(self.path(ino)?)?,
        };
        self.fault(Op::Write, &self.path(ino)?)?;
        let old = file.metadata()?.len();
        let undo = self.file_undo(ino, &file)?;
        undo.save(len, old)?;
        undo.unsynced += old.abs_diff(len);
        undo.last_write = None;
        file.set_len(len)
    }

    /// The undo of `ino`, begun now (its durable length is its length now) if it was
    /// synced.
    fn file_undo(&mut self, ino: u64, file: &File) -> Result<&mut FileUndo> {
        if !self.journal.files.contains_key(&ino) {
            let undo = FileUndo {
                file: file.try_clone()?,
                path: self.nodes.display(ino),
                durable_len: file.metadata()?.len(),
                saved: BTreeMap::new(),
                last_write: None,
                unsynced: 0,
            };
            self.journal.files.insert(ino, undo);
        }
        Ok(self.journal.files.get_mut(&ino).expect("inserted above"))
    }

    pub fn set_mode(&self, ino: u64, mode: u32) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.path(ino)?, std::fs::Permissions::from_mode(mode))
    }

    pub fn set_times(
        &self,
        ino: u64,
        atime: Option<std::time::SystemTime>,
        mtime: Option<std::time::SystemTime>,
    ) -> Result<()> {
        let file = File::open(self.path(ino)?)?;
        let mut times = std::fs::FileTimes::new();
        if let Some(a) = atime {
            times = times.set_accessed(a);
        }
        if let Some(m) = mtime {
            times = times.set_modified(m);
        }
        file.set_times(times)
    }

    fn open_backing(path: &Path, flags: i32, create: Option<u32>) -> Result<File> {
        let access = flags & libc::O_ACCMODE;
        let mut opts = OpenOptions::new();
        // Writable files are opened read-write: the layer reads their before-images.
        opts.read(true).write(access != libc::O_RDONLY);
        opts.custom_flags(flags & (libc::O_NOFOLLOW | libc::O_NONBLOCK));
        if let Some(mode) = create {
            opts.create_new(true).mode(mode);
        } else if flags & libc::O_TRUNC != 0 {
            opts.truncate(false);
        }
        opts.open(path)
    }

    fn add_handle(&mut self, file: File, ino: u64, flags: i32) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        let append = flags & libc::O_APPEND != 0;
        self.handles.insert(fh, Handle { file, ino, append });
        fh
    }

    /// Opens `ino`; a handle number.
    pub fn open(&mut self, ino: u64, flags: i32) -> Result<u64> {
        let path = self.path(ino)?;
        self.fault(Op::Open, &path)?;
        let file = Self::open_backing(&path, flags, None)?;
        if flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY {
            let fh = self.add_handle(file, ino, flags);
            self.truncate(ino, Some(fh), 0)?;
            return Ok(fh);
        }
        Ok(self.add_handle(file, ino, flags))
    }

    fn record(&mut self, writes: Vec<Key>, reads: Vec<Key>, undo: Undo) {
        self.journal.entries.push(EntryOp {
            writes,
            reads,
            undo,
        });
    }

    /// What an operation in `dir` reads: the entry of `dir` itself.
    fn dir_entry(&self, dir: u64) -> Vec<Key> {
        match self.nodes.place_of(dir) {
            Some(p) => vec![Key::Entry(p.dir, p.name.clone())],
            None => vec![],
        }
    }

    fn created(&mut self, dir: u64, name: &OsStr, meta: &Metadata) -> u64 {
        let ino = self.nodes.fuse_ino(meta.ino());
        self.nodes.place(ino, dir, name);
        let writes = vec![Key::Entry(dir, name.into()), Key::Within(dir)];
        let reads = self.dir_entry(dir);
        let undo = Undo::Remove {
            dir,
            name: name.into(),
            ino,
        };
        self.record(writes, reads, undo);
        ino
    }

    /// Creates and opens a file: its number, metadata and handle.
    pub fn create(
        &mut self,
        dir: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<(u64, Metadata, u64)> {
        let path = self.child(dir, name)?;
        self.fault(Op::Create, &path)?;
        let file = Self::open_backing(&path, flags, Some(mode))?;
        let meta = file.metadata()?;
        let ino = self.created(dir, name, &meta);
        // A new file's durable length is none at all.
        self.file_undo(ino, &file)?;
        let fh = self.add_handle(file, ino, flags);
        Ok((ino, meta, fh))
    }

    pub fn mkdir(&mut self, dir: u64, name: &OsStr, mode: u32) -> Result<(u64, Metadata)> {
        let path = self.child(dir, name)?;
        self.fault(Op::Create, &path)?;
        std::fs::DirBuilder::new().mode(mode).create(&path)?;
        let meta = std::fs::symlink_metadata(&path)?;
        Ok((self.created(dir, name, &meta), meta))
    }

    pub fn symlink(&mut self, dir: u64, name: &OsStr, target: &Path) -> Result<(u64, Metadata)> {
        let path = self.child(dir, name)?;
        self.fault(Op::Create, &path)?;
        std::os::unix::fs::symlink(target, &path)?;
        let meta = std::fs::symlink_metadata(&path)?;
        Ok((self.created(dir, name, &meta), meta))
    }

    pub fn link(&mut self, ino: u64, dir: u64, name: &OsStr) -> Result<(u64, Metadata)> {
        let path = self.child(dir, name)?;
        self.fault(Op::Create, &path)?;
        std::fs::hard_link(self.path(ino)?, &path)?;
        let meta = std::fs::symlink_metadata(&path)?;
        Ok((self.created(dir, name, &meta), meta))
    }

    fn trash_away(&mut self, path: &Path) -> Result<OsString> {
        let name = OsString::from(self.next_trash.to_string());
        self.next_trash += 1;
        std::fs::rename(path, self.trash.join(&name))?;
        Ok(name)
    }

    /// Unlinks a file, or removes an empty directory (`dir_too`), into the trash.
    pub fn remove(&mut self, dir: u64, name: &OsStr, dir_too: bool) -> Result<()> {
        let path = self.child(dir, name)?;
        let meta = std::fs::symlink_metadata(&path)?;
        let ino = self.nodes.fuse_ino(meta.ino());
        let mut reads = self.dir_entry(dir);
        match (dir_too, meta.is_dir()) {
            (false, true) => return Err(errno(libc::EISDIR)),
            (true, false) => return Err(errno(libc::ENOTDIR)),
            (true, true) if std::fs::read_dir(&path)?.next().is_some() => {
                return Err(errno(libc::ENOTEMPTY))
            }
            (true, true) => reads.push(Key::Within(ino)),
            (false, false) => {}
        }
        let trash = self.trash_away(&path)?;
        self.nodes.unplace(ino, dir, name);
        let writes = vec![Key::Entry(dir, name.into()), Key::Within(dir)];
        let name = name.into();
        let undo = Undo::Restore {
            dir,
            name,
            ino,
            trash,
        };
        self.record(writes, reads, undo);
        Ok(())
    }

    /// Renames `from` in `dir` to `to` in `new_dir`, moving what it replaces to the trash.
    pub fn rename(
        &mut self,
        dir: u64,
        from: &OsStr,
        new_dir: u64,
        to: &OsStr,
        flags: u32,
    ) -> Result<()> {
        let src = self.child(dir, from)?;
        let dst = self.child(new_dir, to)?;
        self.fault(Op::Rename, &src)?;
        if flags & !libc::RENAME_NOREPLACE != 0 {
            return Err(errno(libc::EINVAL));
        }
        let meta = std::fs::symlink_metadata(&src)?;
        let ino = self.nodes.fuse_ino(meta.ino());
        if src == dst {
            return Ok(());
        }
        let replaced = match std::fs::symlink_metadata(&dst) {
            Ok(_) if flags & libc::RENAME_NOREPLACE != 0 => return Err(errno(libc::EEXIST)),
            Ok(old) => {
                check_replace(&meta, &old, &dst)?;
                let rino = self.nodes.fuse_ino(old.ino());
                let trash = self.trash_away(&dst)?;
                self.nodes.unplace(rino, new_dir, to);
                Some((rino, trash))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if let Err(e) = std::fs::rename(&src, &dst) {
            if let Some((_, trash)) = &replaced {
                let _ = std::fs::rename(self.trash.join(trash), &dst);
            }
            return Err(e);
        }
        self.nodes.place(ino, new_dir, to);
        let mut writes = vec![Key::Entry(dir, from.into()), Key::Within(dir)];
        writes.extend([Key::Entry(new_dir, to.into()), Key::Within(new_dir)]);
        let mut reads = self.dir_entry(dir);
        reads.extend(self.dir_entry(new_dir));
        let undo = Undo::RenameBack {
            from: (dir, from.into()),
            to: (new_dir, to.into()),
            ino,
            replaced,
        };
        self.record(writes, reads, undo);
        Ok(())
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let h = self.handles.get(&fh).ok_or_else(|| errno(libc::EBADF))?;
        let mut buf = vec![0; size as usize];
        let mut n = 0;
        while n < buf.len() {
            match h.file.read_at(&mut buf[n..], offset + n as u64)? {
                0 => break,
                k => n += k,
            }
        }
        buf.truncate(n);
        Ok(buf)
    }

    /// Writes `data` at `offset` (at the end for an append handle), saving first what
    /// it overwrites of the durable bytes.
    pub fn write(&mut self, fh: u64, offset: u64, data: &[u8]) -> Result<usize> {
        let h = self.handles.get(&fh).ok_or_else(|| errno(libc::EBADF))?;
        let (ino, append, file) = (h.ino, h.append, h.file.try_clone()?);
        if !self.faults_empty() {
            self.fault(Op::Write, &self.path(ino)?)?;
        }
        let at = if append {
            file.metadata()?.len()
        } else {
            offset
        };
        let undo = self.file_undo(ino, &file)?;
        undo.save(at, at + data.len() as u64)?;
        undo.unsynced += data.len() as u64;
        undo.last_write = Some((at, data.len()));
        file.write_all_at(data, at)?;
        Ok(data.len())
    }

    fn faults_empty(&mut self) -> bool {
        self.faults.active() == 0
    }

    /// fsync or fdatasync of a file: what was written to it is durable.
    pub fn fsync(&mut self, ino: u64, fh: Option<u64>, datasync: bool) -> Result<()> {
        if !self.faults_empty() {
            self.fault(Op::Fsync, &self.path(ino)?)?;
        }
        let file = match fh.and_then(|fh| self.handles.get(&fh)) {
            Some(h) => h.file.try_clone()?,
            None => File::open(self.path(ino)?)?,
        };
        if datasync {
            file.sync_data()?;
        } else {
            file.sync_all()?;
        }
        self.journal.files.remove(&ino);
        Ok(())
    }

    /// fsync of a directory: its entry operations (and what they depend on) are durable.
    pub fn fsyncdir(&mut self, ino: u64) -> Result<()> {
        let path = self.path(ino)?;
        if !self.faults_empty() {
            self.fault(Op::Fsync, &path)?;
        }
        File::open(&path)?.sync_all()?;
        for op in self.journal.commit_dir(ino) {
            self.forget_trash(&op.undo);
        }
        Ok(())
    }

    fn forget_trash(&self, undo: &Undo) {
        let trash = match undo {
            Undo::Restore { trash, .. } => trash,
            Undo::RenameBack {
                replaced: Some((_, trash)),
                ..
            } => trash,
            _ => return,
        };
        let path = self.trash.join(trash);
        let _ = std::fs::remove_dir(&path).or_else(|_| std::fs::remove_file(&path));
    }

    pub fn release(&mut self, fh: u64) {
        self.handles.remove(&fh);
    }

    /// The entries of `ino`: FUSE number, metadata and name of each (the layer's own
    /// folder hidden).
    pub fn readdir(&mut self, ino: u64) -> Result<Vec<(u64, Metadata, OsString)>> {
        let path = self.path(ino)?;
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            let name = entry.file_name();
            if ino == ROOT && name == HIDDEN {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let child = self.nodes.fuse_ino(meta.ino());
            self.nodes.place(child, ino, &name);
            out.push((child, meta, name));
        }
        Ok(out)
    }

    pub fn readlink(&self, ino: u64) -> Result<PathBuf> {
        std::fs::read_link(self.path(ino)?)
    }

    /// Keeps what each cut takes back in `dir` (see [`Layer::keep_lost`]), numbering the
    /// cuts on from those an earlier layer kept there, so none is overwritten.
    pub fn keep_lost_in(&mut self, dir: PathBuf) {
        let numbers = std::fs::read_dir(&dir).into_iter().flatten().flatten();
        self.cuts = numbers
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("cut-")?.parse().ok())
            .max()
            .unwrap_or(0);
        self.keep_lost = Some(dir);
    }

    /// The power cut: every write and entry operation not durable is taken back.
    pub fn lose_unsynced(&mut self) -> Result<Lost> {
        let mut lost = Lost::default();
        self.cuts += 1;
        if let Some(keep) = &self.keep_lost {
            let dir = keep.join(format!("cut-{}", self.cuts));
            lost.kept = self.keep_taken_back(&dir)?.then_some(dir);
        }
        let faults = &mut self.faults;
        for undo in self.journal.files.values() {
            let keep = undo
                .last_write
                .as_ref()
                .and_then(|&(_, len)| faults.torn(&undo.path, len));
            lost.bytes += undo.restore(keep)?;
            *lost.files.entry(undo.path.clone()).or_default() += undo.unsynced;
            if let Some(k) = keep {
                lost.torn.insert(undo.path.clone(), k);
            }
        }
        self.journal.files.clear();
        for op in std::mem::take(&mut self.journal.entries).into_iter().rev() {
            lost.entries.push(self.describe(&op.undo));
            self.undo(op.undo)?;
        }
        Ok(lost)
    }

    /// Keeps in `dir` what the cut is about to take back: each file it removes (created
    /// since its directory's last fsync) whole, as `PATH.from-0`, and each other file's
    /// changed tail; whether it kept anything.
    fn keep_taken_back(&self, dir: &Path) -> Result<bool> {
        let mut whole = std::collections::HashSet::new();
        let mut kept = false;
        for op in &self.journal.entries {
            let Undo::Remove { ino, .. } = op.undo else {
                continue;
            };
            let Some(path) = self.nodes.path_of(ino).filter(|p| p.is_file()) else {
                continue;
            };
            let bytes = std::fs::read(&path)?;
            whole.insert(ino);
            if !bytes.is_empty() {
                let name = relative(self.nodes.root(), &path);
                let to = dir.join(format!("{}.from-0", name.trim_start_matches('/')));
                std::fs::create_dir_all(to.parent().unwrap_or(dir))?;
                std::fs::write(to, bytes)?;
                kept = true;
            }
        }
        Ok(self.journal.keep_taken_back(dir, &whole)? | kept)
    }

    fn describe(&self, undo: &Undo) -> String {
        let at = |d: u64, n: &OsStr| match self.nodes.child_path(d, n) {
            Some(p) => relative(self.nodes.root(), &p),
            None => format!("?/{}", n.to_string_lossy()),
        };
        match undo {
            Undo::Remove { dir, name, .. } => format!("create {}", at(*dir, name)),
            Undo::Restore { dir, name, .. } => format!("unlink {}", at(*dir, name)),
            Undo::RenameBack { from, to, .. } => {
                format!("rename {} -> {}", at(from.0, &from.1), at(to.0, &to.1))
            }
        }
    }

    fn undo(&mut self, undo: Undo) -> Result<()> {
        match undo {
            Undo::Remove { dir, name, ino } => {
                let path = self.path(dir)?.join(&name);
                std::fs::remove_dir(&path).or_else(|_| std::fs::remove_file(&path))?;
                self.nodes.unplace(ino, dir, &name);
            }
            Undo::Restore {
                dir,
                name,
                ino,
                trash,
            } => {
                std::fs::rename(self.trash.join(trash), self.path(dir)?.join(&name))?;
                self.nodes.place(ino, dir, &name);
            }
            Undo::RenameBack {
                from,
                to,
                ino,
                replaced,
            } => {
                let dst = self.path(to.0)?.join(&to.1);
                std::fs::rename(&dst, self.path(from.0)?.join(&from.1))?;
                self.nodes.place(ino, from.0, &from.1);
                if let Some((rino, trash)) = replaced {
                    std::fs::rename(self.trash.join(trash), &dst)?;
                    self.nodes.place(rino, to.0, &to.1);
                }
            }
        }
        Ok(())
    }

    /// Everything durable without a power cut (each written file and the backing
    /// directory's folders synced for real, the trash emptied).
    pub fn checkpoint(&mut self) -> Result<Unsynced> {
        let was = self.unsynced();
        for undo in self.journal.files.values() {
            undo.file.sync_all()?;
        }
        self.journal.files.clear();
        let dirs: Vec<u64> = self.journal.entries.iter().flat_map(written_dirs).collect();
        for op in std::mem::take(&mut self.journal.entries) {
            self.forget_trash(&op.undo);
        }
        for dir in dirs {
            if let Some(path) = self.nodes.path_of(dir) {
                let _ = File::open(path).and_then(|f| f.sync_all());
            }
        }
        Ok(was)
    }

    /// What is not durable now.
    pub fn unsynced(&self) -> Unsynced {
        let mut out = Unsynced::default();
        for undo in self.journal.files.values() {
            *out.files.entry(undo.path.clone()).or_default() += undo.unsynced;
            out.bytes += undo.unsynced;
        }
        out.entries = self
            .journal
            .entries
            .iter()
            .map(|op| self.describe(&op.undo))
            .collect();
        out
    }
}

fn written_dirs(op: &EntryOp) -> Vec<u64> {
    op.writes
        .iter()
        .filter_map(|k| match k {
            Key::Within(d) => Some(*d),
            Key::Entry(..) => None,
        })
        .collect()
}

/// rename(2)'s checks on what it replaces, made before the replaced entry is moved.
fn check_replace(src: &Metadata, old: &Metadata, dst: &Path) -> Result<()> {
    match (src.is_dir(), old.is_dir()) {
        (true, false) => Err(errno(libc::ENOTDIR)),
        (false, true) => Err(errno(libc::EISDIR)),
        (true, true) if std::fs::read_dir(dst)?.next().is_some() => Err(errno(libc::ENOTEMPTY)),
        _ => Ok(()),
    }
}
