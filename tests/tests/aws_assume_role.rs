//! Source-account calls go through the assumed source role: with moto, a
//! role ARN in account 111122223333 makes the source clients act in that
//! account, while the target clients stay in moto's default account.
//! (Its own test binary: it sets process environment variables.)

use clonesync::aws::{AwsClients, Settings};
use clonesync_tests::moto::{Moto, ACCOUNT, REGION};

const SOURCE_ACCOUNT: &str = "111122223333";

#[tokio::test]
async fn source_clients_act_in_the_source_account() {
    let moto = Moto::start();
    // The standard variables aws-config reads, as Lambda would set them
    // (the endpoint pointing at moto instead of AWS).
    std::env::set_var("AWS_ENDPOINT_URL", moto.endpoint());
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let settings = Settings {
        source_role_arn: Some(format!(
            "arn:aws:iam::{SOURCE_ACCOUNT}:role/clonesync-source"
        )),
        source_role_external_id: Some("shared-secret-id".into()),
        ..moto.settings()
    };
    let clients = AwsClients::from_env(&settings).await;

    let in_source = clients
        .source_secrets
        .create_secret()
        .name("clonesync/orders-repl")
        .secret_string(r#"{"username":"repl","password":"x"}"#)
        .send()
        .await
        .unwrap();
    let arn = in_source.arn().unwrap();
    assert!(arn.contains(&format!(":{SOURCE_ACCOUNT}:")), "{arn}");
    assert!(arn.contains(REGION));

    let in_target = clients
        .secrets
        .create_secret()
        .name("clonesync/clone-login")
        .secret_string(r#"{"username":"app","password":"y"}"#)
        .send()
        .await
        .unwrap();
    assert!(in_target.arn().unwrap().contains(&format!(":{ACCOUNT}:")));

    // Each side sees only its own account's secrets.
    let listed = clients.secrets.list_secrets().send().await.unwrap();
    let names: Vec<&str> = listed
        .secret_list()
        .iter()
        .filter_map(|s| s.name())
        .collect();
    assert_eq!(names, ["clonesync/clone-login"]);
}
