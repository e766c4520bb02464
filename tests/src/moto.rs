//! A moto server per test ([`clonesync_local::moto::MotoServer`]), on a
//! free port, killed on drop.

use clonesync::aws::{AwsClients, Settings};
use clonesync_local::moto::{create_registry, MotoServer};
pub use clonesync_local::moto::{ACCOUNT, REGION};
use std::ops::Deref;

pub const TABLE: &str = "clonesync-registry";

pub struct Moto(MotoServer);

impl Deref for Moto {
    type Target = MotoServer;

    fn deref(&self) -> &MotoServer {
        &self.0
    }
}

impl Moto {
    /// moto without Lambda tasks (port 0: none are expected).
    pub fn start() -> Moto {
        Moto(MotoServer::start(0).expect(
            "moto_server must be installed: run tools/install, or set CLONESYNC_MOTO_SERVER",
        ))
    }

    pub fn settings(&self) -> Settings {
        Settings {
            region: REGION.into(),
            target_account: ACCOUNT.into(),
            source_role_arn: None,
            source_role_external_id: None,
            registry_table: TABLE.into(),
            runs_bucket: None,
            db_tls: clonesync::pg::Tls::Disable,
        }
    }

    /// The registry table as template.yaml defines it.
    pub async fn create_registry(&self, clients: &AwsClients) {
        create_registry(&clients.dynamodb, TABLE)
            .await
            .expect("create the registry table");
    }
}

/// The AWS [`Cloud`](clonesync::ports::Cloud) a Lambda builds, from the
/// given clients (moto's, or mocks put in their place).
pub fn context(clients: &AwsClients, settings: &Settings) -> clonesync::aws::AwsCloud {
    clonesync::aws::AwsCloud {
        settings: settings.clone(),
        clients: clients.clone(),
    }
}
