//! The PostgreSQL adapter: sessions, names, quoting, LSNs, catalog queries,
//! and SQLSTATE classification, each done once here. Every SQL statement
//! clonesync runs is in this module.
//!
//! Two layers: the value types ([`name`], [`lsn`], [`secret`], [`quote`])
//! sit at the bottom of the library beside [`crate::error`], so the domain
//! ([`crate::pipeline`]) can use them; the rest (sessions and catalog
//! queries) is the adapter, which may import the domain but nothing above
//! it.

pub mod checksum;
pub mod connect;
pub mod conninfo;
pub mod ddl;
pub(crate) mod drift;
pub mod lag;
pub mod login;
pub(crate) mod lsn;
pub(crate) mod name;
pub mod publication;
pub mod quote;
pub(crate) mod secret;
pub mod sequences;
pub mod server;
pub mod slot;
pub mod sqlstate;
pub mod stream;
pub mod subscription;
pub(crate) mod tls;
pub mod wal;

pub use connect::{connect, Endpoint, SearchPath, SessionSettings};
pub use conninfo::ConnectionUrl;
pub use lsn::Lsn;
pub use name::{PgName, SlotName, TableName};
pub use secret::Secret;
pub use tls::{Tls, TrustedRoots};
