//! splice(2) through a pipe: the proxy's clear path moves bytes from one socket to
//! another inside the kernel, without copying them through user space.

use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{splice, FcntlArg, OFlag, SpliceFFlags};

/// How much a pipe holds (the kernel may give less).
const PIPE_BYTES: i32 = 1 << 20;

/// A non-blocking pipe.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

fn io(e: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

impl Pipe {
    pub fn new() -> std::io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io)?;
        // A larger pipe moves more per call; where the kernel refuses, the default does.
        let _ = nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&write),
            FcntlArg::F_SETPIPE_SZ(PIPE_BYTES),
        );
        Ok(Pipe { read, write })
    }

    /// Moves what `from` has (up to the pipe's size) into the empty pipe; 0 at EOF,
    /// `WouldBlock` when there is nothing now.
    pub fn fill_from(&self, from: &impl AsFd) -> std::io::Result<usize> {
        let flags = SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE;
        splice(
            from.as_fd(),
            None,
            self.write.as_fd(),
            None,
            PIPE_BYTES as usize,
            flags,
        )
        .map_err(io)
    }

    /// Moves up to `len` bytes of the pipe into `to`; `WouldBlock` when `to` is full.
    pub fn drain_into(&self, to: &impl AsFd, len: usize) -> std::io::Result<usize> {
        let flags = SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE;
        splice(self.read.as_fd(), None, to.as_fd(), None, len, flags).map_err(io)
    }
}
