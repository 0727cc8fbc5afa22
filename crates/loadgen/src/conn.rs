//! One keep-alive HTTP/1.1 connection: write a prepared request, read one response (framed by
//! Content-Length or chunked encoding), keep the read buffer for the next one. Knows nothing
//! of workloads; the caller says whether to look for a Hrana in-band error in the body.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a request got no HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Connecting, writing or reading failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection before a whole response arrived.
    #[error("the server closed the connection")]
    Closed,
    /// The response is not HTTP/1.1 we can frame.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
}

/// What came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body holds `"type":"error"` (only looked for when asked).
    pub inband_error: bool,
}

/// An open connection and its read buffer.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    body: Vec<u8>,
    /// The server said `Connection: close`: do not reuse.
    closing: bool,
}

const MAX_HEADERS: usize = 32;
/// Bytes read at a time (answers here are small; a larger one takes more reads).
const READ_CHUNK: usize = 4096;
const ERROR_MARK: &[u8] = b"\"type\":\"error\"";

impl Conn {
    /// Connects (TCP_NODELAY); errors are the connect's.
    pub async fn connect(addr: SocketAddr) -> Result<Conn, ConnError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
            body: Vec::new(),
            closing: false,
        })
    }

    /// Whether the server asked to close this connection after its last response.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Sends `request` (a complete HTTP/1.1 request) and reads its response; with `scan`, the
    /// body is searched for a Hrana in-band error. Errors leave the connection unusable.
    pub async fn roundtrip(&mut self, request: &[u8], scan: bool) -> Result<Response, ConnError> {
        self.stream.write_all(request).await?;
        let Head {
            status,
            len: head_len,
            framing,
            close,
        } = loop {
            if let Some(parsed) = parse_head(&self.buf)? {
                break parsed;
            }
            self.fill().await?;
        };
        self.buf.drain(..head_len);
        let inband_error = match framing {
            Framing::Length(n) => {
                while self.buf.len() < n {
                    self.fill().await?;
                }
                let found = scan && contains(&self.buf[..n], ERROR_MARK);
                self.buf.drain(..n);
                found
            }
            Framing::Chunked => {
                self.read_chunked().await?;
                scan && contains(&self.body, ERROR_MARK)
            }
        };
        self.closing = close;
        Ok(Response {
            status,
            inband_error,
        })
    }

    async fn fill(&mut self) -> Result<(), ConnError> {
        self.buf.reserve(READ_CHUNK);
        match self.stream.read_buf(&mut self.buf).await? {
            0 => Err(ConnError::Closed),
            _ => Ok(()),
        }
    }

    /// Decodes a chunked body into `self.body` (trailers are skipped).
    async fn read_chunked(&mut self) -> Result<(), ConnError> {
        self.body.clear();
        loop {
            let line_end = loop {
                if let Some(at) = find(&self.buf, b"\r\n") {
                    break at;
                }
                self.fill().await?;
            };
            let line = std::str::from_utf8(&self.buf[..line_end])
                .map_err(|_| ConnError::Malformed("chunk size is not text"))?;
            let hex = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .map_err(|_| ConnError::Malformed("bad chunk size"))?;
            self.buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers, then an empty line.
                loop {
                    let end = loop {
                        if let Some(at) = find(&self.buf, b"\r\n") {
                            break at;
                        }
                        self.fill().await?;
                    };
                    self.buf.drain(..end + 2);
                    if end == 0 {
                        return Ok(());
                    }
                }
            }
            while self.buf.len() < size + 2 {
                self.fill().await?;
            }
            self.body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
}

/// A parsed response head.
struct Head {
    status: u16,
    len: usize,
    framing: Framing,
    close: bool,
}

/// Parses a complete response head. `None` = need more bytes.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, ConnError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ConnError::Malformed("unparsable status line or headers")),
    };
    let status = resp.code.ok_or(ConnError::Malformed("no status"))?;
    let mut framing = None;
    let mut close = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(ConnError::Malformed("bad Content-Length"))?;
            framing = Some(Framing::Length(n));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            && contains_ignore_case(h.value, b"chunked")
        {
            framing = Some(Framing::Chunked);
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = contains_ignore_case(h.value, b"close");
        }
    }
    // No framing: only bodiless statuses are allowed (a body read to EOF would end the
    // connection, which the loop treats as an error anyway).
    let framing = match framing {
        Some(f) => f,
        None if status == 204 || status == 304 || (100..200).contains(&status) => {
            Framing::Length(0)
        }
        None => {
            return Err(ConnError::Malformed(
                "response has neither Content-Length nor chunked encoding",
            ))
        }
    };
    Ok(Some(Head {
        status,
        len: head_len,
        framing,
        close,
    }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Option<Head>, ConnError> {
        parse_head(raw.as_bytes())
    }

    #[test]
    fn heads_are_framed_by_length_or_chunks() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.framing, h.close),
            (200, Framing::Length(12), false)
        );
        assert_eq!(h.len, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n".len());
        let c = head("HTTP/1.1 503 x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.status, c.framing, c.close),
            (503, Framing::Chunked, true)
        );
        let empty = head("HTTP/1.1 204 No Content\r\n\r\n").unwrap().unwrap();
        assert_eq!(empty.framing, Framing::Length(0));
    }

    #[test]
    fn partial_and_unframed_heads() {
        assert!(head("HTTP/1.1 200 OK\r\nContent-Len").unwrap().is_none());
        assert!(matches!(
            head("HTTP/1.1 200 OK\r\n\r\nbody until close"),
            Err(ConnError::Malformed(_))
        ));
        assert!(matches!(
            head("SSH-2.0-x\r\n\r\n"),
            Err(ConnError::Malformed(_))
        ));
        assert!(matches!(
            head("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
            Err(ConnError::Malformed(_))
        ));
    }
}
