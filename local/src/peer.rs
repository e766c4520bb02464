//! Who is on the other end of a loopback TCP connection, and who owns a
//! listening port: read from the kernel's socket tables, whose rows carry
//! each socket's owner uid and inode. A connection's peer is looked up by
//! its four-tuple through sock_diag (netlink), which answers for that one
//! socket; the text tables (`/proc/net/tcp`, `/proc/net/tcp6`) are the
//! fallback and serve the listener check. Reading them costs the kernel
//! time for every socket on the machine, TIME_WAIT included: thousands in a
//! run of thousands of Lambda tasks, where the text lookup per connection
//! took most of the run's CPU.
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

/// The rows of a table; with `port`, only rows that mention it (as the
/// kernel prints it, `:1F90`), skipping the parse of the rest: a busy
/// local run has thousands of rows (TIME_WAIT), and the Lambda endpoint
/// looks up every connection it accepts.
fn parse_rows(text: &str, port: Option<u16>) -> Vec<SocketRow> {
    let needle = port.map(|p| format!(":{p:04X} "));
    text.lines()
        .skip(1)
        .filter(|line| needle.as_deref().is_none_or(|n| line.contains(n)))
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

/// The rows of both tables; only those that mention `port` when given.
fn sockets_on(port: Option<u16>) -> Result<Vec<SocketRow>> {
    let mut rows = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(table) {
            Ok(text) => rows.extend(parse_rows(&text, port)),
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

/// sock_diag's constants (linux/sock_diag.h, linux/inet_diag.h,
/// linux/netlink.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_DUMP: u16 = 0x300;
const TCP_LISTEN: u32 = 10;
/// `struct inet_diag_msg`'s `id.idiag_sport` and `idiag_inode`, after the
/// message header.
const DIAG_SPORT_OFFSET: usize = NLMSG_HEADER + 4;
const DIAG_INODE_OFFSET: usize = NLMSG_HEADER + 68;
const IPPROTO_TCP: u8 = 6;
const NLMSG_HEADER: usize = 16;
/// `struct inet_diag_msg`'s `idiag_uid`, after the message header.
const DIAG_UID_OFFSET: usize = NLMSG_HEADER + 64;

/// An address as `struct inet_diag_sockid` holds it: 16 bytes, network
/// order, an IPv4 address in the first 4.
fn diag_address(ip: IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.copy_from_slice(&v6.octets()),
    }
    out
}

/// The `SOCK_DIAG_BY_FAMILY` request for the one TCP socket whose own end
/// is `src` and whose other end is `dst` (an exact lookup: no dump).
fn diag_request(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    diag_message(src, dst, NLM_F_REQUEST, u32::MAX)
}

/// A `SOCK_DIAG_BY_FAMILY` request of TCP sockets in `states` (a bit per
/// state), with `flags`, for the family of `src`.
fn diag_message(src: SocketAddr, dst: SocketAddr, flags: u16, states: u32) -> Vec<u8> {
    let family: u8 = if src.is_ipv4() { 2 } else { 10 };
    let mut message = Vec::with_capacity(72);
    message.extend_from_slice(&72u32.to_ne_bytes());
    message.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    message.extend_from_slice(&flags.to_ne_bytes());
    message.extend_from_slice(&1u32.to_ne_bytes());
    message.extend_from_slice(&0u32.to_ne_bytes());
    message.extend_from_slice(&[family, IPPROTO_TCP, 0, 0]);
    message.extend_from_slice(&states.to_ne_bytes());
    message.extend_from_slice(&src.port().to_be_bytes());
    message.extend_from_slice(&dst.port().to_be_bytes());
    message.extend_from_slice(&diag_address(src.ip()));
    message.extend_from_slice(&diag_address(dst.ip()));
    message.extend_from_slice(&0u32.to_ne_bytes());
    // INET_DIAG_NOCOOKIE: find the socket by its addresses alone.
    message.extend_from_slice(&u32::MAX.to_ne_bytes());
    message.extend_from_slice(&u32::MAX.to_ne_bytes());
    message
}

/// The owner uid in sock_diag's answer; `None` when it says there is no
/// such socket (`ENOENT`).
fn diag_answer(answer: &[u8]) -> std::io::Result<Option<u32>> {
    let field = |at: usize| -> std::io::Result<[u8; 4]> {
        answer
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| std::io::Error::other("sock_diag: short answer"))
    };
    let kind = answer
        .get(4..6)
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
        .ok_or_else(|| std::io::Error::other("sock_diag: short answer"))?;
    match kind {
        SOCK_DIAG_BY_FAMILY => Ok(Some(u32::from_ne_bytes(field(DIAG_UID_OFFSET)?))),
        NLMSG_ERROR => match -i32::from_ne_bytes(field(NLMSG_HEADER)?) {
            2 => Ok(None),
            errno => Err(std::io::Error::from_raw_os_error(errno)),
        },
        other => Err(std::io::Error::other(format!(
            "sock_diag: unexpected message type {other}"
        ))),
    }
}

fn diag_socket(request: &[u8]) -> std::io::Result<rustix::fd::OwnedFd> {
    use rustix::net::{netlink, AddressFamily, SendFlags, SocketFlags, SocketType};
    let socket = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )?;
    rustix::net::sendto(
        &socket,
        request,
        SendFlags::empty(),
        &netlink::SocketAddrNetlink::new(0, 0),
    )?;
    Ok(socket)
}

/// The inodes of the TCP sockets listening on `port`, from sock_diag (a
/// dump of listening sockets only: a handful, whatever else is open).
fn diag_listeners(port: u16) -> std::io::Result<Vec<u64>> {
    use rustix::net::RecvFlags;
    let mut inodes = Vec::new();
    for any in [
        SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::from(([0u16; 8], 0)),
    ] {
        let socket = diag_socket(&diag_message(
            any,
            any,
            NLM_F_REQUEST | NLM_F_DUMP,
            1 << TCP_LISTEN,
        ))?;
        let mut buffer = vec![0u8; 32 * 1024];
        'answers: loop {
            let (_, length) = rustix::net::recv(&socket, &mut buffer[..], RecvFlags::empty())?;
            let mut rest = &buffer[..length.min(buffer.len())];
            while rest.len() >= NLMSG_HEADER {
                let size = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                if size < NLMSG_HEADER || size > rest.len() {
                    return Err(std::io::Error::other("sock_diag: malformed answer"));
                }
                match kind {
                    NLMSG_DONE => break 'answers,
                    NLMSG_ERROR => return diag_answer(rest).map(|_| Vec::new()),
                    SOCK_DIAG_BY_FAMILY if size >= DIAG_INODE_OFFSET + 4 => {
                        let sport = u16::from_be_bytes([
                            rest[DIAG_SPORT_OFFSET],
                            rest[DIAG_SPORT_OFFSET + 1],
                        ]);
                        if sport == port {
                            let at = DIAG_INODE_OFFSET;
                            inodes.push(u64::from(u32::from_ne_bytes([
                                rest[at],
                                rest[at + 1],
                                rest[at + 2],
                                rest[at + 3],
                            ])));
                        }
                    }
                    _ => {}
                }
                // Messages are 4-byte aligned.
                let step = (size + 3) & !3;
                rest = rest.get(step..).unwrap_or_default();
            }
        }
    }
    Ok(inodes)
}

/// The uid owning the TCP socket `src` → `dst`, from sock_diag.
fn diag_uid(src: SocketAddr, dst: SocketAddr) -> std::io::Result<Option<u32>> {
    use rustix::net::RecvFlags;
    let socket = diag_socket(&diag_request(src, dst))?;
    let mut answer = [0u8; 512];
    let (_, length) = rustix::net::recv(&socket, &mut answer[..], RecvFlags::empty())?;
    diag_answer(&answer[..length.min(answer.len())])
}

/// The uid of the process that opened the connection whose ends are
/// `local` (ours) and `peer` (theirs); `None` when no row shows it.
pub fn peer_uid(local: SocketAddr, peer: SocketAddr) -> Result<Option<u32>> {
    let (local, peer) = (canonical(local), canonical(peer));
    if let Ok(found) = diag_uid(peer, local) {
        return Ok(found);
    }
    Ok(sockets_on(Some(peer.port()))?
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
    let inodes: Vec<u64> = match diag_listeners(port) {
        Ok(inodes) => inodes,
        Err(_) => sockets_on(Some(port))?
            .into_iter()
            .filter(|row| row.state == 0x0A && row.local.port() == port)
            .map(|row| row.inode)
            .collect(),
    };
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
        let rows = parse_rows(table, None);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(rows[0].remote, "127.0.0.1:54321".parse().unwrap());
        assert_eq!((rows[0].state, rows[0].uid, rows[0].inode), (1, 999, 4242));
        assert_eq!(parse_rows(table, Some(54321)), rows);
        assert_eq!(parse_rows(table, Some(8080)), rows);
        assert!(parse_rows(table, Some(8081)).is_empty());
        let v6 = parse_address("00000000000000000000000001000000:0050").unwrap();
        assert_eq!(v6, "[::1]:80".parse().unwrap());
    }

    #[test]
    fn sock_diag_finds_the_peer_of_a_connection_and_only_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (served, peer) = listener.accept().unwrap();
        let local = served.local_addr().unwrap();
        assert_eq!(diag_uid(peer, local).unwrap(), Some(own_uid().unwrap()));
        // The same ports the other way round name no socket of ours.
        let mut elsewhere = peer;
        elsewhere.set_port(peer.port().wrapping_add(1));
        assert_eq!(diag_uid(elsewhere, local).unwrap(), None);
        drop(client);
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
        assert_eq!(diag_listeners(port).unwrap().len(), 1);
        assert!(!listener_owned_by(port, 1).unwrap_or(false));
    }
}
