//! The demo's control channel and cluster membership.
//!
//! Workers talk to the initializer on its control port (`WALLAROO_CONTROL_BASE`, 7101)
//! with the external channel's framing and JSON payloads (ids 100 and up, which the
//! external channel does not use): `register` (every worker at start; `join` adds a new
//! member), `handoff` (a leaving worker's streams and their checkpointed points of
//! reference, stored durably by the initializer before it answers) and `left`. The
//! initializer keeps the logical membership (initial workers plus those that joined,
//! minus those that left) in `members.json` in its state directory, written atomically,
//! so a crashed worker is still listed and a restarted initializer remembers. Every
//! message travels in an [`Envelope`] with the sender's run id; the initializer refuses
//! one from another run.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::demo::state::StreamState;
use crate::gen::write_atomically;
use crate::wire::external::{read_message, write_message};
use crate::wire::WireError;

pub const REGISTER: u16 = 100;
pub const HANDOFF: u16 = 101;
pub const LEFT: u16 = 102;
pub const OK: u16 = 103;
pub const FAILED: u16 = 104;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberAddr {
    pub external: SocketAddr,
    pub source: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Register {
    pub name: String,
    pub addr: MemberAddr,
    pub join: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegisterReply {
    /// Where sources of a leaving worker go.
    pub initializer_source: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Handoff {
    pub from: String,
    pub streams: BTreeMap<u64, StreamState>,
}

/// The logical membership and where each member listens.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Membership {
    pub names: Vec<String>,
    pub addrs: BTreeMap<String, MemberAddr>,
}

impl Membership {
    pub fn load(dir: &Path, initial: Vec<String>) -> Membership {
        std::fs::read(dir.join("members.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Membership {
                names: initial,
                addrs: BTreeMap::new(),
            })
    }

    pub fn store(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        write_atomically(&dir.join("members.json"), |out| {
            out.write_all(&serde_json::to_vec(self).expect("serializes"))
        })
    }
}

/// Every control message: the sender's run id and the message itself, so a worker of
/// another run is refused whatever it asks.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Envelope<T> {
    #[serde(default)]
    pub run_id: Option<String>,
    pub body: T,
}

/// Sends one control request and waits for OK (whose payload is returned).
pub fn request(
    addr: SocketAddr,
    id: u16,
    run_id: Option<&str>,
    payload: &impl serde::Serialize,
) -> Result<Vec<u8>, WireError> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let envelope = Envelope {
        run_id: run_id.map(str::to_string),
        body: payload,
    };
    write_message(
        &mut s,
        id,
        &serde_json::to_vec(&envelope).expect("serializes"),
    )?;
    match read_message(&mut s)? {
        (OK, body) => Ok(body),
        (_, body) => Err(WireError::Malformed {
            what: "control reply",
            detail: String::from_utf8_lossy(&body).into_owned(),
        }),
    }
}
