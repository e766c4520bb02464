//! Connection URLs as libpq reads them
//! (`postgresql://[user[:password]@]host[:port]/dbname[?param=value&...]`):
//! every part percent-decoded, and the parameters clonesync can honour
//! (`sslmode`, `sslrootcert`, `application_name`) honoured. Anything else —
//! another parameter, a host list, a raw `@`, `/` or `%` that should have
//! been percent-encoded — is a named error, never silently dropped, and no
//! error repeats any part of the text, which may hold a password.

use crate::error::{Error, Result};
use crate::pg::connect::Endpoint;
use crate::pg::secret::Secret;
use crate::pg::tls::{Tls, TrustedRoots};
use std::path::Path;

/// What a connection URL asks for.
#[derive(Debug, Clone)]
pub struct ConnectionUrl {
    pub endpoint: Endpoint,
    /// From `sslmode` (and `sslrootcert` for the verifying modes);
    /// `disable` when the URL gives none.
    pub tls: Tls,
    /// The `sslmode` as written, for the connections servers make
    /// (`pg_basebackup`, the clone's recovery).
    pub sslmode: String,
    pub sslrootcert: Option<String>,
    pub application_name: Option<String>,
}

/// Percent-encoding of one URL part (everything but unreserved characters).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

const HINT: &str = "a raw @, /, :, ? or % in the user name or password must be \
                    percent-encoded (%40, %2F, %3A, %3F, %25)";

fn invalid(problem: impl Into<String>) -> Error {
    Error::invalid(format!("source URL: {}", problem.into()))
}

/// Percent-decoding of one URL part; `what` names the part in errors.
fn decode(text: &str, what: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "the {what} holds a % that starts no escape ({HINT})"
                    ))
                })?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(format!("the {what} is not UTF-8 once decoded")))
}

impl ConnectionUrl {
    /// Parse a `postgres://` or `postgresql://` URL.
    pub fn parse(text: &str) -> Result<ConnectionUrl> {
        let rest = text
            .strip_prefix("postgresql://")
            .or_else(|| text.strip_prefix("postgres://"))
            .ok_or_else(|| invalid("must start with postgresql:// or postgres://"))?;
        // The authority ends at the first / or ?, like libpq's parser.
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                if info.contains('@') {
                    return Err(invalid(format!(
                        "the user or password holds a raw @ ({HINT})"
                    )));
                }
                match info.split_once(':') {
                    Some((user, password)) => (
                        Some(decode(user, "user name")?),
                        Some(decode(password, "password")?),
                    ),
                    None => (Some(decode(info, "user name")?), None),
                }
            }
        };
        if hostport.contains(',') {
            return Err(invalid(
                "names several hosts; clonesync connects to exactly one",
            ));
        }
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let close = bracketed
                .find(']')
                .ok_or_else(|| invalid("an IPv6 host lacks its closing ]"))?;
            let port = bracketed[close + 1..].strip_prefix(':');
            (bracketed[..close].to_string(), port)
        } else {
            match hostport.split_once(':') {
                Some((host, port)) => (decode(host, "host")?, Some(port)),
                None => (decode(hostport, "host")?, None),
            }
        };
        let port = match port {
            None | Some("") => 5432,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    invalid(format!("the port is not a number from 1 to 65535 ({HINT})"))
                })?,
        };
        let host = if host.is_empty() {
            "localhost".to_string()
        } else {
            host
        };
        if host.contains(['@', '/', ' ']) {
            return Err(invalid(format!("the host is not a host name ({HINT})")));
        }
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let dbname = decode(path.strip_prefix('/').unwrap_or(path), "database name")?;
        if dbname.is_empty() {
            return Err(invalid(
                "names no database (postgresql://user@host:port/DATABASE); clonesync does not guess one",
            ));
        }
        if dbname.contains('/') {
            return Err(invalid(format!("the database name holds a raw / ({HINT})")));
        }
        let user = user
            .filter(|u| !u.is_empty())
            .ok_or_else(|| invalid("names no user (postgresql://USER@host/db)"))?;
        let mut sslmode = None;
        let mut sslrootcert = None;
        let mut application_name = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| invalid("a parameter has no value (key=value)"))?;
            let key = decode(key, "parameter name")?;
            let value = decode(value, "parameter value")?;
            let slot = match key.as_str() {
                "sslmode" => &mut sslmode,
                "sslrootcert" => &mut sslrootcert,
                "application_name" => &mut application_name,
                other => {
                    return Err(invalid(format!(
                        "parameter {other:?} is not supported (only sslmode, sslrootcert, application_name)"
                    )))
                }
            };
            if slot.replace(value).is_some() {
                return Err(invalid(format!("parameter {key:?} is given twice")));
            }
        }
        let sslmode = sslmode.unwrap_or_else(|| "disable".to_string());
        let roots = |mode: &str| -> Result<TrustedRoots> {
            let path = sslrootcert
                .as_deref()
                .ok_or_else(|| invalid(format!("sslmode={mode} needs sslrootcert=<CA file>")))?;
            TrustedRoots::from_file(Path::new(path)).map_err(|e| invalid(e.to_string()))
        };
        let tls = match sslmode.as_str() {
            "disable" => Tls::Disable,
            "allow" | "prefer" => Tls::Prefer,
            "require" => Tls::Require,
            "verify-ca" => Tls::VerifyCa(roots("verify-ca")?),
            "verify-full" => Tls::VerifyFull(roots("verify-full")?),
            other => {
                return Err(invalid(format!(
                    "sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )))
            }
        };
        if sslrootcert.is_some() && !matches!(tls, Tls::VerifyCa(_) | Tls::VerifyFull(_)) {
            return Err(invalid(
                "sslrootcert is used only with sslmode=verify-ca or verify-full",
            ));
        }
        Ok(ConnectionUrl {
            endpoint: Endpoint {
                host,
                port,
                dbname,
                user,
                password: password.map(Secret::new),
            },
            tls,
            sslmode,
            sslrootcert,
            application_name,
        })
    }

    /// The URL again without its password: what a record may keep to
    /// reconnect later with the password given anew.
    pub fn without_password(&self) -> String {
        let e = &self.endpoint;
        let host = if e.host.contains(':') {
            format!("[{}]", e.host)
        } else {
            encode(&e.host)
        };
        let mut url = format!(
            "postgresql://{}@{host}:{}/{}?sslmode={}",
            encode(&e.user),
            e.port,
            encode(&e.dbname),
            encode(&self.sslmode)
        );
        if let Some(root) = &self.sslrootcert {
            url.push_str(&format!("&sslrootcert={}", encode(root)));
        }
        if let Some(name) = &self.application_name {
            url.push_str(&format!("&application_name={}", encode(name)));
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        let e = ConnectionUrl::parse(text).unwrap_err();
        assert_eq!(e.name(), "Input.Invalid");
        e.to_string()
    }

    #[test]
    fn every_part_is_percent_decoded() {
        let url = ConnectionUrl::parse(
            "postgresql://app%40x:p%27a%5Cs%40s%2Fw%25o%20rd%C3%A9@db.internal:6543/my%20db?application_name=ops",
        )
        .unwrap();
        let e = &url.endpoint;
        assert_eq!(e.user, "app@x");
        assert_eq!(e.password.as_ref().unwrap().expose(), "p'a\\s@s/w%o rdé");
        assert_eq!(
            (e.host.as_str(), e.port, e.dbname.as_str()),
            ("db.internal", 6543, "my db")
        );
        assert_eq!(url.application_name.as_deref(), Some("ops"));
        assert!(matches!(url.tls, Tls::Disable));
        let v6 = ConnectionUrl::parse("postgres://a@[::1]:5433/d?sslmode=require").unwrap();
        assert_eq!((v6.endpoint.host.as_str(), v6.endpoint.port), ("::1", 5433));
        assert!(matches!(v6.tls, Tls::Require));
        let again = ConnectionUrl::parse(&url.without_password()).unwrap();
        assert_eq!(again.endpoint.user, "app@x");
        assert_eq!(again.endpoint.dbname, "my db");
        assert!(again.endpoint.password.is_none());
        assert_eq!(again.application_name.as_deref(), Some("ops"));
        let v6 = ConnectionUrl::parse(&v6.without_password()).unwrap();
        assert_eq!(v6.endpoint.host, "::1");
    }

    #[test]
    fn parses_urls_without_echoing_them() {
        let e = ConnectionUrl::parse("postgres://app:s3cr%2Ft@db.internal:6543/orders")
            .unwrap()
            .endpoint;
        assert_eq!(
            (e.host.as_str(), e.port, e.user.as_str(), e.dbname.as_str()),
            ("db.internal", 6543, "app", "orders")
        );
        assert_eq!(e.password.as_ref().map(Secret::expose), Some("s3cr/t"));
        let message = err("postgres://app:canary-pw@db:notaport/x");
        assert!(!message.contains("canary-pw"), "{message}");
        // A key=value string is not a URL: refused by name, not guessed at.
        assert!(err("host=127.0.0.1 user=postgres password=pw").contains("must start"));
    }

    #[test]
    fn what_is_not_understood_is_named_and_no_part_is_echoed() {
        let secret = "canary-Pw";
        for (text, needle) in [
            ("postgres://u:canary-Pw@h:5432/d?sslcert=x", "sslcert"),
            ("postgres://u:canary-Pw@h1,h2/d", "several hosts"),
            ("postgres://u:canary-Pw@h:5432", "names no database"),
            ("postgres://u:canary-Pw@h:5432/", "names no database"),
            (
                "postgres://u:canary-Pw@h/d?sslmode=verify-full",
                "needs sslrootcert",
            ),
            ("postgres://u:canary-Pw@h/d?sslmode=strict", "not one of"),
            (
                "postgres://u:canary-Pw@h/d?sslmode=require&sslmode=disable",
                "twice",
            ),
            ("postgres://u:canary%zzPw@h/d", "starts no escape"),
            ("postgres://u:canary-Pw@x@h/d", "raw @"),
            ("postgres://u:canary/Pw@h/d", "not a number"),
            ("postgres://u:canary-Pw@h:99999/d", "not a number"),
            ("postgres://h/d", "names no user"),
            ("mysql://u@h/d", "must start"),
        ] {
            let message = err(text);
            assert!(message.contains(needle), "{text}: {message}");
            assert!(
                !message.contains(secret) && !message.contains("canary"),
                "{message}"
            );
        }
    }
}
