//! The layer's inode table: each inode the kernel knows, by its FUSE number, with the
//! directory it is in and its name there, so its backing path can always be built,
//! whatever was renamed above it.
//!
//! FUSE numbers are the backing file's own inode numbers, so a file keeps its number
//! across renames and a power cut that puts an entry back finds the same inode. The
//! root is FUSE number 1; a backing file whose own number is 1 takes the root's.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// FUSE's number for the root directory.
pub const ROOT: u64 = 1;

/// Where an inode is: its directory and its name there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub dir: u64,
    pub name: OsString,
}

/// The table, and the backing root it builds paths under.
#[derive(Debug)]
pub struct Nodes {
    root: PathBuf,
    root_ino: u64,
    places: HashMap<u64, Place>,
}

impl Nodes {
    /// A table of `root` (the backing directory), knowing only the root.
    pub fn new(root: &Path) -> std::io::Result<Nodes> {
        let root_ino = std::fs::metadata(root)?.ino();
        Ok(Nodes {
            root: root.to_path_buf(),
            root_ino,
            places: HashMap::new(),
        })
    }

    /// The backing directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The FUSE number of a backing inode number.
    pub fn fuse_ino(&self, backing: u64) -> u64 {
        if backing == self.root_ino {
            ROOT
        } else if backing == ROOT {
            self.root_ino
        } else {
            backing
        }
    }

    /// Records that `ino` is `name` in `dir`.
    pub fn place(&mut self, ino: u64, dir: u64, name: &OsStr) {
        if ino != ROOT {
            let name = name.to_os_string();
            self.places.insert(ino, Place { dir, name });
        }
    }

    /// Where `ino` is, when the table knows it.
    pub fn place_of(&self, ino: u64) -> Option<&Place> {
        self.places.get(&ino)
    }

    /// Forgets `ino` when it is still `name` in `dir` (it was unlinked or undone).
    pub fn unplace(&mut self, ino: u64, dir: u64, name: &OsStr) {
        if self
            .places
            .get(&ino)
            .is_some_and(|p| p.dir == dir && p.name == name)
        {
            self.places.remove(&ino);
        }
    }

    /// Every inode the table knows, with where it is.
    pub fn known(&self) -> Vec<(u64, Option<(u64, OsString)>)> {
        let places = self.places.iter();
        let known = places.map(|(ino, p)| (*ino, Some((p.dir, p.name.clone()))));
        std::iter::once((ROOT, None)).chain(known).collect()
    }

    /// The backing path of `ino` (None for an inode the table does not know, or one
    /// whose directory chain is broken).
    pub fn path_of(&self, ino: u64) -> Option<PathBuf> {
        let mut names = Vec::new();
        let mut at = ino;
        while at != ROOT {
            let place = self.places.get(&at)?;
            names.push(place.name.as_os_str());
            at = place.dir;
            if names.len() > 4096 {
                return None;
            }
        }
        let mut path = self.root.clone();
        path.extend(names.iter().rev());
        Some(path)
    }

    /// The backing path of `name` in `dir`.
    pub fn child_path(&self, dir: u64, name: &OsStr) -> Option<PathBuf> {
        self.path_of(dir).map(|p| p.join(name))
    }

    /// The path of `ino` relative to the backing root, for people (`?` when unknown).
    pub fn display(&self, ino: u64) -> String {
        match self.path_of(ino) {
            Some(p) => relative(&self.root, &p),
            None => format!("?inode-{ino}"),
        }
    }
}

/// `path` under `root`, as the mount shows it ("/" for the root itself).
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    format!("/{}", rel.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_follows_every_rename_above_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Nodes::new(dir.path()).unwrap();
        nodes.place(10, ROOT, OsStr::new("a"));
        nodes.place(11, 10, OsStr::new("x"));
        assert_eq!(nodes.path_of(11).unwrap(), dir.path().join("a/x"));
        nodes.place(10, ROOT, OsStr::new("b"));
        assert_eq!(nodes.path_of(11).unwrap(), dir.path().join("b/x"));
        assert_eq!(nodes.display(11), "/b/x");
        nodes.unplace(10, ROOT, OsStr::new("a"));
        assert!(nodes.path_of(11).is_some(), "a stale name forgets nothing");
        nodes.unplace(10, ROOT, OsStr::new("b"));
        assert_eq!(nodes.path_of(11), None);
    }
}
