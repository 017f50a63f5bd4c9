//! The embedded system under test: wire-compatible sink, passthrough workers and
//! feeds (spec sections 3-6), so soakcheck works out of the box.
//!
//! Runs cannot talk to each other: `soakcheck run` gives every component of one run the
//! same `--run-id`, which travels in the connector HELLO's cookie (configurable in the
//! real system as well: `name@host:port:cookie:...`) and in every control-channel
//! message. A peer of another run is refused with a logged ERROR; a component without
//! a run id speaks the spec's cookie exactly.

pub mod cluster;
pub mod control;
pub mod feed;
pub mod log;
pub mod sink;
pub mod state;
pub mod worker;

/// The connector cookie of a run: the spec's, or the spec's with `/<run id>` appended.
pub fn run_cookie(run_id: Option<&str>) -> String {
    let cookie = crate::wire::connector::COOKIE;
    match run_id {
        Some(id) => format!("{cookie}/{id}"),
        None => cookie.to_string(),
    }
}

/// Who sent a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// This run's component.
    Ours,
    /// A component of another run (the same system, another run id).
    OtherRun,
    /// Not this system's cookie at all.
    Foreign,
}

/// Classifies the cookie `got` against this run's `expected` one.
pub fn peer_of(expected: &str, got: &str) -> Peer {
    let family = crate::wire::connector::COOKIE;
    if got == expected {
        Peer::Ours
    } else if got == family || got.starts_with(&format!("{family}/")) {
        Peer::OtherRun
    } else {
        Peer::Foreign
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_tell_this_run_from_another_and_from_strangers() {
        let ours = run_cookie(Some("r1"));
        assert_eq!(ours, "Dragons-Love-Tacos/r1");
        assert_eq!(run_cookie(None), "Dragons-Love-Tacos");
        assert_eq!(peer_of(&ours, &ours), Peer::Ours);
        assert_eq!(peer_of(&ours, "Dragons-Love-Tacos/r2"), Peer::OtherRun);
        assert_eq!(peer_of(&ours, "Dragons-Love-Tacos"), Peer::OtherRun);
        assert_eq!(peer_of("Dragons-Love-Tacos", &ours), Peer::OtherRun);
        assert_eq!(peer_of(&ours, "Tacos"), Peer::Foreign);
    }
}
