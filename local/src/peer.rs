//! Who is on the other end of a loopback TCP connection, and who owns a
//! listening port: read from the kernel's socket tables
//! (`/proc/net/tcp`, `/proc/net/tcp6`), whose rows carry each socket's
//! owner uid and inode.
//!
//! The local run serves the Lambda Invoke API and forwards to moto on
//! 127.0.0.1, which every account on the machine can reach; a connection is
//! served only when the process that opened it runs as this process's own
//! account ([`same_account`]). Before a password is sent to a local clone,
//! [`listener_owned_by`] checks that the port is held by the server
//! clonesync started.

use clonesync::error::{Error, Result};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::MetadataExt;

/// One row of a socket table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SocketRow {
    local: SocketAddr,
    remote: SocketAddr,
    /// `0A` is LISTEN.
    state: u8,
    uid: u32,
    inode: u64,
}

/// `0100007F:1F90` (IPv4) or 32 hex digits (IPv6), each 32-bit word in host
/// (little-endian) order, as the kernel prints them.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::from(u32::from_str_radix(addr, 16).ok()?.to_le_bytes()),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let word = u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16).ok()?;
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            IpAddr::from(bytes)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn parse_table(text: &str) -> Vec<SocketRow> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some(SocketRow {
                local: parse_address(fields.get(1)?)?,
                remote: parse_address(fields.get(2)?)?,
                state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
                uid: fields.get(7)?.parse().ok()?,
                inode: fields.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

fn sockets() -> Result<Vec<SocketRow>> {
    let mut rows = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(table) {
            Ok(text) => rows.extend(parse_table(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::local_file("read", table, e)),
        }
    }
    Ok(rows)
}

/// The IPv4 address an IPv4-mapped IPv6 address stands for, so a row of
/// either table compares with an address of either family.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

/// This process's uid.
pub fn own_uid() -> Result<u32> {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| Error::local_file("read", "/proc/self", e))
}

/// The uid of the process that opened the connection whose ends are
/// `local` (ours) and `peer` (theirs); `None` when no row shows it.
pub fn peer_uid(local: SocketAddr, peer: SocketAddr) -> Result<Option<u32>> {
    let (local, peer) = (canonical(local), canonical(peer));
    Ok(sockets()?
        .into_iter()
        .find(|row| canonical(row.local) == peer && canonical(row.remote) == local)
        .map(|row| row.uid))
}

/// Whether the connection's other end runs as this process's account.
/// Only loopback peers can be found this way; any other peer is refused.
pub fn same_account(local: SocketAddr, peer: SocketAddr) -> bool {
    if !canonical(peer).ip().is_loopback() {
        return false;
    }
    match (peer_uid(local, peer), own_uid()) {
        (Ok(Some(theirs)), Ok(ours)) => theirs == ours,
        _ => false,
    }
}

/// Whether a socket listening on `port` belongs to process `pid` (one of
/// the process's open files is that socket).
pub fn listener_owned_by(port: u16, pid: u32) -> Result<bool> {
    let inodes: Vec<u64> = sockets()?
        .into_iter()
        .filter(|row| row.state == 0x0A && row.local.port() == port)
        .map(|row| row.inode)
        .collect();
    if inodes.is_empty() {
        return Ok(false);
    }
    let fds = match std::fs::read_dir(format!("/proc/{pid}/fd")) {
        Ok(fds) => fds,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::local_file("read", format!("/proc/{pid}/fd"), e)),
    };
    Ok(fds.filter_map(|fd| fd.ok()).any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|target| {
                let target = target.to_string_lossy().into_owned();
                target
                    .strip_prefix("socket:[")
                    .and_then(|rest| rest.strip_suffix(']'))
                    .and_then(|inode| inode.parse::<u64>().ok())
            })
            .is_some_and(|inode| inodes.contains(&inode))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernel_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000   999        0 4242 1 0000000000000000 20 4 30 10 -1\n";
        let rows = parse_table(table);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(rows[0].remote, "127.0.0.1:54321".parse().unwrap());
        assert_eq!((rows[0].state, rows[0].uid, rows[0].inode), (1, 999, 4242));
        let v6 = parse_address("00000000000000000000000001000000:0050").unwrap();
        assert_eq!(v6, "[::1]:80".parse().unwrap());
    }

    #[test]
    fn a_connection_of_our_own_is_ours_and_its_listener_is_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (served, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(same_account(served.local_addr().unwrap(), peer));
        assert_eq!(
            peer_uid(served.local_addr().unwrap(), peer).unwrap(),
            Some(own_uid().unwrap())
        );
        assert!(listener_owned_by(port, std::process::id()).unwrap());
        assert!(!listener_owned_by(port, 1).unwrap_or(false));
    }
}
