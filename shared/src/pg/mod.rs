//! The PostgreSQL adapter: sessions, names, quoting, LSNs, catalog queries,
//! and SQLSTATE classification, each done once here.

pub mod connect;
pub mod lsn;
pub mod name;
pub mod publication;
pub mod quote;
pub mod secret;
pub mod server;
pub mod slot;
pub mod sqlstate;
pub mod subscription;
pub mod tls;

pub use connect::{connect, Endpoint, SessionSettings};
pub use lsn::Lsn;
pub use name::{PgName, SlotName, TableName};
pub use secret::Secret;
pub use tls::{Tls, TrustedRoots};
