//! The external channel (wallaroo-formats.md §8): u32 length (= 2 + payload), u16 message id, payload.
//! Used for cluster-status queries and shrink requests.

use std::io::{Read, Write};

use super::{WireError, MAX_FRAME};

pub const CLUSTER_STATUS_QUERY: u16 = 9;
pub const CLUSTER_STATUS_RESPONSE: u16 = 10;
pub const CLUSTER_NOT_INITIALIZED: u16 = 11;
pub const SHRINK_REQUEST: u16 = 4;
pub const SHRINK_QUERY_RESPONSE: u16 = 5;
pub const SHRINK_ERROR_RESPONSE: u16 = 6;

/// Reads one external-channel message: (id, payload).
pub fn read_message(reader: &mut impl Read) -> Result<(u16, Vec<u8>), WireError> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len < 2 {
        return Err(WireError::Malformed {
            what: "external message",
            detail: format!("length {len} < 2"),
        });
    }
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    let mut body = vec![0u8; len as usize];
    reader.read_exact(&mut body)?;
    let id = u16::from_be_bytes([body[0], body[1]]);
    body.drain(..2);
    Ok((id, body))
}

pub fn write_message(writer: &mut impl Write, id: u16, payload: &[u8]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(6 + payload.len());
    out.extend_from_slice(&(payload.len() as u32 + 2).to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(payload);
    writer.write_all(&out)
}

/// The cluster status (response id 10), parsed from JSON whatever its key order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterStatus {
    pub worker_count: usize,
    pub worker_names: Vec<String>,
    pub processing_messages: bool,
}

/// A shrink request (id 4).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ShrinkRequest {
    #[serde(default)]
    pub query: bool,
    #[serde(default)]
    pub node_names: Vec<String>,
    #[serde(default)]
    pub node_count: usize,
}

/// Asks `address` for its cluster status; None means "not yet initialized" (id 11).
pub fn query_cluster_status(
    address: &str,
    timeout: std::time::Duration,
) -> Result<Option<ClusterStatus>, WireError> {
    let addr: std::net::SocketAddr = address.parse().map_err(|_| WireError::Malformed {
        what: "address",
        detail: address.to_string(),
    })?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    write_message(&mut stream, CLUSTER_STATUS_QUERY, &[])?;
    let (id, payload) = read_message(&mut stream)?;
    decode_status_reply(id, &payload)
}

/// Decodes the reply to a cluster-status query; None means "not yet initialized".
pub fn decode_status_reply(id: u16, payload: &[u8]) -> Result<Option<ClusterStatus>, WireError> {
    match id {
        CLUSTER_NOT_INITIALIZED => Ok(None),
        CLUSTER_STATUS_RESPONSE => {
            serde_json::from_slice(payload)
                .map(Some)
                .map_err(|e| WireError::Malformed {
                    what: "cluster status",
                    detail: e.to_string(),
                })
        }
        other => Err(WireError::UnknownTag {
            what: "cluster status response",
            tag: other as u8,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_bytes_and_status_parsing() {
        let mut out = Vec::new();
        write_message(&mut out, CLUSTER_STATUS_QUERY, &[]).unwrap();
        assert_eq!(out, [0, 0, 0, 2, 0, 9]);
        let status: ClusterStatus =
            serde_json::from_str(r#"{"processing_messages":true,"worker_names":["initializer","worker1"],"worker_count":2}"#).unwrap();
        assert_eq!(status.worker_count, 2);
        let (id, payload) = read_message(&mut &[0u8, 0, 0, 2, 0, 11][..]).unwrap();
        assert_eq!((id, payload.len()), (CLUSTER_NOT_INITIALIZED, 0));
        assert!(read_message(&mut &[0u8, 0, 0, 1, 0][..]).is_err());
    }
}
