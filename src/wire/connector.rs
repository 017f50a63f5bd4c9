//! Connector protocol messages (wallaroo-formats.md §3.3-3.5): the frame tags, their bodies, and the 2PC
//! inner frames carried as the payload of a stream-0 MESSAGE.

use super::{put_sstr, Body, WireError};

pub const VERSION_SOURCE: &str = "0.0.1";
pub const VERSION_SINK: &str = "v0.0.1";
pub const COOKIE: &str = "Dragons-Love-Tacos";
/// "Nothing processed yet" in NOTIFY_ACK and ACK.
pub const U64MAX: u64 = u64::MAX;

/// One connector frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Hello {
        version: String,
        cookie: String,
        program: String,
        instance: String,
    },
    Ok {
        credits: u32,
    },
    Error {
        message: String,
    },
    Notify {
        stream_id: u64,
        stream_name: Vec<u8>,
        point_of_ref: u64,
    },
    NotifyAck {
        success: bool,
        stream_id: u64,
        point_of_ref: u64,
    },
    Message {
        stream_id: u64,
        message_id: u64,
        event_time: i64,
        key: Option<Vec<u8>>,
        payload: Vec<u8>,
    },
    Ack {
        credits: u32,
        acks: Vec<(u64, u64)>,
    },
    Restart {
        address: Option<String>,
    },
    Eos {
        stream_id: u64,
    },
}

impl Frame {
    pub fn tag(&self) -> u8 {
        match self {
            Frame::Hello { .. } => 0,
            Frame::Ok { .. } => 1,
            Frame::Error { .. } => 2,
            Frame::Notify { .. } => 3,
            Frame::NotifyAck { .. } => 4,
            Frame::Message { .. } => 5,
            Frame::Ack { .. } => 6,
            Frame::Restart { .. } => 7,
            Frame::Eos { .. } => 8,
        }
    }

    /// The frame body: tag then fields (without the u32 length).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.tag()];
        match self {
            Frame::Hello {
                version,
                cookie,
                program,
                instance,
            } => {
                for s in [version, cookie, program, instance] {
                    put_sstr(&mut out, s.as_bytes());
                }
            }
            Frame::Ok { credits } => out.extend_from_slice(&credits.to_be_bytes()),
            Frame::Error { message } => put_sstr(&mut out, message.as_bytes()),
            Frame::Notify {
                stream_id,
                stream_name,
                point_of_ref,
            } => {
                out.extend_from_slice(&stream_id.to_be_bytes());
                put_sstr(&mut out, stream_name);
                out.extend_from_slice(&point_of_ref.to_be_bytes());
            }
            Frame::NotifyAck {
                success,
                stream_id,
                point_of_ref,
            } => {
                out.push(u8::from(*success));
                out.extend_from_slice(&stream_id.to_be_bytes());
                out.extend_from_slice(&point_of_ref.to_be_bytes());
            }
            Frame::Message {
                stream_id,
                message_id,
                event_time,
                key,
                payload,
            } => {
                // The encoder writes the tag itself (the data path calls it directly).
                out.clear();
                encode_message_into(
                    &mut out,
                    *stream_id,
                    *message_id,
                    *event_time,
                    key.as_deref(),
                    payload,
                );
            }
            Frame::Ack { credits, acks } => {
                out.extend_from_slice(&credits.to_be_bytes());
                out.extend_from_slice(&(acks.len() as u32).to_be_bytes());
                for (stream_id, por) in acks {
                    out.extend_from_slice(&stream_id.to_be_bytes());
                    out.extend_from_slice(&por.to_be_bytes());
                }
            }
            Frame::Restart { address } => {
                // Always include the u32 (length 0 = no address): the Pony reader needs it.
                let address = address.as_deref().unwrap_or("");
                out.extend_from_slice(&(address.len() as u32).to_be_bytes());
                out.extend_from_slice(address.as_bytes());
            }
            Frame::Eos { stream_id } => out.extend_from_slice(&stream_id.to_be_bytes()),
        }
        out
    }

    /// Decodes a frame body (tag and fields).
    pub fn decode(body: &[u8]) -> Result<Frame, WireError> {
        let Some((&tag, fields)) = body.split_first() else {
            return Err(WireError::Empty);
        };
        let names = [
            "HELLO",
            "OK",
            "ERROR",
            "NOTIFY",
            "NOTIFY_ACK",
            "MESSAGE",
            "ACK",
            "RESTART",
            "EOS_MESSAGE",
        ];
        let what = names.get(usize::from(tag)).copied().unwrap_or("frame");
        let mut b = Body::new(fields, what);
        let frame = match tag {
            0 => Frame::Hello {
                version: b.text("version")?,
                cookie: b.text("cookie")?,
                program: b.text("program_name")?,
                instance: b.text("instance_name")?,
            },
            1 => Frame::Ok {
                credits: b.u32("initial_credits")?,
            },
            2 => Frame::Error {
                message: String::from_utf8_lossy(&b.sstr("message")?).into_owned(),
            },
            3 => Frame::Notify {
                stream_id: b.u64("stream_id")?,
                stream_name: b.sstr("stream_name")?,
                point_of_ref: b.u64("point_of_ref")?,
            },
            4 => Frame::NotifyAck {
                success: b.bool8("success")?,
                stream_id: b.u64("stream_id")?,
                point_of_ref: b.u64("point_of_ref")?,
            },
            5 => {
                let stream_id = b.u64("stream_id")?;
                let message_id = b.u64("message_id")?;
                let event_time = b.i64("event_time")?;
                let key_len = b.u16("key_length")? as usize;
                let key = if key_len == 0 {
                    None
                } else {
                    Some(b.take_n(key_len, "key")?.to_vec())
                };
                return Ok(Frame::Message {
                    stream_id,
                    message_id,
                    event_time,
                    key,
                    payload: b.rest().to_vec(),
                });
            }
            6 => {
                let credits = b.u32("credits")?;
                let count = b.u32("count")?;
                let mut acks = Vec::with_capacity(count.min(4096) as usize);
                for _ in 0..count {
                    acks.push((b.u64("stream_id")?, b.u64("point_of_ref")?));
                }
                Frame::Ack { credits, acks }
            }
            7 => {
                // The Python reader also accepts an empty body.
                if fields.is_empty() {
                    return Ok(Frame::Restart { address: None });
                }
                let address =
                    String::from_utf8(b.lstr("address")?).map_err(|_| WireError::Malformed {
                        what,
                        detail: "address is not UTF-8".into(),
                    })?;
                Frame::Restart {
                    address: (!address.is_empty()).then_some(address),
                }
            }
            8 => Frame::Eos {
                stream_id: b.u64("stream_id")?,
            },
            _ => {
                return Err(WireError::UnknownTag {
                    what: "connector frame",
                    tag,
                })
            }
        };
        b.end()?;
        Ok(frame)
    }
}

impl Body<'_> {
    fn take_n(&mut self, n: usize, field: &str) -> Result<&[u8], WireError> {
        let bytes = self.rest();
        if bytes.len() < n {
            return Err(WireError::Malformed {
                what: "MESSAGE",
                detail: format!("{field} needs {n} bytes, {} left", bytes.len()),
            });
        }
        *self = Body::new(&bytes[n..], "MESSAGE");
        Ok(&bytes[..n])
    }
}

/// Appends a whole MESSAGE body, tag first, without building a [`Frame`]: the data path
/// encodes into one reused buffer with this.
pub fn encode_message_into(
    out: &mut Vec<u8>,
    stream_id: u64,
    message_id: u64,
    event_time: i64,
    key: Option<&[u8]>,
    payload: &[u8],
) {
    out.push(5);
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(&message_id.to_be_bytes());
    out.extend_from_slice(&event_time.to_be_bytes());
    let key = key.unwrap_or(&[]);
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(payload);
}

/// A `(stream_id, start_por, end_por)` triple of a PHASE1 where_list.
pub type WhereTriple = (u64, u64, u64);

/// 2PC inner frames (wallaroo-formats.md §3.5), the payload of a MESSAGE on stream 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwoPc {
    ListUncommitted {
        rtag: u64,
    },
    ReplyUncommitted {
        rtag: u64,
        txn_ids: Vec<String>,
    },
    Phase1 {
        txn_id: String,
        where_list: Vec<WhereTriple>,
    },
    Reply {
        txn_id: String,
        commit: bool,
    },
    Phase2 {
        txn_id: String,
        commit: bool,
    },
    WorkersLeft {
        rtag: u64,
        workers: Vec<String>,
    },
}

impl TwoPc {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            TwoPc::ListUncommitted { rtag } => {
                out.push(201);
                out.extend_from_slice(&rtag.to_be_bytes());
            }
            TwoPc::ReplyUncommitted { rtag, txn_ids } => {
                out.push(202);
                out.extend_from_slice(&rtag.to_be_bytes());
                out.extend_from_slice(&(txn_ids.len() as u32).to_be_bytes());
                for t in txn_ids {
                    put_sstr(&mut out, t.as_bytes());
                }
            }
            TwoPc::Phase1 { txn_id, where_list } => {
                out.push(203);
                put_sstr(&mut out, txn_id.as_bytes());
                out.extend_from_slice(&(where_list.len() as u32).to_be_bytes());
                for (s, a, e) in where_list {
                    for v in [s, a, e] {
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                }
            }
            TwoPc::Reply { txn_id, commit } | TwoPc::Phase2 { txn_id, commit } => {
                out.push(if matches!(self, TwoPc::Reply { .. }) {
                    204
                } else {
                    205
                });
                put_sstr(&mut out, txn_id.as_bytes());
                out.push(u8::from(*commit));
            }
            TwoPc::WorkersLeft { rtag, workers } => {
                out.push(206);
                out.extend_from_slice(&rtag.to_be_bytes());
                out.extend_from_slice(&(workers.len() as u32).to_be_bytes());
                for w in workers {
                    put_sstr(&mut out, w.as_bytes());
                }
            }
        }
        out
    }

    pub fn decode(payload: &[u8]) -> Result<TwoPc, WireError> {
        let Some((&tag, fields)) = payload.split_first() else {
            return Err(WireError::Malformed {
                what: "2PC message",
                detail: "empty payload".into(),
            });
        };
        let mut b = Body::new(fields, "2PC message");
        let msg = match tag {
            201 => TwoPc::ListUncommitted {
                rtag: b.u64("rtag")?,
            },
            202 => {
                let rtag = b.u64("rtag")?;
                let n = b.u32("count")?;
                let mut txn_ids = Vec::new();
                for _ in 0..n {
                    txn_ids.push(b.text("txn_id")?);
                }
                TwoPc::ReplyUncommitted { rtag, txn_ids }
            }
            203 => {
                let txn_id = b.text("txn_id")?;
                let n = b.u32("count")?;
                let mut where_list = Vec::new();
                for _ in 0..n {
                    where_list.push((b.u64("stream_id")?, b.u64("start_por")?, b.u64("end_por")?));
                }
                TwoPc::Phase1 { txn_id, where_list }
            }
            204 => TwoPc::Reply {
                txn_id: b.text("txn_id")?,
                commit: b.strict_bool8("commit")?,
            },
            205 => TwoPc::Phase2 {
                txn_id: b.text("txn_id")?,
                commit: b.strict_bool8("commit")?,
            },
            206 => {
                let rtag = b.u64("rtag")?;
                let n = b.u32("count")?;
                let mut workers = Vec::new();
                for _ in 0..n {
                    workers.push(b.text("worker_name")?);
                }
                TwoPc::WorkersLeft { rtag, workers }
            }
            _ => {
                return Err(WireError::UnknownTag {
                    what: "2PC inner",
                    tag,
                })
            }
        };
        b.end()?;
        Ok(msg)
    }

    /// Wraps this inner frame in a stream-0 MESSAGE.
    pub fn into_frame(&self) -> Frame {
        Frame::Message {
            stream_id: 0,
            message_id: 0,
            event_time: 0,
            key: None,
            payload: self.encode(),
        }
    }
}

/// The sender's stream id for a stream name: the first 8 bytes of SHA-256(name), big-endian.
pub fn stream_id_for(name: &[u8]) -> u64 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(name);
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    /// Found by fuzzing: a REPLY or PHASE2 whose commit byte is neither 0 nor 1 is
    /// malformed (Python's sink reads only 0x01 as true, Pony any nonzero byte).
    #[test]
    fn a_2pc_commit_byte_other_than_0_or_1_is_malformed() {
        for (tag, byte, ok) in [
            (204u8, 1u8, true),
            (205, 0, true),
            (204, 203, false),
            (205, 2, false),
        ] {
            let payload = [tag, 0, 0, byte];
            assert_eq!(TwoPc::decode(&payload).is_ok(), ok, "{payload:?}");
        }
    }

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect()
    }

    fn framed(f: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        crate::wire::write_frame(&mut out, &f.encode()).unwrap();
        out
    }

    /// The worked examples of wallaroo-formats.md §3.6, byte for byte.
    #[test]
    fn golden_bytes_from_the_spec() {
        let hello = Frame::Hello {
            version: "0.0.1".into(),
            cookie: COOKIE.into(),
            program: "celsius at least once".into(),
            instance: "instance".into(),
        };
        let bytes = framed(&hello);
        assert_eq!(bytes.len(), 65);
        assert_eq!(&bytes[..7], &hex("00 00 00 3d 00 00 05")[..]);
        let ack = Frame::NotifyAck {
            success: true,
            stream_id: 2783779322737126512,
            point_of_ref: U64MAX,
        };
        assert_eq!(
            framed(&ack),
            hex("00 00 00 12 04 01 26 a1 f8 8b 80 d2 ec 70 ff ff ff ff ff ff ff ff")
        );
        let ack = Frame::Ack {
            credits: 450,
            acks: vec![(2783779322737126512, 64043)],
        };
        assert_eq!(
            framed(&ack),
            hex("00 00 00 19 06 00 00 01 c2 00 00 00 01 26 a1 f8 8b 80 d2 ec 70 00 00 00 00 00 00 fa 2b")
        );
        let p2 = TwoPc::Phase2 {
            txn_id: "X:c_id=3".into(),
            commit: true,
        }
        .into_frame();
        let mut expected = hex("00 00 00 27 05");
        expected.extend([0u8; 24]);
        expected.extend(hex("00 00 cd 00 08"));
        expected.extend(b"X:c_id=3");
        expected.push(1);
        assert_eq!(framed(&p2), expected);
        let line = [b'A'; 49];
        let data = Frame::Message {
            stream_id: 1,
            message_id: 2940,
            event_time: 0,
            key: None,
            payload: line.to_vec(),
        };
        let bytes = framed(&data);
        // The spec says "81 bytes on the wire, L = 76"; L = 76 (which it also gives in
        // hex) makes 4 + 76 = 80, so the 81 is a miscount.
        assert_eq!(bytes.len(), 80);
        assert_eq!(
            &bytes[..23],
            &hex("00 00 00 4c 05 00 00 00 00 00 00 00 01 00 00 00 00 00 00 0b 7c 00 00")[..]
        );
    }

    #[test]
    fn stream_ids_match_the_spec_table() {
        assert_eq!(stream_id_for(b"/tmp/input-file.A.txt"), 2783779322737126512);
        assert_eq!(
            stream_id_for(b"/tmp/input-file.B.txt"),
            14939018101553882850
        );
        assert_eq!(
            stream_id_for(b"/tmp/input-file.J.txt"),
            11239404855561416476
        );
    }

    #[test]
    fn every_frame_round_trips() {
        let frames = vec![
            Frame::Hello {
                version: "v0.0.1".into(),
                cookie: COOKIE.into(),
                program: "Passthrough".into(),
                instance: "worker1".into(),
            },
            Frame::Ok { credits: 500 },
            Frame::Error {
                message: "bad".into(),
            },
            Frame::Notify {
                stream_id: 1,
                stream_name: b"Passthrough-w-worker1-id-7".to_vec(),
                point_of_ref: 99,
            },
            Frame::NotifyAck {
                success: false,
                stream_id: 1,
                point_of_ref: 0,
            },
            Frame::Message {
                stream_id: 9,
                message_id: 49,
                event_time: -1,
                key: Some(b"/tmp/x".to_vec()),
                payload: b"A1\n".to_vec(),
            },
            Frame::Message {
                stream_id: 1,
                message_id: 0,
                event_time: 0,
                key: None,
                payload: vec![],
            },
            Frame::Ack {
                credits: 0,
                acks: vec![],
            },
            Frame::Restart {
                address: Some("127.0.0.1:7100".into()),
            },
            Frame::Restart { address: None },
            Frame::Eos { stream_id: 5 },
        ];
        for f in frames {
            assert_eq!(Frame::decode(&f.encode()).unwrap(), f);
        }
        let inner = vec![
            TwoPc::ListUncommitted { rtag: 77778 },
            TwoPc::ReplyUncommitted {
                rtag: 77778,
                txn_ids: vec!["T:c_id=3".into()],
            },
            TwoPc::Phase1 {
                txn_id: "T:c_id=4".into(),
                where_list: vec![(1, 5390, 9800)],
            },
            TwoPc::Reply {
                txn_id: "T:c_id=4".into(),
                commit: true,
            },
            TwoPc::Phase2 {
                txn_id: "T:c_id=4".into(),
                commit: false,
            },
            TwoPc::WorkersLeft {
                rtag: 7,
                workers: vec!["worker2".into()],
            },
        ];
        for m in inner {
            assert_eq!(TwoPc::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn malformed_and_truncated_frames_are_errors() {
        for f in [
            Frame::Hello {
                version: "v".into(),
                cookie: "c".into(),
                program: "p".into(),
                instance: "i".into(),
            },
            Frame::Ack {
                credits: 1,
                acks: vec![(1, 2)],
            },
            Frame::Notify {
                stream_id: 1,
                stream_name: b"n".to_vec(),
                point_of_ref: 3,
            },
        ] {
            let body = f.encode();
            for cut in 1..body.len() {
                assert!(Frame::decode(&body[..cut]).is_err(), "{f:?} cut at {cut}");
            }
        }
        assert!(matches!(
            Frame::decode(&[42]),
            Err(WireError::UnknownTag { tag: 42, .. })
        ));
        assert!(TwoPc::decode(&[99, 0]).is_err());
        let mut huge = Vec::new();
        huge.extend_from_slice(&(crate::wire::MAX_FRAME + 1).to_be_bytes());
        assert!(matches!(
            crate::wire::read_frame(&mut &huge[..]),
            Err(WireError::TooLarge(_))
        ));
        assert!(crate::wire::read_frame(&mut &[0u8, 0, 0, 5, 1][..]).is_err());
    }
}
