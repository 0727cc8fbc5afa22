//! HAProxy's runtime API (the `stats socket … level admin`), over TCP or a unix socket: one
//! command line per connection, the answer read to EOF: `show map`, and `set`/`add`/`del map`
//! batched several per line; an answer that is not the success answer becomes an error quoting HAProxy.
//! Also [`write_atomic`], so the map files on disk match what was set and survive a reload.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Longest `;`-joined command line [`Runtime::batch`] sends (HAProxy's default buffer is
/// 16 KiB).
pub const BATCH_BYTES: usize = 8 * 1024;

/// `set map MAP KEY VALUE`, as [`Runtime::batch`] takes it.
pub fn set_map_cmd(map: &Path, key: &str, value: &str) -> String {
    format!("set map {} {key} {value}", map.display())
}

/// `add map MAP KEY VALUE`, as [`Runtime::batch`] takes it.
pub fn add_map_cmd(map: &Path, key: &str, value: &str) -> String {
    format!("add map {} {key} {value}", map.display())
}

/// `del map MAP KEY`, as [`Runtime::batch`] takes it.
pub fn del_map_cmd(map: &Path, key: &str) -> String {
    format!("del map {} {key}", map.display())
}

/// Why a runtime API call failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Cannot connect, send or read.
    #[error("HAProxy runtime API at {0}: {1}")]
    Io(String, std::io::Error),
    /// HAProxy refused the command; its answer is quoted.
    #[error("HAProxy refused `{cmd}`: {answer}")]
    Refused {
        /// The command sent.
        cmd: String,
        /// What HAProxy answered.
        answer: String,
    },
}

/// A client of one HAProxy's runtime API: `host:port` or a unix socket path.
#[derive(Debug, Clone)]
pub struct Runtime {
    addr: String,
}

impl Runtime {
    /// A client for `addr` (nothing is connected yet).
    pub fn new(addr: &str) -> Runtime {
        Runtime {
            addr: addr.to_string(),
        }
    }

    /// Sends one command, returns HAProxy's whole answer. Errors: I/O only.
    pub fn command(&self, cmd: &str) -> Result<String, RuntimeError> {
        let io = |e| RuntimeError::Io(self.addr.clone(), e);
        let mut answer = String::new();
        let line = format!("{cmd}\n");
        if self.addr.starts_with('/') || self.addr.starts_with('.') {
            let mut s = UnixStream::connect(&self.addr).map_err(io)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(io)?;
            s.write_all(line.as_bytes()).map_err(io)?;
            s.read_to_string(&mut answer).map_err(io)?;
        } else {
            let mut s = TcpStream::connect(&self.addr).map_err(io)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(io)?;
            s.write_all(line.as_bytes()).map_err(io)?;
            s.read_to_string(&mut answer).map_err(io)?;
        }
        Ok(answer)
    }

    /// A command whose success answer is empty. Errors: I/O, or HAProxy's answer.
    fn quiet(&self, cmd: String) -> Result<(), RuntimeError> {
        let answer = self.command(&cmd)?;
        if answer.trim().is_empty() {
            Ok(())
        } else {
            Err(RuntimeError::Refused {
                cmd,
                answer: answer.trim().to_string(),
            })
        }
    }

    /// Runs commands whose success answer is empty (`set`/`add`/`del map`) several per
    /// connection, `;`-separated on one line (at most [`BATCH_BYTES`] per line, under HAProxy's
    /// command buffer), so thousands of map changes cost a few connections, not thousands.
    /// Errors: I/O, or the first batch HAProxy answered with anything (quoted).
    pub fn batch(&self, cmds: &[String]) -> Result<usize, RuntimeError> {
        let mut line = String::new();
        let mut sent = 0;
        for (i, cmd) in cmds.iter().enumerate() {
            if !line.is_empty() {
                line.push(';');
            }
            line.push_str(cmd);
            let last = i + 1 == cmds.len();
            let full = cmds
                .get(i + 1)
                .is_some_and(|next| line.len() + 1 + next.len() > BATCH_BYTES);
            if last || full {
                self.quiet(std::mem::take(&mut line))?;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// `show map MAP` as `(key, value)` pairs. Errors: I/O, or an answer that is not entries.
    pub fn show_map(&self, map: &Path) -> Result<Vec<(String, String)>, RuntimeError> {
        let cmd = format!("show map {}", map.display());
        let answer = self.command(&cmd)?;
        parse_show_map(&answer).ok_or(RuntimeError::Refused {
            cmd,
            answer: answer.trim().to_string(),
        })
    }
}

/// Parses `show map` lines (`0xADDR key value`); `None` when a line is not one.
pub fn parse_show_map(answer: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for line in answer.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(3, ' ');
        let (addr, key, value) = (parts.next()?, parts.next()?, parts.next()?);
        if !addr.starts_with("0x") {
            return None;
        }
        out.push((key.to_string(), value.to_string()));
    }
    Some(out)
}

/// Writes `bytes` to `path` through a temp file in the same directory, fsync, rename. Errors: I/O.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_map_lines_parse_and_errors_do_not() {
        let a = "0x55d0c4e1 14910 node9\n0x55d0c4e2 acme node1\n\n";
        assert_eq!(
            parse_show_map(a).unwrap(),
            [
                ("14910".into(), "node9".into()),
                ("acme".into(), "node1".into())
            ]
        );
        assert!(parse_show_map("Unknown map identifier. Please use #<id> or <file>.\n").is_none());
    }

    #[test]
    fn write_atomic_replaces_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("slots.map");
        write_atomic(&p, b"a").unwrap();
        write_atomic(&p, b"b").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
