//! `soakcheck fs`: the FUSE layer that forgets what was never fsynced.

use clap::Args;
use soakcheck::plans;

#[derive(Args)]
pub struct FsArgs {
    /// Where to mount (created when missing).
    #[arg(value_name = "MOUNT")]
    pub mount: std::path::PathBuf,
    /// The directory the mount shows, and where durable data lives.
    #[arg(long, value_name = "DIR")]
    pub backing: std::path::PathBuf,
    /// Serve the control interface at PORT or HOST:PORT (127.0.0.1 when only a port is
    /// given): POST /lose-unsynced, POST /checkpoint, GET /unsynced, POST and DELETE /faults.
    #[arg(long, value_name = "ADDR", value_parser = soakcheck::report::serve::parse_addr)]
    pub control: Option<std::net::SocketAddr>,
    /// Let --control listen on an address other hosts reach (anyone who reaches it can
    /// cut the power; without this flag only a loopback address is taken).
    #[arg(long)]
    pub allow_remote_control: bool,
    /// Take commands on stdin, one per line, and answer each with a JSON line on stdout
    /// (lose-unsynced, checkpoint, unsynced, fault JSON, clear-faults); the end of stdin
    /// unmounts. This is how `run` drives the layer on another host, over ssh.
    #[arg(long)]
    pub control_stdin: bool,
    /// Keep what each power cut takes back in DIR/cut-N/ (PATH.from-OFFSET: the bytes
    /// PATH held from OFFSET to its end before the cut).
    #[arg(long, value_name = "DIR")]
    pub keep_lost: Option<std::path::PathBuf>,
    /// The seed of fault probabilities and torn-write lengths.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run_fs(args: FsArgs) -> anyhow::Result<()> {
    let control = args
        .control
        .map(|addr| {
            plans::control_addr(
                addr,
                args.allow_remote_control,
                "cut the power or fail the disk",
            )
        })
        .transpose()?;
    let cfg = soakcheck::fs::FsConfig {
        mount: args.mount,
        backing: args.backing,
        control,
        seed: args.seed,
        keep_lost: args.keep_lost,
    };
    if args.control_stdin {
        // stdout carries the protocol only.
        soakcheck::fs::piped::serve_piped(&cfg, std::io::stdin(), std::io::stdout())?;
        return Ok(());
    }
    let was = soakcheck::fs::serve(&cfg, |m| {
        println!(
            "mounted {} over {}",
            m.mount().display(),
            cfg.backing.display()
        );
        if let Some(addr) = m.control {
            println!("control: http://{addr}/unsynced (Ctrl-C to unmount)");
        }
    })?;
    println!(
        "unmounted {}: {} unsynced byte(s) in {} file(s) and {} entry operation(s) made durable",
        cfg.mount.display(),
        was.bytes,
        was.files.len(),
        was.entries.len()
    );
    Ok(())
}
