//! `soakcheck proxy`: the TCP fault proxy.

use anyhow::Context;
use clap::Args;
use soakcheck::plans;

#[derive(Args)]
pub struct ProxyArgs {
    /// A link: NAME,LISTEN,UPSTREAM (such as worker1->sink,127.0.0.1:7300,127.0.0.1:7200);
    /// repeatable.
    #[arg(long = "link", value_name = "NAME,LISTEN,UPSTREAM", required = true, value_parser = soakcheck::proxy::parse_link)]
    pub links: Vec<soakcheck::proxy::LinkSpec>,
    /// Serve the control interface at PORT or HOST:PORT (127.0.0.1 when only a port is
    /// given): GET /links, POST /links/NAME {"fault": ..., "direction": ...}.
    #[arg(long, value_name = "ADDR", value_parser = soakcheck::report::serve::parse_addr)]
    pub control: Option<std::net::SocketAddr>,
    /// Let --control listen on an address other hosts reach (anyone who reaches it can
    /// partition every link; without this flag only a loopback address is taken).
    #[arg(long)]
    pub allow_remote_control: bool,
    /// The seed of the delay jitter and the slice sizes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run_proxy(args: ProxyArgs) -> anyhow::Result<()> {
    let control = args
        .control
        .map(|addr| plans::control_addr(addr, args.allow_remote_control, "fault every link"))
        .transpose()?;
    let proxy = std::sync::Arc::new(soakcheck::proxy::Proxy::start(args.links, args.seed)?);
    for l in proxy.status() {
        println!("link {}: {} -> {}", l.name, l.listen, l.upstream);
    }
    if let Some(addr) = control {
        let bound = soakcheck::proxy::control::serve(std::sync::Arc::clone(&proxy), addr)
            .with_context(|| format!("the control interface on {addr}"))?;
        println!("control: http://{bound}/links (Ctrl-C to stop)");
    }
    soakcheck::report::serve::wait_for_interrupt()?;
    Ok(())
}
