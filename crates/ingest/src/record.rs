//! The record (one acknowledged webhook delivery) and its frame on disk.
//!
//! ```text
//! frame   = [u32 payload length LE][u32 CRC32C of payload LE][payload]
//! payload = [u8 version = 1][u64 LSN LE]
//!           [u32 len][tenant UTF-8] [u32 len][source UTF-8]
//!           [u8 0|1]([u32 len][delivery id UTF-8])  [i64 event id LE] [i64 received at ms LE]
//!           [u8 0|1]([u32 len][content type UTF-8]) [u32 len][body]
//! ```
//!
//! Decoding is total: any byte string is a record or a `FrameError`, never a panic, and every
//! length is checked against the bytes that remain before anything is allocated.

use crate::crc32c::crc32c;
use crate::Lsn;

/// Bytes before the payload: its length and its CRC32C.
pub const FRAME_HEADER_BYTES: usize = 8;
/// The largest payload a frame may declare; a longer declared length is corruption.
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;
/// The payload format this build writes and reads.
const VERSION: u8 = 1;
/// Where the LSN sits in a frame: header, then the version byte.
const LSN_AT: usize = FRAME_HEADER_BYTES + 1;

/// One acknowledged delivery as the log stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The tenant the delivery is for.
    pub tenant: String,
    /// The webhook source within the tenant.
    pub source: String,
    /// The sender's delivery id, when it sent one (dedupe key).
    pub delivery_id: Option<String>,
    /// The tenant's event id given to this delivery.
    pub event_id: i64,
    /// Receive time, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
    /// The request's `Content-Type`, when it had one.
    pub content_type: Option<String>,
    /// The request body, verbatim.
    pub body: Vec<u8>,
}

/// A frame decoded from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The record's sequence number.
    pub lsn: Lsn,
    /// The record.
    pub record: Record,
    /// Bytes the frame took (header + payload).
    pub frame_len: usize,
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The bytes end before the frame does (a torn write).
    #[error("frame cut short: needs {needed} bytes, {available} present")]
    Short {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The header declares a payload longer than `MAX_PAYLOAD_BYTES`.
    #[error("frame declares a {0}-byte payload, more than the maximum")]
    TooLong(usize),
    /// The payload does not match its checksum.
    #[error("frame checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the payload present.
        computed: u32,
    },
    /// The checksum matches but the payload is not a record this build understands.
    #[error("frame payload undecodable: {0}")]
    Decode(#[from] DecodeError),
}

/// Why a checksummed payload is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// An unknown format version.
    #[error("unknown record version {0}")]
    Version(u8),
    /// The payload ends inside the named field.
    #[error("payload ends inside {0}")]
    Short(&'static str),
    /// The named text field is not UTF-8.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    /// The presence byte of the named optional field is neither 0 nor 1.
    #[error("{0} has presence byte {1}, expected 0 or 1")]
    Tag(&'static str, u8),
    /// Bytes remain after the last field.
    #[error("{0} bytes after the last field")]
    Trailing(usize),
}

impl Record {
    /// The size of this record's frame on disk; never fails.
    pub fn frame_len(&self) -> usize {
        let opt = |o: &Option<String>| 1 + o.as_ref().map_or(0, |s| 4 + s.len());
        FRAME_HEADER_BYTES
            + 1
            + 8
            + (4 + self.tenant.len())
            + (4 + self.source.len())
            + opt(&self.delivery_id)
            + 16
            + opt(&self.content_type)
            + (4 + self.body.len())
    }

    /// The frame of this record with sequence number `lsn`. Panics only if a field exceeds
    /// 4 GiB; `Log::append` refuses records above `MAX_PAYLOAD_BYTES` before calling it.
    pub fn to_frame(&self, lsn: Lsn) -> Vec<u8> {
        let mut f = self.unsealed_frame(lsn);
        seal(&mut f);
        f
    }

    /// The frame without its checksum: `Log::append` builds this on the caller's thread and
    /// the writer seals it once it knows the LSN (`restamp`).
    pub(crate) fn unsealed_frame(&self, lsn: Lsn) -> Vec<u8> {
        let mut f = Vec::with_capacity(self.frame_len());
        f.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
        f.push(VERSION);
        f.extend_from_slice(&lsn.to_le_bytes());
        put_bytes(&mut f, self.tenant.as_bytes());
        put_bytes(&mut f, self.source.as_bytes());
        put_opt(&mut f, &self.delivery_id);
        f.extend_from_slice(&self.event_id.to_le_bytes());
        f.extend_from_slice(&self.received_at_ms.to_le_bytes());
        put_opt(&mut f, &self.content_type);
        put_bytes(&mut f, &self.body);
        let len = u32::try_from(f.len() - FRAME_HEADER_BYTES).expect("payload below 4 GiB");
        f[..4].copy_from_slice(&len.to_le_bytes());
        f
    }
}

/// Rewrites the LSN of a frame made by `to_frame` and its checksum; the writer numbers frames
/// only when it orders them into a batch.
pub(crate) fn restamp(frame: &mut [u8], lsn: Lsn) {
    frame[LSN_AT..LSN_AT + 8].copy_from_slice(&lsn.to_le_bytes());
    seal(frame);
}

fn seal(frame: &mut [u8]) {
    let crc = crc32c(&frame[FRAME_HEADER_BYTES..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn put_bytes(f: &mut Vec<u8>, b: &[u8]) {
    let len = u32::try_from(b.len()).expect("field below 4 GiB");
    f.extend_from_slice(&len.to_le_bytes());
    f.extend_from_slice(b);
}

fn put_opt(f: &mut Vec<u8>, o: &Option<String>) {
    match o {
        None => f.push(0),
        Some(s) => {
            f.push(1);
            put_bytes(f, s.as_bytes());
        }
    }
}

/// Reads the frame header at the front of `buf`: the declared payload length and checksum.
/// Errors if `buf` is shorter than a header or the length is above `MAX_PAYLOAD_BYTES`.
pub fn decode_header(buf: &[u8]) -> Result<(usize, u32), FrameError> {
    let Some(h) = buf.get(..FRAME_HEADER_BYTES) else {
        return Err(FrameError::Short {
            needed: FRAME_HEADER_BYTES,
            available: buf.len(),
        });
    };
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if len > MAX_PAYLOAD_BYTES {
        return Err(FrameError::TooLong(len));
    }
    Ok((len, crc))
}

/// Decodes the frame at the front of `buf` (bytes after it are ignored). Never panics: a
/// short, oversized, mis-checksummed or malformed frame is a `FrameError`.
pub fn decode_frame(buf: &[u8]) -> Result<Decoded, FrameError> {
    let (len, stored) = decode_header(buf)?;
    let needed = FRAME_HEADER_BYTES + len;
    let Some(payload) = buf.get(FRAME_HEADER_BYTES..needed) else {
        return Err(FrameError::Short {
            needed,
            available: buf.len(),
        });
    };
    let computed = crc32c(payload);
    if computed != stored {
        return Err(FrameError::Crc { stored, computed });
    }
    let (lsn, record) = decode_payload(payload)?;
    Ok(Decoded {
        lsn,
        record,
        frame_len: needed,
    })
}

/// Decodes a checksummed payload; every length is bounded by the bytes that remain.
pub fn decode_payload(payload: &[u8]) -> Result<(Lsn, Record), DecodeError> {
    let mut c = Cursor(payload);
    let version = c.take(1, "version")?[0];
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let lsn = c.u64("lsn")?;
    let tenant = c.text("tenant")?;
    let source = c.text("source")?;
    let delivery_id = c.opt_text("delivery id")?;
    let event_id = c.u64("event id")? as i64;
    let received_at_ms = c.u64("receive time")? as i64;
    let content_type = c.opt_text("content type")?;
    let body = c.bytes("body")?.to_vec();
    if !c.0.is_empty() {
        return Err(DecodeError::Trailing(c.0.len()));
    }
    let record = Record {
        tenant,
        source,
        delivery_id,
        event_id,
        received_at_ms,
        content_type,
        body,
    };
    Ok((lsn, record))
}

/// The unread rest of a payload.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Short(field));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(8, field)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes taken")))
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let b = self.take(4, field)?;
        let len = u32::from_le_bytes(b.try_into().expect("4 bytes taken")) as usize;
        self.take(len, field)
    }

    fn text(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let b = self.bytes(field)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError::NotUtf8(field))
    }

    fn opt_text(&mut self, field: &'static str) -> Result<Option<String>, DecodeError> {
        match self.take(1, field)?[0] {
            0 => Ok(None),
            1 => self.text(field).map(Some),
            t => Err(DecodeError::Tag(field, t)),
        }
    }
}
