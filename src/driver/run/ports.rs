//! The ports of a run: each must be free before anything starts, and the run warns
//! when any lies in the kernel's ephemeral range (where a client connection can take a
//! component's port while it is down for a restart).

use super::*;

/// Every port the run will listen on must be free now (a second run on the same ports
/// would otherwise talk to the first run's components). Checked on every host address
/// of this machine the run uses; a host elsewhere cannot be checked from here.
pub(super) fn require_free_ports(preset: &crate::driver::preset::Preset) -> Result<(), RunError> {
    let mut hosts = preset.hosts.all();
    hosts.push(crate::driver::hosts::DEFAULT_HOST.to_string());
    for (port, what) in preset.listening_ports() {
        for host in &hosts {
            check_port_free(host, port, &what)?;
        }
    }
    Ok(())
}

/// The kernel's ephemeral port range (where it picks the local port of a client
/// connection), from `/proc/sys/net/ipv4/ip_local_port_range`; Linux's default when it
/// cannot be read.
pub fn local_port_range() -> std::ops::RangeInclusive<u16> {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut words = text.split_whitespace().map(|w| w.parse::<u16>());
    match (words.next(), words.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => low..=high,
        _ => 32768..=60999,
    }
}

/// A warning when ports of the run's scheme lie in the kernel's ephemeral range: any
/// client connection on this machine can be given one of them while its component is
/// down for a restart, and the restart then fails at random.
pub fn ephemeral_ports(
    preset: &crate::driver::preset::Preset,
    range: &std::ops::RangeInclusive<u16>,
) -> Option<String> {
    let inside: Vec<u16> = preset
        .listening_ports()
        .into_iter()
        .map(|(port, _)| port)
        .filter(|port| range.contains(port))
        .collect();
    let (low, high) = (inside.iter().min()?, inside.iter().max()?);
    Some(format!(
        "warning: {} port(s) of this run ({low}..{high}) lie in the kernel's ephemeral range \
         ({}-{}, /proc/sys/net/ipv4/ip_local_port_range), where any client connection may be \
         given one while its component is down for a restart, which then fails; a --port-base \
         whose ports all lie below {} avoids it",
        inside.len(),
        range.start(),
        range.end(),
        range.start()
    ))
}

pub(super) fn check_port_free(host: &str, port: u16, what: &str) -> Result<(), RunError> {
    match std::net::TcpListener::bind((host, port)) {
        Ok(_) => Ok(()),
        // Not an address of this machine: another host's port.
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => Ok(()),
        Err(e) => Err(RunError::Setup(format!(
            "port {port} ({what}) is not free on {host}: {e}; another run or program uses it: \
             choose another --port-base"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::preset::Preset;

    fn preset(base: u16) -> Preset {
        crate::driver::preset::test_demo(base, &['A'])
    }

    /// Issue 17.6: a scheme with ports in the ephemeral range is warned about, naming
    /// them and the range; one below it is not.
    #[test]
    fn ports_in_the_ephemeral_range_are_warned_about() {
        let range = 32768..=60999;
        let warning = ephemeral_ports(&preset(40_000), &range).unwrap();
        assert!(warning.contains("32768-60999"), "{warning}");
        assert!(warning.contains("(40000..40100)"), "{warning}");
        let straddling = ephemeral_ports(&preset(32_700), &range).unwrap();
        assert!(
            straddling.contains("7 port(s) of this run (32770..32800)"),
            "{straddling}"
        );
        assert_eq!(ephemeral_ports(&preset(7100), &range), None);
        assert_eq!(ephemeral_ports(&preset(20_000), &range), None);
    }
}
