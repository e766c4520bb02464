//! IAM enforced in the emulator (`clonesync_local::iam`): every AWS call a
//! function makes in a whole pipeline life — the setup, verify, switchover
//! and teardown state machines, the RAM and RDS events, the monitor, pause,
//! resume, refresh, drift — is allowed by that function's role in
//! `template.yaml` (or by the source role it assumes); no statement is
//! there for nothing (removing any one denies a call of that life, named
//! by function and action); and a run whose role lacks a statement fails
//! with `Aws.AccessDenied` naming the function and the action, as on AWS.

use clonesync_local::iam::{
    Account, Decision, Enforcer, Policies, Statement, SOURCE_ROLE, TEMPLATE,
};
use clonesync_local::moto::{ACCOUNT, REGION, REGISTRY_TABLE, RUNS_BUCKET};
use clonesync_local::LocalRuntime;
use clonesync_tests::fixture::DB;
use clonesync_tests::pipeline::short_waits;
use clonesync_tests::{create_schema, TestEnv};
use serde_json::json;
use serde_yaml::Value as Yaml;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Statements no local call can need, each for its reason.
const NOT_CALLED_BY_CODE: &[(&str, &str)] = &[
    (
        "NetworkInterfacesInTheVpc",
        "the Lambda service's calls to attach a function to the VPC",
    ),
    (
        "EncryptTheClone",
        "RDS's grant on a customer-managed KMS key (clone.kms_key_id); local clones are unencrypted",
    ),
    (
        "ReadCloneLogins",
        "a clone login secret (clone.secret_arn); a local clone uses the source's login",
    ),
    (
        "DecryptCloneLoginsThroughSecretsManager",
        "a clone login secret under a customer-managed KMS key",
    ),
    (
        "CompleteATaggedShare",
        "AssociateResourceShare: only when someone removed the target account from the share \
         (aws_ram's a_reused_share_missing_the_principal_is_completed); a local share keeps it",
    ),
];

fn not_called_by_code(sid: &str) -> bool {
    NOT_CALLED_BY_CODE.iter().any(|(s, _)| *s == sid)
}

async fn runtime_with(env: &TestEnv, enforcer: Option<Arc<Enforcer>>) -> LocalRuntime {
    let work = env.root_path.join("cloud");
    match enforcer {
        Some(enforcer) => LocalRuntime::start_with_iam(env.plane.clone(), &work, enforcer).await,
        None => LocalRuntime::start(env.plane.clone(), &work).await,
    }
    .expect("local runtime")
}

fn assert_succeeded(what: &str, outcome: &clonesync_local::runtime::RunOutcome) {
    assert!(
        outcome.succeeded(),
        "{what}: {} {:?} {:?}",
        outcome.status,
        outcome.error,
        outcome.cause
    );
}

/// Run `function`'s handler with `payload` as the runtime's Lambda
/// endpoint would (its calls checked against its role).
async fn invoke(runtime: &LocalRuntime, function: &str, payload: serde_json::Value) {
    clonesync_local::iam::as_function(
        function,
        clonesync::handlers::dispatch(&*runtime.cloud, function, payload),
    )
    .await
    .unwrap_or_else(|e| panic!("{function}: {} {e}", e.name()));
}

/// Remove every `clone_info` in a teardown input.
fn strip_clone_info(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("clone_info");
            map.values_mut().for_each(strip_clone_info);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_clone_info),
        _ => {}
    }
}

/// For each statement of `role` (a function's or the source role), the
/// first of `decisions` it alone allowed: removing it denies that call.
fn needed(
    role: &str,
    statements: &[Statement],
    decisions: &[&Decision],
    proofs: &mut Vec<String>,
    unneeded: &mut Vec<String>,
) {
    for (index, statement) in statements.iter().enumerate() {
        if not_called_by_code(&statement.sid) {
            continue;
        }
        let without: Vec<Statement> = statements
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != index)
            .map(|(_, s)| s.clone())
            .collect();
        match decisions
            .iter()
            .find(|d| Policies::decide(&without, &d.request).is_none())
        {
            Some(denied) => proofs.push(format!(
                "without {role}'s {}: {} denies {} on {}",
                statement.sid, denied.function, denied.request.action, denied.request.resource
            )),
            None => unneeded.push(format!("{role}: {}", statement.sid)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whole_life_is_allowed_and_every_statement_is_needed() {
    let env = TestEnv::start().await;
    create_schema(&env.source_client().await).await;
    let runtime = runtime_with(&env, None).await;
    // A setup that fails late: Cleanup undoes the clone, the share and the
    // source's objects.
    runtime.faults.add(clonesync_local::invoke::Fault {
        function: "advance-and-enable".into(),
        error_type: "Database.Failed".into(),
        times: None,
    });
    let input = runtime.request(
        "iam_failed",
        json!({"kind": "all_tables"}),
        DB,
        short_waits(),
    );
    let failed = runtime
        .run("iam-failed", &input, &mut |_| {})
        .await
        .unwrap();
    assert!(!failed.succeeded(), "the fault did not fail the setup");
    runtime.faults.clear();
    let id = "iam_life";
    let input = runtime.request(id, json!({"kind": "all_tables"}), DB, short_waits());
    let setup = runtime.run("iam-setup", &input, &mut |_| {}).await.unwrap();
    assert_succeeded("setup", &setup);
    let state = setup.state().unwrap();
    // Again: record-inventory looks up the earlier setup's execution.
    let again = runtime
        .run("iam-setup-again", &input, &mut |_| {})
        .await
        .unwrap();
    assert_succeeded("setup again", &again);
    // The waits' own completion, when what they wait for is there already
    // (the events usually come first here): with a token Step Functions
    // no longer knows, which the handlers take as already completed.
    let state_json = serde_json::to_value(&state).unwrap();
    for function in ["check-clone", "accept-share"] {
        invoke(
            &runtime,
            function,
            json!({"task_token": "AAAA-completed-already", "state": state_json}),
        )
        .await;
    }

    for (function, payload) in [
        ("lag-monitor", json!({})),
        ("drift-report", json!({"pipeline_id": id})),
        ("refresh-tables", json!({"pipeline_id": id})),
        ("pause-pipeline", json!({"pipeline_id": id})),
        ("resume-pipeline", json!({"pipeline_id": id})),
    ] {
        invoke(&runtime, function, payload).await;
    }
    let verify = runtime
        .run_verify("iam-verify", &json!({"pipeline_id": id}), &mut |_| {})
        .await
        .unwrap();
    assert_succeeded("verify", &verify);
    // A plan one table longer than the Map verified: its last verdict is
    // missing, which S3 says (NoSuchKey, so Verify.Incomplete) only to a
    // role that may list the bucket; to any other it is AccessDenied.
    let mut plan = verify.output.as_ref().unwrap()["plan"].clone();
    plan["tables"] = json!(plan["tables"].as_u64().unwrap() + 1);
    let incomplete = clonesync_local::iam::as_function(
        "verify-report",
        clonesync::handlers::dispatch(
            &*runtime.cloud,
            "verify-report",
            json!({"pipeline_id": id, "plan": plan}),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(incomplete.name(), "Verify.Incomplete", "{incomplete}");
    let switchover = runtime
        .run_switchover(
            "iam-switchover",
            &json!({"pipeline_id": id, "quiet_seconds": 1}),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_succeeded("switchover", &switchover);
    // drop-databases for a record without the clone's address (a setup
    // that failed after making the clone) finds the clone through RDS.
    let loaded = clonesync_local::iam::as_function(
        "load-pipeline",
        clonesync::handlers::dispatch(&*runtime.cloud, "load-pipeline", json!({"pipeline_id": id})),
    )
    .await
    .unwrap();
    let mut without_address = loaded.clone();
    strip_clone_info(&mut without_address);
    assert_ne!(
        loaded, without_address,
        "the teardown input carries the clone's address"
    );
    invoke(&runtime, "drop-databases", without_address).await;
    runtime
        .teardown_by_state_machine(&state, &mut |_| {})
        .await
        .unwrap();

    let iam = runtime.cloud.iam().expect("the runtime enforces IAM");
    let decisions = iam.decisions();
    let denials: Vec<&Decision> = decisions
        .iter()
        .filter(|d| d.allowed_by.is_none())
        .collect();
    assert!(denials.is_empty(), "denied in a whole life: {denials:#?}");

    let policies = Policies::from_template(TEMPLATE, iam.substitutions()).unwrap();
    // The list of exceptions names only statements that exist.
    for (sid, _) in NOT_CALLED_BY_CODE {
        assert!(
            policies
                .functions
                .values()
                .chain([&policies.source_role])
                .flatten()
                .any(|s| s.sid == *sid),
            "NOT_CALLED_BY_CODE names {sid}, which no role has"
        );
    }
    let called: BTreeSet<&str> = decisions.iter().map(|d| d.function.as_str()).collect();
    let uncalled: Vec<&String> = policies
        .functions
        .iter()
        .filter(|(name, statements)| !statements.is_empty() && !called.contains(name.as_str()))
        .map(|(name, _)| name)
        .collect();
    assert!(
        uncalled.is_empty(),
        "functions with a role no call of the life used: {uncalled:?}"
    );

    let (mut proofs, mut unneeded) = (Vec::new(), Vec::new());
    for (function, statements) in &policies.functions {
        let own: Vec<&Decision> = decisions
            .iter()
            .filter(|d| &d.function == function && d.account == Account::Target)
            .collect();
        needed(function, statements, &own, &mut proofs, &mut unneeded);
    }
    let source: Vec<&Decision> = decisions
        .iter()
        .filter(|d| d.account == Account::Source)
        .collect();
    needed(
        SOURCE_ROLE,
        &policies.source_role,
        &source,
        &mut proofs,
        &mut unneeded,
    );
    assert!(
        unneeded.is_empty(),
        "statements no call of a whole life needs (remove them, or name why in NOT_CALLED_BY_CODE): {unneeded:#?}"
    );
    // Each service's statements are among those proven needed.
    for service in [
        "dynamodb:",
        "states:",
        "rds:",
        "ram:",
        "secretsmanager:",
        "sts:",
        "s3:",
    ] {
        assert!(
            proofs
                .iter()
                .any(|p| p.contains(&format!(" denies {service}"))),
            "no statement of {service} proven needed: {proofs:#?}"
        );
    }
    println!("{}", proofs.join("\n"));
}

/// The template with statement `sid` removed from `resource`'s policy.
fn without_statement(resource: &str, sid: &str) -> String {
    let mut template: Yaml = serde_yaml::from_str(TEMPLATE).unwrap();
    let policies = &mut template["Resources"][resource]["Properties"]["Policies"];
    let mut removed = 0;
    for policy in policies.as_sequence_mut().unwrap() {
        let statements = if policy.get("PolicyDocument").is_some() {
            &mut policy["PolicyDocument"]["Statement"]
        } else {
            &mut policy["Statement"]
        };
        if let Some(list) = statements.as_sequence_mut() {
            let before = list.len();
            list.retain(|s| s["Sid"].as_str() != Some(sid));
            removed += before - list.len();
        }
    }
    assert_eq!(removed, 1, "{resource} has one statement {sid}");
    serde_yaml::to_string(&template).unwrap()
}

/// A setup whose role lacks one statement fails at that function's state
/// with `Aws.AccessDenied`, naming the function and the action: for the
/// registry (DynamoDB, through moto) and for the clone (RDS, played by the
/// local cloud).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_role_without_a_statement_fails_the_run_naming_function_and_action() {
    for (resource, sid, state, function, action) in [
        (
            "Preflight",
            "ListPipelines",
            "Preflight",
            "preflight",
            "dynamodb:Scan",
        ),
        (
            "CreateClone",
            "CloneTheSharedCluster",
            "CreateClone",
            "create-clone",
            "rds:RestoreDBClusterToPointInTime",
        ),
    ] {
        let env = TestEnv::start().await;
        create_schema(&env.source_client().await).await;
        let subs = clonesync_local::iam::Substitutions::local(
            REGION,
            ACCOUNT,
            REGISTRY_TABLE,
            RUNS_BUCKET,
        );
        let policies = Policies::from_template(&without_statement(resource, sid), &subs).unwrap();
        let runtime = runtime_with(&env, Some(Enforcer::new(policies, subs))).await;
        let input = runtime.request(
            "iam_denied",
            json!({"kind": "all_tables"}),
            DB,
            short_waits(),
        );
        let mut failed_in = Vec::new();
        let outcome = runtime
            .run("iam-denied", &input, &mut |p| {
                if let clonesync_local::runtime::Progress::TaskFailed { state, error } = p {
                    failed_in.push((state.clone(), error.clone()));
                }
            })
            .await
            .unwrap();
        assert!(
            !outcome.succeeded(),
            "{sid} removed and the setup succeeded"
        );
        assert!(
            failed_in
                .iter()
                .any(|(s, e)| s == state && e.contains("Aws.AccessDenied")),
            "{sid} removed: expected {state} to fail with Aws.AccessDenied: {failed_in:?} {:?}",
            outcome.cause
        );
        let denials = runtime.cloud.iam().unwrap().denials();
        let denial = denials
            .iter()
            .find(|d| d.function == function && d.request.action == action)
            .unwrap_or_else(|| panic!("{sid} removed: {denials:#?}"));
        // What the function's error says (the Lambda errorMessage).
        let message =
            clonesync_local::iam::denial_message(function, denial.account, &denial.request);
        assert!(
            message.contains(function) && message.contains(action),
            "{message}"
        );
    }
}

/// The runs bucket (S3, through moto) is enforced too: a verify-plan role
/// without its write fails the verification at VerifyPlan with
/// `Aws.AccessDenied` naming the function and `s3:PutObject`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_verify_plan_role_without_its_bucket_write_fails_the_verification() {
    let env = TestEnv::start().await;
    create_schema(&env.source_client().await).await;
    let subs =
        clonesync_local::iam::Substitutions::local(REGION, ACCOUNT, REGISTRY_TABLE, RUNS_BUCKET);
    let policies = Policies::from_template(
        &without_statement("VerifyPlan", "WriteVerificationRuns"),
        &subs,
    )
    .unwrap();
    let runtime = runtime_with(&env, Some(Enforcer::new(policies, subs))).await;
    let id = "iam_verify";
    let input = runtime.request(id, json!({"kind": "all_tables"}), DB, short_waits());
    let setup = runtime.run("iam-setup", &input, &mut |_| {}).await.unwrap();
    assert_succeeded("setup", &setup);
    let mut failed_in = Vec::new();
    let outcome = runtime
        .run_verify("iam-verify-denied", &json!({"pipeline_id": id}), &mut |p| {
            if let clonesync_local::runtime::Progress::TaskFailed { state, error } = p {
                failed_in.push((state.clone(), error.clone()));
            }
        })
        .await
        .unwrap();
    assert!(!outcome.succeeded(), "the plan wrote without its statement");
    assert!(
        failed_in
            .iter()
            .any(|(s, e)| s == "VerifyPlan" && e.contains("Aws.AccessDenied")),
        "{failed_in:?} {:?}",
        outcome.cause
    );
    let denials = runtime.cloud.iam().unwrap().denials();
    assert!(
        denials
            .iter()
            .any(|d| d.function == "verify-plan" && d.request.action == "s3:PutObject"),
        "{denials:#?}"
    );
}

/// The state machines' own roles, which moto's engine does not present:
/// every call each definition makes (its functions, and for a Distributed
/// Map its children and its items in the runs bucket) is allowed by that
/// state machine's role in the template, and each statement of each role
/// is needed — without it a call is denied, named by state machine and
/// action. A call the derivation does not model is refused, not passed.
#[test]
fn every_state_machine_role_allows_what_its_definition_calls_and_no_statement_is_spare() {
    let subs =
        clonesync_local::iam::Substitutions::local(REGION, ACCOUNT, REGISTRY_TABLE, RUNS_BUCKET);
    let policies = Policies::from_template(TEMPLATE, &subs).unwrap();
    assert_eq!(
        policies.machines.keys().collect::<Vec<_>>(),
        [
            "clonesync-setup",
            "clonesync-switchover",
            "clonesync-teardown",
            "clonesync-verify"
        ]
    );
    let mut proofs = Vec::new();
    for machine in policies.machines.values() {
        let path = format!(
            "{}/../{}",
            env!("CARGO_MANIFEST_DIR"),
            machine.definition_uri
        );
        let definition = std::fs::read_to_string(&path).unwrap();
        // The template wires each task to the function the local runtime
        // runs it with.
        let local: serde_json::Value =
            serde_json::from_str(&clonesync_local::runtime::substitute(&definition).unwrap())
                .unwrap();
        assert_eq!(
            machine.resolve(&definition).unwrap(),
            local,
            "{}",
            machine.name
        );
        let requests = machine.requests(&definition, &subs).unwrap();
        assert!(
            requests.iter().any(|r| r.action == "lambda:InvokeFunction"),
            "{}: no function derived",
            machine.name
        );
        machine
            .authorize(&requests)
            .unwrap_or_else(|e| panic!("{}: {e}", machine.name));
        for index in 0..machine.statements.len() {
            let mut without = machine.clone();
            let removed = without.statements.remove(index);
            let error = without.authorize(&requests).expect_err(&format!(
                "{}: statement {} is needed by no call",
                machine.name, removed.sid
            ));
            assert_eq!(error.name(), "Aws.AccessDenied");
            let message = error.to_string();
            assert!(
                message.contains(&format!("state machine {}'s role may not", machine.name)),
                "{message}"
            );
            proofs.push(format!(
                "{} without {}: {message}",
                machine.name, removed.sid
            ));
        }
    }
    // The Distributed Maps' own needs are among those proven (Stop is
    // granted with Describe, by one statement).
    for action in [
        "states:StartExecution",
        "states:DescribeExecution",
        "s3:GetObject",
    ] {
        assert!(
            proofs
                .iter()
                .any(|p| p.contains("clonesync-verify") && p.contains(action))
                && proofs
                    .iter()
                    .any(|p| p.contains("clonesync-switchover") && p.contains(action)),
            "{action} not proven needed for both maps: {proofs:#?}"
        );
    }
    println!("{}", proofs.join("\n"));

    // A service integration the derivation does not know is refused.
    let verify = &policies.machines["clonesync-verify"];
    let unknown = r#"{"StartAt": "P", "States": {"P": {"Type": "Task",
        "Resource": "arn:aws:states:::sns:publish", "End": true}}}"#;
    let error = verify.requests(unknown, &subs).unwrap_err();
    assert!(
        error.to_string().contains("sns:publish is not modeled"),
        "{error}"
    );
}

/// AWS-BEHAVIOURS row 14: a secret under a customer-managed KMS key is
/// decrypted with the caller's own `kms:Decrypt`, which Secrets Manager
/// asks for on its behalf. Every role that may read a secret (the source
/// role: the source login; the functions: clone logins) may decrypt
/// through Secrets Manager, and may not decrypt directly or through any
/// other service. The whole-life test proves the source role's statement
/// needed (the local source secret plays one under such a key).
#[test]
fn every_role_that_reads_a_secret_decrypts_it_through_secrets_manager_only() {
    use clonesync_local::iam::{calls::secret_key_arn, Request, Substitutions};
    let subs = Substitutions::local(REGION, ACCOUNT, REGISTRY_TABLE, RUNS_BUCKET);
    let policies = Policies::from_template(TEMPLATE, &subs).unwrap();
    let secrets = [
        subs.source_secret_arn.clone(),
        format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:clonesync/orders-AbCdEf"),
    ];
    let key = secret_key_arn(&subs);
    let decrypt = |service: Option<&str>| {
        let request = Request::new("kms:Decrypt", key.clone());
        match service {
            Some(s) => request.with("kms:ViaService", &[&format!("{s}.{REGION}.amazonaws.com")]),
            None => request,
        }
    };
    let roles = policies
        .functions
        .iter()
        .map(|(name, statements)| (name.as_str(), statements.as_slice()))
        .chain([("the source role", policies.source_role.as_slice())]);
    let mut readers = Vec::new();
    for (role, statements) in roles {
        let reads = secrets.iter().any(|secret| {
            Policies::decide(
                statements,
                &Request::new("secretsmanager:GetSecretValue", secret.clone()),
            )
            .is_some()
        });
        if !reads {
            continue;
        }
        readers.push(role);
        assert!(
            Policies::decide(statements, &decrypt(Some("secretsmanager"))).is_some(),
            "{role} reads a secret but may not decrypt it through Secrets Manager"
        );
        for other in [None, Some("s3"), Some("lambda")] {
            assert!(
                Policies::decide(statements, &decrypt(other)).is_none(),
                "{role} may decrypt outside Secrets Manager ({other:?})"
            );
        }
    }
    // The source role and the functions that read clone logins.
    assert!(readers.contains(&"the source role"), "{readers:?}");
    assert!(readers.len() > 1, "{readers:?}");
}
