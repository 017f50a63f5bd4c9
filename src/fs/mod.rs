//! `soakcheck fs`: a passthrough FUSE filesystem that forgets what was never fsynced,
//! for power-loss and disk faults.
//!
//! How it works: the mount shows the backing directory as it is; every write and entry
//! operation goes through to it at once, and the [`journal`] keeps what a power cut must
//! take back (before-images of overwritten bytes, each file's length at its last
//! fsync, the undo of each entry operation since its directory's last fsync). The
//! control interface ([`control`]) cuts the power (`POST /lose-unsynced`): the backing
//! directory then holds exactly what was durable, and the kernel's caches of the mount
//! are dropped. Errno faults and torn writes come from [`faults`].
//!
//! The kernel talks to the layer through `fuser` without libfuse: as root it mounts
//! through `/dev/fuse` with mount(2). On SIGINT or SIGTERM the layer makes everything
//! durable (a shutdown is not a power cut), unmounts (lazily when a file is still open)
//! and removes its own folder from the backing directory.

pub mod control;
pub mod faults;
mod fuse;
pub mod journal;
pub mod layer;
pub mod nodes;
pub mod piped;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use layer::{Layer, Unsynced, HIDDEN};

/// What `soakcheck fs` serves.
#[derive(Debug, Clone)]
pub struct FsConfig {
    pub mount: PathBuf,
    pub backing: PathBuf,
    pub control: Option<SocketAddr>,
    pub seed: u64,
    /// Where each power cut keeps what it takes back ([`Layer::keep_lost`]).
    pub keep_lost: Option<PathBuf>,
}

/// Why the layer could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("the backing directory {path}: {source}")]
    Backing {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{mount} cannot be mounted over {backing}: one is inside the other")]
    Nested { mount: PathBuf, backing: PathBuf },
    #[error(
        "--keep-lost {keep} is inside {inside}: what a cut takes back must be kept outside \
         the mount and its backing directory"
    )]
    KeepInside { keep: PathBuf, inside: PathBuf },
    #[error("--keep-lost {path}: {source}")]
    KeepLost {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mounting {path} (FUSE needs /dev/fuse and root): {source}")]
    Mount {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} cannot be the mount point: {why}")]
    MountPoint { path: PathBuf, why: String },
    #[error("the control interface on {addr}: {source}")]
    Control {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("unmounting {path}: {source}")]
    Unmount {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A mounted layer.
pub struct Mounted {
    session: Option<fuser::BackgroundSession>,
    mount: PathBuf,
    backing: PathBuf,
    layer: Arc<Mutex<Layer>>,
    _runtime: tokio::runtime::Runtime,
    /// Whether the layer made its mount point (removed again when it unmounts).
    made_mount_point: bool,
    /// Where the control interface listens, when asked for.
    pub control: Option<SocketAddr>,
}

fn canonical(path: &Path) -> Result<PathBuf, FsError> {
    let backing = |source| FsError::Backing {
        path: path.to_path_buf(),
        source,
    };
    let found = std::fs::canonicalize(path).map_err(backing)?;
    if !found.is_dir() {
        return Err(backing(std::io::Error::from_raw_os_error(libc::ENOTDIR)));
    }
    Ok(found)
}

/// Refuses a mount point inside the backing directory or around it, and kept bytes
/// inside either.
fn check_places(cfg: &FsConfig, backing: &Path) -> Result<(), FsError> {
    let mount_err = |source| FsError::Mount {
        path: cfg.mount.clone(),
        source,
    };
    let planned = std::path::absolute(&cfg.mount).map_err(mount_err)?;
    if planned.starts_with(backing) || backing.starts_with(&planned) {
        return Err(FsError::Nested {
            mount: planned,
            backing: backing.to_path_buf(),
        });
    }
    if let Some(keep) = &cfg.keep_lost {
        // Where it really is (through symlinks and `..`): the layer writing into its own
        // mount would wait on itself forever.
        let real = resolve(keep);
        let inside = [resolve(&planned), backing.to_path_buf()]
            .into_iter()
            .find(|d| real.starts_with(d));
        if let Some(inside) = inside {
            let keep = keep.clone();
            return Err(FsError::KeepInside { keep, inside });
        }
        std::fs::create_dir_all(keep).map_err(|source| FsError::KeepLost {
            path: keep.clone(),
            source,
        })?;
    }
    Ok(())
}

/// `path` made absolute with every symlink (dangling ones too) and `..` resolved, as
/// far as it exists (the rest taken as written).
fn resolve(path: &Path) -> PathBuf {
    resolve_within(path, 40)
}

fn resolve_within(path: &Path, links_left: u32) -> PathBuf {
    let mut out = PathBuf::new();
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    for part in absolute.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => {
                out.push(other);
                if let Ok(real) = std::fs::canonicalize(&out) {
                    out = real;
                } else if let (Ok(target), true) = (std::fs::read_link(&out), links_left > 0) {
                    // A dangling symlink: where it points, once something is made there.
                    out.pop();
                    out = resolve_within(&out.join(target), links_left - 1);
                }
            }
        }
    }
    out
}

/// Makes the mount point when missing (and says so), or takes an existing one that is
/// an empty folder of its own: not inside or around the backing directory, not another
/// mount (a layer over a layer), nothing in it that the mount would hide.
fn mount_point(cfg: &FsConfig, backing: &Path) -> Result<(PathBuf, bool), FsError> {
    let refused = |why: &str| FsError::MountPoint {
        path: cfg.mount.clone(),
        why: why.to_string(),
    };
    let mount_err = |source| FsError::Mount {
        path: cfg.mount.clone(),
        source,
    };
    if let Err(e) = std::fs::metadata(&cfg.mount) {
        if e.raw_os_error() == Some(libc::ENOTCONN) {
            return Err(refused(
                "a dead mount is there (its layer was killed): `umount -l` it, or `soakcheck \
                 reset --run-dir RUN_DIR` for a run's",
            ));
        }
    }
    let made = !cfg.mount.exists();
    std::fs::create_dir_all(&cfg.mount).map_err(mount_err)?;
    let mount = std::fs::canonicalize(&cfg.mount).map_err(mount_err)?;
    if mount.starts_with(backing) || backing.starts_with(&mount) {
        if made {
            let _ = std::fs::remove_dir(&mount);
        }
        let backing = backing.to_path_buf();
        return Err(FsError::Nested { mount, backing });
    }
    if made {
        return Ok((mount, true));
    }
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).map_err(mount_err);
    let parent = mount.parent().unwrap_or(Path::new("/"));
    if dev(&mount)? != dev(parent)? {
        return Err(refused("it is a mount point already (another layer's?)"));
    }
    if std::fs::read_dir(&mount)
        .map_err(mount_err)?
        .next()
        .is_some()
    {
        return Err(refused(
            "it is not empty, and the mount would hide what is in it",
        ));
    }
    Ok((mount, false))
}

/// The mount's options: named `soakcheck-fs`, the kernel checks permissions, every
/// user may use it (the system under test need not run as root).
fn fuse_config() -> fuser::Config {
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("soakcheck-fs".into()),
        fuser::MountOption::DefaultPermissions,
    ];
    config.acl = fuser::SessionACL::All;
    config
}

impl Mounted {
    /// Mounts `cfg.mount` over `cfg.backing` (creating the mount point when missing) and
    /// serves the control interface.
    pub fn start(cfg: &FsConfig) -> Result<Mounted, FsError> {
        let backing = canonical(&cfg.backing)?;
        let mount_err = |source| FsError::Mount {
            path: cfg.mount.clone(),
            source,
        };
        // Checked before the mount point is made: a refused mount leaves nothing behind.
        check_places(cfg, &backing)?;
        // The lock first: a second layer over this backing stops here, having made nothing.
        let mut layer = Layer::new(&backing, cfg.seed).map_err(|source| FsError::Backing {
            path: backing.clone(),
            source,
        })?;
        if let Some(dir) = &cfg.keep_lost {
            layer.keep_lost_in(dir.clone());
        }
        let (mount, made_mount_point) = mount_point(cfg, &backing).inspect_err(|_| {
            remove_own_folder(&backing);
        })?;
        let layer = Arc::new(Mutex::new(layer));
        let config = fuse_config();
        let front = fuse::Front(Arc::clone(&layer));
        let session = fuser::spawn_mount(front, &mount, &config)
            .map_err(mount_err)
            .inspect_err(|_| {
                remove_own_folder(&backing);
                if made_mount_point {
                    let _ = std::fs::remove_dir(&mount);
                }
            })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(mount_err)?;
        let mut mounted = Mounted {
            control: None,
            layer: Arc::clone(&layer),
            mount,
            backing,
            _runtime: runtime,
            session: None,
            made_mount_point,
        };
        let notifier = Some(session.notifier());
        mounted.session = Some(session);
        if let Some(addr) = cfg.control {
            let control = control::Control { layer, notifier };
            let bound = control::serve(control, addr, &mounted._runtime)
                .map_err(|source| FsError::Control { addr, source })?;
            mounted.control = Some(bound);
        }
        Ok(mounted)
    }

    /// Where it is mounted.
    pub fn mount(&self) -> &Path {
        &self.mount
    }

    fn layer(&self) -> std::sync::MutexGuard<'_, Layer> {
        self.layer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The power cut: what was never fsynced is taken back (`POST /lose-unsynced`).
    pub fn lose_unsynced(&self) -> std::io::Result<layer::Lost> {
        let notifier = self.session.as_ref().map(|s| s.notifier());
        control::cut(&self.layer, notifier.as_ref())
    }

    /// Makes everything durable without a power cut (`POST /checkpoint`); returns what
    /// was not.
    pub fn checkpoint(&self) -> std::io::Result<Unsynced> {
        self.layer().checkpoint()
    }

    /// What is not durable now (`GET /unsynced`).
    pub fn unsynced(&self) -> Unsynced {
        self.layer().unsynced()
    }

    /// Adds a disk fault (`POST /faults`); an error says what is wrong with it.
    pub fn add_fault(&self, fault: &faults::FaultRequest) -> Result<(), String> {
        self.layer().faults.add(fault)
    }

    /// Removes every disk fault (`DELETE /faults`).
    pub fn clear_faults(&self) {
        self.layer().faults.clear();
    }

    /// Makes everything durable, unmounts (lazily when a file is still open, so no dead
    /// mount is left) and removes the layer's folder; returns what was not durable.
    pub fn stop(mut self) -> Result<Unsynced, FsError> {
        let was = self
            .layer()
            .checkpoint()
            .map_err(|source| FsError::Backing {
                path: self.backing.clone(),
                source,
            })?;
        if let Some(session) = self.session.take() {
            if session.umount_and_join().is_err() {
                lazy_unmount(&self.mount).map_err(|source| FsError::Unmount {
                    path: self.mount.clone(),
                    source,
                })?;
            }
        }
        let _ = std::fs::remove_dir_all(self.backing.join(HIDDEN));
        self.remove_mount_point();
        Ok(was)
    }

    /// Removes the mount point the layer made, once unmounted (a lazily detached
    /// mount leaves the plain folder under it at once).
    fn remove_mount_point(&self) {
        if self.made_mount_point {
            let _ = std::fs::remove_dir(&self.mount);
        }
    }
}

impl Drop for Mounted {
    /// A layer dropped without [`Mounted::stop`] (an error on the way) still leaves no
    /// mount behind, and its folder goes; what it held stays in the backing directory.
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            if session.umount_and_join().is_err() {
                let _ = lazy_unmount(&self.mount);
            }
            let _ = std::fs::remove_dir_all(self.backing.join(HIDDEN));
            self.remove_mount_point();
        }
    }
}

/// Detaches every mount under `root` that a layer left behind (its process was killed,
/// so its mount is dead); says what it detached.
pub fn detach_left_under(root: &Path) -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut done = Vec::new();
    for line in mounts.lines() {
        let mut fields = line.split(' ');
        let (Some(_), Some(point), Some(kind)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // /proc/mounts escapes a space as \040.
        let point = PathBuf::from(point.replace("\\040", " "));
        if kind == "fuse" && point.starts_with(root) && lazy_unmount(&point).is_ok() {
            done.push(format!(
                "{}: unmounted the filesystem layer a killed run left there",
                point.display()
            ));
        }
    }
    done
}

/// Removes the layer's own folder from `backing` (its trash: what the system unlinked,
/// kept only for a power cut that will not come now); whether there was one.
pub fn remove_own_folder(backing: &Path) -> bool {
    std::fs::remove_dir_all(backing.join(HIDDEN)).is_ok()
}

/// Detaches the mount at `path` now; it goes once nothing uses it.
pub fn lazy_unmount(path: &Path) -> std::io::Result<()> {
    nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH).map_err(std::io::Error::from)
}

/// The signals that stop a serving layer, taken before it mounts so one that comes
/// during the mount still unmounts (SIGHUP too: a closed terminal must not leave a
/// dead mount).
pub(crate) fn stop_signals(cfg: &FsConfig) -> Result<signal_hook::iterator::Signals, FsError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).map_err(|source| {
        FsError::Mount {
            path: cfg.mount.clone(),
            source,
        }
    })
}

/// Serves until SIGINT or SIGTERM: mounts, calls `ready` with the mounted layer, waits,
/// then stops it.
pub fn serve(cfg: &FsConfig, ready: impl FnOnce(&Mounted)) -> Result<Unsynced, FsError> {
    let mut signals = stop_signals(cfg)?;
    let mounted = Mounted::start(cfg)?;
    ready(&mounted);
    let _ = signals.forever().next();
    mounted.stop()
}
