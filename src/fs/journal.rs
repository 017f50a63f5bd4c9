//! What a power cut takes back: for each file written since its last fsync, its length
//! then and the bytes each later write or truncate overwrote (its before-images); and
//! each entry operation (create, rename, unlink, mkdir, rmdir, link) since the
//! directories it touched were last fsynced.
//!
//! The backing directory always holds what the system sees; the journal holds the undo
//! of what is not durable. A power cut writes every before-image back, cuts each file to
//! its durable length, and undoes the pending entry operations newest first, so the
//! backing directory then holds exactly what was durable.
//!
//! Durability of entries: an fsync of directory D makes durable every pending operation
//! that changed an entry of D, and with it every earlier operation it depends on (one
//! that wrote an entry it reads or writes: the mkdir of the directory a file was
//! created in, the unlinks that emptied a directory before its rmdir). Undoing the
//! rest newest first is then always possible: no durable operation touched what an
//! undone one changed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// An entry (a name in a directory), or every entry of a directory (what rmdir reads).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Entry(u64, OsString),
    Within(u64),
}

/// How to undo one entry operation. Directories are FUSE numbers, resolved to paths
/// when undone; `trash` names a file kept in the layer's trash instead of deleted.
#[derive(Debug, Clone, PartialEq)]
pub enum Undo {
    /// Remove what was created (a file, a link or an empty directory).
    Remove { dir: u64, name: OsString, ino: u64 },
    /// Put back what was unlinked or removed.
    Restore {
        dir: u64,
        name: OsString,
        ino: u64,
        trash: OsString,
    },
    /// Rename back, and put back what the rename replaced.
    RenameBack {
        from: (u64, OsString),
        to: (u64, OsString),
        ino: u64,
        replaced: Option<(u64, OsString)>,
    },
}

/// One pending entry operation.
#[derive(Debug, Clone)]
pub struct EntryOp {
    /// The entries it changed (each `Entry`, and `Within` of each directory changed).
    pub writes: Vec<Key>,
    /// What it needed (the entry of the directory it worked in; `Within` for rmdir).
    pub reads: Vec<Key>,
    pub undo: Undo,
}

impl EntryOp {
    /// Whether it changed an entry of directory `dir`.
    fn touches(&self, dir: u64) -> bool {
        self.writes
            .iter()
            .any(|k| matches!(k, Key::Entry(d, _) if *d == dir))
    }
}

/// A file's undo since its last fsync.
#[derive(Debug)]
pub struct FileUndo {
    /// The backing file (kept open: its name may change or go).
    pub file: File,
    /// Its path when first written, for people.
    pub path: String,
    /// Its length at its last fsync.
    pub durable_len: u64,
    /// Before-images of the durable bytes overwritten since, by offset, disjoint.
    pub saved: BTreeMap<u64, Vec<u8>>,
    /// The last write: where and how long (a torn power cut keeps a prefix of it, read
    /// back from the file, where it is still the last thing written there).
    pub last_write: Option<(u64, usize)>,
    /// Bytes written or cut since the last fsync.
    pub unsynced: u64,
}

impl FileUndo {
    /// Saves the before-images of `[start, end)` within the durable length that are not
    /// saved yet (the backing file still holds those bytes as they were durable).
    pub fn save(&mut self, start: u64, end: u64) -> std::io::Result<()> {
        let end = end.min(self.durable_len);
        let mut at = start;
        while at < end {
            let covering = self.saved.range(..=at).next_back();
            if let Some((&s, image)) = covering {
                if s + image.len() as u64 > at {
                    at = s + image.len() as u64;
                    continue;
                }
            }
            let next = self.saved.range(at..).next().map_or(end, |(&s, _)| s);
            let upto = next.min(end);
            let mut image = vec![0; (upto - at) as usize];
            let n = read_full(&self.file, &mut image, at)?;
            image.truncate(n);
            if n == 0 {
                break;
            }
            self.saved.insert(at, image);
            at += n as u64;
        }
        Ok(())
    }

    /// Where the bytes a power cut changes begin: the first overwritten durable byte,
    /// else the durable length.
    pub fn first_changed(&self) -> u64 {
        self.saved
            .keys()
            .next()
            .map_or(self.durable_len, |&s| s.min(self.durable_len))
    }

    /// Copies what the file holds from [`FileUndo::first_changed`] to its end (what a
    /// cut takes back) to `dir/PATH.from-OFFSET`; whether there was any.
    pub fn keep_taken_back(&self, dir: &Path) -> std::io::Result<bool> {
        let from = self.first_changed();
        let len = self.file.metadata()?.len();
        if len <= from {
            // Nothing the cut takes back is there (a truncate's undo puts bytes back).
            return Ok(false);
        }
        let mut bytes = vec![0; len.saturating_sub(from) as usize];
        let n = read_full(&self.file, &mut bytes, from)?;
        bytes.truncate(n);
        let name = format!("{}.from-{from}", self.path.trim_start_matches('/'));
        let to = dir.join(name);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(to, bytes)?;
        Ok(true)
    }

    /// Puts the durable content back; returns the bytes that differed from it. A torn
    /// cut (`keep` bytes of the last write) falls inside the last write: what was
    /// written before that point stays as written, the rest is as it was durable.
    pub fn restore(&self, keep: Option<usize>) -> std::io::Result<u64> {
        let cut = match (keep, self.last_write) {
            (Some(keep), Some((at, len))) => at + keep.min(len) as u64,
            _ => 0,
        };
        for (&at, image) in &self.saved {
            let end = at + image.len() as u64;
            if end > cut {
                let from = at.max(cut);
                self.file
                    .write_all_at(&image[(from - at) as usize..], from)?;
            }
        }
        let len = self.file.metadata()?.len();
        self.file.set_len(self.durable_len.max(cut.min(len)))?;
        Ok(self.unsynced)
    }
}

fn read_full(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], at + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The whole journal.
#[derive(Debug, Default)]
pub struct Journal {
    pub files: HashMap<u64, FileUndo>,
    pub entries: Vec<EntryOp>,
}

impl Journal {
    /// Keeps, in `dir`, what a power cut is about to take back from each file (see
    /// [`FileUndo::keep_taken_back`]); whether it kept anything.
    /// `whole`: the files kept whole already (the cut removes them), skipped here.
    pub fn keep_taken_back(&self, dir: &Path, whole: &HashSet<u64>) -> std::io::Result<bool> {
        let mut kept = false;
        for (ino, undo) in &self.files {
            if !whole.contains(ino) {
                kept |= undo.keep_taken_back(dir)?;
            }
        }
        Ok(kept)
    }

    /// Pending operations made durable by an fsync of `dir`, and every earlier one they
    /// depend on: removed from the journal and returned, oldest first.
    pub fn commit_dir(&mut self, dir: u64) -> Vec<EntryOp> {
        let mut needed: HashSet<Key> = HashSet::new();
        let mut commit = vec![false; self.entries.len()];
        for (i, op) in self.entries.iter().enumerate().rev() {
            let depended = op.writes.iter().any(|k| needed.contains(k));
            if op.touches(dir) || depended {
                commit[i] = true;
                needed.extend(op.reads.iter().cloned());
                needed.extend(
                    op.writes
                        .iter()
                        .filter(|k| matches!(k, Key::Entry(..)))
                        .cloned(),
                );
            }
        }
        let mut committed = Vec::new();
        let mut kept = Vec::new();
        for (op, c) in std::mem::take(&mut self.entries).into_iter().zip(commit) {
            if c {
                committed.push(op);
            } else {
                kept.push(op);
            }
        }
        self.entries = kept;
        committed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(writes: Vec<Key>, reads: Vec<Key>) -> EntryOp {
        let undo = Undo::Remove {
            dir: 1,
            name: "x".into(),
            ino: 2,
        };
        EntryOp {
            writes,
            reads,
            undo,
        }
    }

    fn entry(d: u64, n: &str) -> Key {
        Key::Entry(d, n.into())
    }

    #[test]
    fn a_directory_fsync_takes_what_its_entries_depend_on_and_nothing_else() {
        let mut j = Journal::default();
        // mkdir /a (dir 10), create /a/x, create /y, rmdir-free unlink /a/z.
        j.entries
            .push(op(vec![entry(1, "a"), Key::Within(1)], vec![]));
        j.entries.push(op(
            vec![entry(10, "x"), Key::Within(10)],
            vec![entry(1, "a")],
        ));
        j.entries
            .push(op(vec![entry(1, "y"), Key::Within(1)], vec![]));
        j.entries.push(op(
            vec![entry(10, "z"), Key::Within(10)],
            vec![entry(1, "a")],
        ));
        let committed = j.commit_dir(10);
        assert_eq!(
            committed.len(),
            3,
            "a/x, a/z and the mkdir of a: {committed:?}"
        );
        assert_eq!(j.entries.len(), 1);
        assert_eq!(j.entries[0].writes[0], entry(1, "y"));
    }

    #[test]
    fn an_rmdir_takes_the_unlinks_that_emptied_it() {
        let mut j = Journal::default();
        j.entries.push(op(
            vec![entry(10, "x"), Key::Within(10)],
            vec![entry(1, "a")],
        ));
        j.entries.push(op(
            vec![entry(1, "a"), Key::Within(1)],
            vec![Key::Within(10)],
        ));
        assert_eq!(j.commit_dir(1).len(), 2);
    }

    #[test]
    fn before_images_are_saved_once_and_only_within_the_durable_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut undo = FileUndo {
            file,
            path: "/f".into(),
            durable_len: 10,
            saved: BTreeMap::new(),
            last_write: None,
            unsynced: 0,
        };
        undo.save(2, 4).unwrap();
        undo.file.write_all_at(b"ab", 2).unwrap();
        undo.save(0, 6).unwrap();
        undo.file.write_all_at(b"ABCDEF", 0).unwrap();
        undo.save(8, 20).unwrap();
        undo.file.set_len(8).unwrap();
        undo.file.write_all_at(b"tail-after-cut", 8).unwrap();
        // 0..6 and 8..10 were overwritten or cut; 6..8 never were.
        assert_eq!(undo.saved.values().map(Vec::len).sum::<usize>(), 8);
        undo.restore(None).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");
    }
}
