//! A moto server (the AWS emulator) per test, on a free port, killed on
//! drop. `tools/install` pins moto in a virtual environment under
//! `$CLONESYNC_TOOLS` (default `/var/cache/clonesync-tools`);
//! `CLONESYNC_MOTO_SERVER` names another `moto_server`.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use clonesync::aws::{AwsClients, Settings};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto's default account.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "eu-west-1";
pub const TABLE: &str = "clonesync-registry";

pub struct Moto {
    child: Child,
    pub port: u16,
}

fn moto_server() -> PathBuf {
    if let Ok(path) = std::env::var("CLONESYNC_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let tools =
        std::env::var("CLONESYNC_TOOLS").unwrap_or_else(|_| "/var/cache/clonesync-tools".into());
    let cached = PathBuf::from(tools).join("venv/bin/moto_server");
    if cached.is_file() {
        return cached;
    }
    PathBuf::from("moto_server")
}

impl Moto {
    pub fn start() -> Moto {
        let port = clonesync::local::server::free_port().expect("free port");
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "moto_server must be installed: run .ci/run once, or set CLONESYNC_MOTO_SERVER",
            );
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_rds::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }

    /// Every client against moto (one account plays source and target).
    pub async fn clients(&self) -> AwsClients {
        let config = self.sdk_config().await;
        AwsClients::from_configs(&config, &config)
    }

    pub fn settings(&self) -> Settings {
        Settings {
            region: REGION.into(),
            target_account: ACCOUNT.into(),
            source_role_arn: None,
            source_role_external_id: None,
            registry_table: TABLE.into(),
            db_tls: clonesync::pg::Tls::Disable,
        }
    }

    /// The registry table as template.yaml defines it.
    pub async fn create_registry(&self, clients: &AwsClients) {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        clients
            .dynamodb
            .create_table()
            .table_name(TABLE)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The AWS [`Cloud`](clonesync::cloud::Cloud) a Lambda builds, from the
/// given clients (moto's, or mocks put in their place).
pub fn context(clients: &AwsClients, settings: &Settings) -> clonesync::lambda::Context {
    clonesync::lambda::Context {
        settings: settings.clone(),
        clients: clients.clone(),
    }
}
