//! Contracts between the state machine, the template, the function
//! packages and the error enum. (cfn-lint and the ASL validator run in
//! .ci/run.)

use clonesync::Error;
use serde_json::Value;
use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn asl() -> Value {
    asl_named("setup")
}

fn asl_named(name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join(format!("statemachine/{name}.asl.json"))).unwrap(),
    )
    .unwrap()
}

/// Every state machine with its template resource.
fn machines() -> [(&'static str, Value); 4] {
    [
        ("Setup", asl()),
        ("Teardown", asl_named("teardown")),
        ("VerifyMachine", asl_named("verify")),
        ("Switchover", asl_named("switchover")),
    ]
}

fn template() -> Yaml {
    serde_yaml::from_str(&std::fs::read_to_string(root().join("template.yaml")).unwrap()).unwrap()
}

/// `!GetAtt X.Arn` / `!Ref X` come out of serde_yaml as tagged values.
fn tagged<'a>(value: &'a Yaml, tag: &str) -> Option<&'a Yaml> {
    match value {
        Yaml::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

fn resources(template: &Yaml) -> &serde_yaml::Mapping {
    template["Resources"].as_mapping().unwrap()
}

fn functions(template: &Yaml) -> BTreeMap<String, &Yaml> {
    resources(template)
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(k, r)| (k.as_str().unwrap().to_string(), r))
        .collect()
}

fn states(asl: &Value) -> Vec<(String, Value)> {
    asl["States"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The substitution variable a Task invokes, e.g. `PrepareSourceArn`.
fn invoked_variable(state: &Value) -> Option<String> {
    let resource = state["Resource"].as_str()?;
    let text = if resource.starts_with("arn:aws:states:::lambda:invoke") {
        state["Parameters"]["FunctionName"].as_str()?
    } else {
        resource
    };
    text.strip_prefix("${")
        .and_then(|t| t.strip_suffix('}'))
        .map(str::to_string)
}

fn pascal(kebab: &str) -> String {
    kebab
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn every_task_invokes_a_function_defined_in_the_template() {
    let template = template();
    let functions = functions(&template);
    let mut tasks = 0;
    for (machine, asl) in machines() {
        let machine = &resources(&template)[machine];
        let substitutions = machine["Properties"]["DefinitionSubstitutions"]
            .as_mapping()
            .unwrap();
        for (name, state) in states(&asl) {
            if state["Type"] != "Task" {
                continue;
            }
            tasks += 1;
            let variable = invoked_variable(&state)
                .unwrap_or_else(|| panic!("{name}: no ${{...Arn}} function"));
            let target = substitutions
                .get(variable.as_str())
                .unwrap_or_else(|| panic!("{name}: {variable} is not in DefinitionSubstitutions"));
            let get_att =
                tagged(target, "!GetAtt").unwrap_or_else(|| panic!("{variable} is not !GetAtt"));
            let logical = get_att.as_str().unwrap().strip_suffix(".Arn").unwrap();
            assert!(
                functions.contains_key(logical),
                "{name}: {logical} is not a function in template.yaml"
            );
            assert_eq!(
                format!("{logical}Arn"),
                variable,
                "substitution names its function"
            );
        }
    }
    assert!(tasks >= 21, "only {tasks} tasks found");
}

#[test]
fn every_custom_error_name_in_the_asl_is_in_the_error_enum() {
    let mut seen = BTreeSet::new();
    for (name, state) in machines().iter().flat_map(|(_, asl)| states(asl)) {
        for clause in ["Retry", "Catch"] {
            for rule in state[clause].as_array().into_iter().flatten() {
                for error in rule["ErrorEquals"].as_array().unwrap() {
                    let error = error.as_str().unwrap();
                    if error.starts_with("States.") || error.starts_with("Lambda.") {
                        continue;
                    }
                    assert!(
                        Error::NAMES.contains(&error),
                        "{name}: {error} is not an Error name"
                    );
                    seen.insert(error.to_string());
                }
            }
        }
    }
    for expected in [
        "Transient.Database",
        "Transient.Aws",
        "Share.NotReady",
        "Clone.NotReady",
    ] {
        assert!(seen.contains(expected), "{expected} is never retried");
    }
}

#[test]
fn every_lambda_task_retries_service_and_transient_errors_and_catches_into_cleanup() {
    for (name, state) in machines().iter().flat_map(|(_, asl)| states(asl)) {
        if state["Type"] != "Task" {
            continue;
        }
        let retried: BTreeSet<&str> = state["Retry"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no Retry"))
            .iter()
            .flat_map(|r| {
                r["ErrorEquals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_str().unwrap())
            })
            .collect();
        for needed in [
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException",
            "Transient.Database",
            "Transient.Aws",
        ] {
            assert!(retried.contains(needed), "{name} does not retry {needed}");
        }
        let catches = state["Catch"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no Catch"));
        let all = catches
            .iter()
            .find(|c| {
                c["ErrorEquals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e == "States.ALL")
            })
            .unwrap_or_else(|| panic!("{name}: no States.ALL catch"));
        // The error goes next to the input, which is kept for cleanup.
        let expected_path = if name == "Cleanup" {
            "$.cleanup_error"
        } else {
            "$.error"
        };
        assert_eq!(all["ResultPath"], expected_path, "{name}");
        let next = all["Next"].as_str().unwrap();
        assert!(
            ["Cleanup", "Failed", "CloneMayExist"].contains(&next),
            "{name} catches into {next}"
        );
    }
}

#[test]
fn after_the_first_creation_every_failure_runs_cleanup_and_fails_with_the_original_error() {
    let asl = asl();
    let before_anything_exists = ["ValidateInput", "Preflight", "Cleanup"];
    for (name, state) in states(&asl) {
        // A re-seed's teardown comes before this run makes anything; it
        // is idempotent, so a failure there just fails the run.
        if state["Type"] != "Task"
            || before_anything_exists.contains(&name.as_str())
            || name.starts_with("Reseed")
        {
            continue;
        }
        let all = state["Catch"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["ErrorEquals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e == "States.ALL")
            })
            .unwrap();
        // Straight to Cleanup, or through a Pass state that records what
        // may exist and then goes there.
        let next = all["Next"].as_str().unwrap();
        let through = &asl["States"][next];
        assert!(
            next == "Cleanup" || (through["Type"] == "Pass" && through["Next"] == "Cleanup"),
            "{name} catches into {next}"
        );
    }
    assert_eq!(
        asl["States"]["CloneMayExist"]["ResultPath"], "$.created.clone",
        "a failed CreateClone still lets cleanup delete the clone"
    );
    assert_eq!(asl["States"]["Cleanup"]["Next"], "Failed");
    assert_eq!(asl["States"]["Failed"]["Type"], "Fail");
    assert_eq!(asl["States"]["Failed"]["ErrorPath"], "$.error.Error");
    assert_eq!(asl["States"]["Failed"]["CausePath"], "$.error.Cause");
    assert_eq!(asl["StartAt"], "ValidateInput");
    assert_eq!(
        asl["States"]["Preflight"]["Next"], "RecordInventory",
        "the inventory is written before anything is made"
    );
    assert_eq!(asl["States"]["RecordInventory"]["Next"], "KeepSetupMark");
    // The recorded setup mark (a setup run again drew a new one) is what
    // every later step marks and judges the source's objects by.
    let keep = &asl["States"]["KeepSetupMark"];
    assert_eq!(keep["Type"], "Pass");
    assert_eq!(keep["InputPath"], "$.inventory.setup_mark");
    assert_eq!(keep["ResultPath"], "$.pipeline.setup_mark");
    assert_eq!(keep["Next"], "PrepareSource");
    assert_eq!(
        asl["States"]["RecordInventory"]["ResultSelector"]["setup_mark.$"],
        "$.Payload.setup_mark"
    );
}

#[test]
fn teardown_checks_first_deregisters_last_and_fails_with_the_error() {
    let asl = asl_named("teardown");
    assert_eq!(asl["StartAt"], "LoadPipeline");
    assert_eq!(asl["States"]["LoadPipeline"]["ResultPath"], "$");
    assert_eq!(asl["States"]["Deregister"]["Next"], "TornDown");
    let mut next = asl["StartAt"].as_str().unwrap().to_string();
    let mut order = Vec::new();
    while let Some(state) = asl["States"].get(&next) {
        order.push(next.clone());
        next = match state["Type"].as_str().unwrap() {
            "Choice" => state["Choices"][0]["Next"].as_str().unwrap().to_string(),
            _ => match state["Next"].as_str() {
                Some(n) => n.to_string(),
                None => break,
            },
        };
    }
    assert_eq!(
        order,
        [
            "LoadPipeline",
            "DropDatabases",
            "DeleteCloneOrNot",
            "DeleteClone",
            "CloneGone",
            "DeleteShareOrNot",
            "DeleteShare",
            "Deregister",
            "TornDown"
        ]
    );
    let gone = &asl["States"]["CloneGone"]["Retry"];
    assert!(
        gone.as_array()
            .unwrap()
            .iter()
            .any(|r| r["ErrorEquals"][0] == "Clone.NotReady"
                && r["MaxAttempts"].as_u64().is_some_and(|n| n > 0 && n <= 100)),
        "the wait for the clone to go is bounded"
    );
    assert_eq!(asl["States"]["Failed"]["ErrorPath"], "$.error.Error");
}

#[test]
fn the_waits_use_task_tokens_with_bounded_timeouts_and_a_polling_fallback() {
    let asl = asl();
    let defaults = serde_json::to_value(clonesync::pipeline::Waits::default()).unwrap();
    for (wait, poll, not_ready, kind) in [
        ("WaitForShare", "PollShare", "Share.NotReady", "share"),
        ("WaitForClone", "PollClone", "Clone.NotReady", "clone"),
    ] {
        let state = &asl["States"][wait];
        assert_eq!(
            state["Resource"],
            "arn:aws:states:::lambda:invoke.waitForTaskToken"
        );
        assert_eq!(
            state["Parameters"]["Payload"]["task_token.$"],
            "$$.Task.Token"
        );
        // The limits come from the state (validate-input bounds them and
        // fills in the defaults), so a local run can shorten them.
        let heartbeat_field = format!("{kind}_heartbeat_seconds");
        let timeout_field = format!("{kind}_timeout_seconds");
        assert_eq!(
            state["HeartbeatSecondsPath"],
            format!("$.waits.{heartbeat_field}")
        );
        assert_eq!(
            state["TimeoutSecondsPath"],
            format!("$.waits.{timeout_field}")
        );
        let heartbeat = defaults[&heartbeat_field].as_u64().unwrap();
        let timeout = defaults[&timeout_field].as_u64().unwrap();
        assert!(heartbeat < timeout, "{wait}");
        let fallback = state["Catch"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["ErrorEquals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e == "States.Timeout")
            })
            .unwrap();
        assert_eq!(fallback["Next"], poll);
        let poll_retry = asl["States"][poll]["Retry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["ErrorEquals"][0] == not_ready)
            .unwrap_or_else(|| panic!("{poll} does not retry {not_ready}"))
            .clone();
        assert!(poll_retry["MaxAttempts"].as_u64().unwrap() > 0, "bounded");
        assert_eq!(asl["States"][poll]["Next"], state["Next"]);
    }
}

#[test]
fn every_function_package_is_in_the_template_under_its_own_name_and_vice_versa() {
    let template = template();
    let functions = functions(&template);
    let mut packages = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("functions")).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("Cargo.toml").is_file() {
            continue;
        }
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "package {name} is named after its directory"
        );
        let logical = pascal(&name);
        let function = functions
            .get(&logical)
            .unwrap_or_else(|| panic!("functions/{name} has no {logical} in template.yaml"));
        // The package tools/build-lambdas leaves (one workspace build),
        // deployed as it is: no per-function SAM build method.
        assert_eq!(
            function["Properties"]["CodeUri"].as_str(),
            Some(format!("target/lambda/{name}").as_str())
        );
        assert!(
            function["Metadata"]["BuildMethod"].is_null(),
            "{logical}: a BuildMethod makes sam build compile the dependencies again for it"
        );
        packages.insert(logical);
    }
    let defined: BTreeSet<String> = functions.keys().cloned().collect();
    assert_eq!(packages, defined);
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
}

fn actions(statement: &Yaml) -> Vec<String> {
    match &statement["Action"] {
        Yaml::String(a) => vec![a.clone()],
        Yaml::Sequence(list) => list
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}

#[test]
fn no_policy_grants_a_wildcard_action() {
    let template = template();
    let mut checked = 0;
    for (logical, resource) in resources(&template) {
        let documents: Vec<&Yaml> = match resource["Type"].as_str() {
            Some("AWS::Serverless::Function") => resource["Properties"]["Policies"]
                .as_sequence()
                .into_iter()
                .flatten()
                .collect(),
            Some("AWS::IAM::Role") => resource["Properties"]["Policies"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|p| &p["PolicyDocument"])
                .collect(),
            _ => continue,
        };
        for document in documents {
            for statement in document["Statement"].as_sequence().into_iter().flatten() {
                for action in actions(statement) {
                    checked += 1;
                    assert!(!action.contains('*'), "{logical:?} grants {action}");
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} actions checked");
}

#[test]
fn the_database_functions_run_in_the_vpc_and_the_others_do_not() {
    let template = template();
    let in_vpc = [
        "Preflight",
        "PrepareSource",
        "CloneLsn",
        "CleanInherited",
        "CreateSubscription",
        "AdvanceAndEnable",
        "Verify",
        "Cleanup",
        "LagMonitor",
        "DropDatabases",
        "PausePipeline",
        "ResumePipeline",
        "RefreshTables",
        "DriftReport",
        "VerifyPlan",
        "VerifyTable",
        "SyncSequences",
        "SwitchoverStart",
        "SwitchoverQuiet",
        "SwitchoverCatchUp",
        "SwitchoverFinish",
    ];
    for (logical, function) in functions(&template) {
        let has_vpc = !function["Properties"]["VpcConfig"].is_null();
        assert_eq!(has_vpc, in_vpc.contains(&logical.as_str()), "{logical}");
    }
}

#[test]
fn the_examples_are_valid_inputs() {
    for name in [
        "all-tables.json",
        "schemas.json",
        "tables.json",
        "reseed.json",
        "databases.json",
        "all-databases.json",
    ] {
        let text =
            std::fs::read_to_string(root().join("statemachine/examples").join(name)).unwrap();
        let input: Value = serde_json::from_str(&text).unwrap();
        let state = clonesync::workflow::state::validate(input, "eu-west-1")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(state.clone_id.starts_with("clonesync-"));
        assert_eq!(state.reseed, name == "reseed.json", "{name}");
        assert_eq!(
            state.source.several_databases(),
            name.contains("databases"),
            "{name}"
        );
        assert_eq!(
            state.apply_groups,
            if name == "databases.json" { 2 } else { 1 }
        );
    }
    let text = std::fs::read_to_string(root().join("statemachine/examples/pause.json")).unwrap();
    let _: clonesync::workflow::lifecycle::PauseInput = serde_json::from_str(&text).unwrap();
    for example in ["refresh-tables.json", "drift-report.json"] {
        let text =
            std::fs::read_to_string(root().join("statemachine/examples").join(example)).unwrap();
        let choice: clonesync::workflow::schema::PipelineChoice =
            serde_json::from_str(&text).unwrap();
        assert!(choice.pipeline_id.is_some(), "{example} names a pipeline");
    }
    for example in ["verify.json", "verify-tables.json"] {
        let text =
            std::fs::read_to_string(root().join("statemachine/examples").join(example)).unwrap();
        let request: clonesync::workflow::verify::VerifyRequest =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{example}: {e}"));
        request.options.check().unwrap();
    }
    let text =
        std::fs::read_to_string(root().join("statemachine/examples/sync-sequences.json")).unwrap();
    let request: clonesync::workflow::switchover::SequencesRequest =
        serde_json::from_str(&text).unwrap();
    request.headroom.check().unwrap();
    for example in ["switchover.json", "switchover-stopped.json"] {
        let text =
            std::fs::read_to_string(root().join("statemachine/examples").join(example)).unwrap();
        let _: clonesync::workflow::switchover::SwitchoverRequest =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{example}: {e}"));
    }
    let text = std::fs::read_to_string(root().join("statemachine/examples/teardown.json")).unwrap();
    // The id is checked by parsing (PipelineId is valid by construction).
    let request: clonesync::workflow::lifecycle::TeardownRequest =
        serde_json::from_str(&text).unwrap();
    assert!(!request.pipeline_id.is_empty());
}

#[test]
fn the_template_sets_every_variable_the_functions_read() {
    use clonesync::aws::settings::*;
    let template = template();
    let variables = template["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .unwrap();
    // AWS_REGION is set by Lambda itself.
    for key in [
        ENV_TARGET_ACCOUNT,
        ENV_SOURCE_ROLE,
        ENV_SOURCE_EXTERNAL_ID,
        ENV_REGISTRY_TABLE,
        ENV_DB_TLS,
        ENV_DB_CA_FILE,
    ] {
        assert!(
            variables.contains_key(key),
            "template.yaml does not set {key}"
        );
    }
}

#[test]
fn the_cli_installs_the_moto_the_tools_pin() {
    let requirements = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/requirements.txt"),
    )
    .unwrap();
    assert!(
        requirements
            .lines()
            .any(|l| l.trim() == clonesync_local::moto::MOTO_REQUIREMENT),
        "tools/requirements.txt lacks {}",
        clonesync_local::moto::MOTO_REQUIREMENT
    );
}

#[test]
fn the_local_dispatch_knows_every_lambda_package() {
    let mut packages: Vec<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    packages.sort();
    let mut known: Vec<String> = clonesync::handlers::FUNCTIONS
        .iter()
        .map(|f| f.to_string())
        .collect();
    known.sort();
    assert_eq!(packages, known);
}

#[test]
fn every_alarm_watches_a_metric_the_monitor_writes_every_run() {
    use clonesync::monitor::{emf, MonitorReport};
    let template = template();
    let every_run: BTreeSet<String> = emf::summary(&MonitorReport::default())
        .into_iter()
        .map(|m| m.name)
        .collect();
    // verify-report writes its figures (dimension Service) once per
    // verification, not per monitor run.
    let results = clonesync::workflow::verify::VerifyResults {
        pipeline_id: "p".parse().unwrap(),
        results: Vec::new(),
        require_equal: false,
    };
    let summary = clonesync::workflow::verify::summarize(&results).unwrap();
    let lines = emf::verification_lines(&summary.counts(), 0);
    let per_verification: BTreeSet<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|doc| doc["Service"] == emf::SERVICE)
        .flat_map(|doc| {
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["Name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(per_verification.contains("TablesDiffering"));
    let written: BTreeSet<String> = every_run.union(&per_verification).cloned().collect();
    let mut watched = BTreeSet::new();
    for (name, resource) in resources(&template) {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let p = &resource["Properties"];
        assert!(!p["AlarmActions"].is_null(), "{name:?} notifies the topic");
        if !p["Metrics"].is_sequence() && p["Namespace"].as_str() != Some(emf::NAMESPACE) {
            assert_eq!(p["Namespace"].as_str(), Some("AWS/Lambda"), "{name:?}");
            continue;
        }
        // A plain alarm names its metric; a metric-math one (an increase
        // of a counter) names it in the MetricStat it computes from.
        let metric_of = |m: &serde_yaml::Value| {
            let metric = m["MetricName"].as_str().unwrap().to_string();
            assert!(
                written.contains(&metric),
                "{name:?} watches {metric}, never written"
            );
            assert_eq!(m["Dimensions"][0]["Name"].as_str(), Some("Service"));
            assert_eq!(m["Dimensions"][0]["Value"].as_str(), Some(emf::SERVICE));
            metric
        };
        let metric = if p["Metrics"].is_sequence() {
            let queries = p["Metrics"].as_sequence().unwrap();
            let stat = queries
                .iter()
                .find(|q| !q["MetricStat"].is_null())
                .unwrap_or_else(|| panic!("{name:?} computes from no metric"));
            assert_eq!(
                stat["MetricStat"]["Metric"]["Namespace"].as_str(),
                Some(emf::NAMESPACE)
            );
            let returned: Vec<_> = queries
                .iter()
                .filter(|q| q["ReturnData"].as_bool() == Some(true))
                .collect();
            assert_eq!(returned.len(), 1, "{name:?} returns one series");
            metric_of(&stat["MetricStat"]["Metric"])
        } else {
            metric_of(p)
        };
        // Written every run, so missing data means the monitor is down;
        // a verification's figures only exist when one ran, and between
        // runs the alarm keeps what the last one said.
        let expected = if every_run.contains(&metric) {
            "breaching"
        } else {
            "ignore"
        };
        assert_eq!(p["TreatMissingData"].as_str(), Some(expected), "{name:?}");
        watched.insert(metric);
    }
    for metric in [
        "MaxLagBytes",
        "MaxApplyLagSeconds",
        "InactiveSlots",
        "MaxRetainedBytes",
        "MonitorErrors",
        "ApplyErrors",
        "Conflicts",
        "LostSlots",
        "TablesDiffering",
    ] {
        assert!(watched.contains(metric), "no alarm on {metric}");
    }
    let monitor = &resources(&template)["LagMonitor"];
    assert_eq!(
        monitor["Properties"]["Events"]["Every"]["Type"].as_str(),
        Some("Schedule")
    );
}

/// Row 15 of `AWS-BEHAVIOURS.md`: no Map keeps a list of tables in the
/// state. Every Map is Distributed and reads its items from the runs
/// bucket, and its children's output is dropped (the Map's result stays a
/// fixed size); only the functions that read or write that bucket are
/// given it.
#[test]
fn the_maps_read_their_items_from_the_runs_bucket_and_keep_no_list_in_the_state() {
    use clonesync::aws::settings::ENV_RUNS_BUCKET;
    let mut maps = 0;
    for (machine, asl) in machines() {
        for (name, state) in states(&asl) {
            if state["Type"] != "Map" {
                continue;
            }
            maps += 1;
            assert!(
                state.get("ItemsPath").is_none(),
                "{machine}.{name}: ItemsPath"
            );
            assert_eq!(
                state["ItemProcessor"]["ProcessorConfig"]["Mode"], "DISTRIBUTED",
                "{machine}.{name}"
            );
            assert_eq!(
                state["ItemReader"]["Resource"], "arn:aws:states:::s3:getObject",
                "{machine}.{name}"
            );
            for (child, task) in state["ItemProcessor"]["States"].as_object().unwrap() {
                assert!(
                    task.get("OutputPath").is_some_and(Value::is_null),
                    "{machine}.{name}.{child}: its output would grow the Map's result"
                );
            }
            assert!(
                state["ResultSelector"].is_object(),
                "{machine}.{name}: the result is not reduced"
            );
        }
    }
    assert_eq!(maps, 2, "the verify and switchover Maps");
    let template = template();
    let mut given = Vec::new();
    for (logical, function) in functions(&template) {
        let variables = &function["Properties"]["Environment"]["Variables"];
        if let Some(value) = variables.get(ENV_RUNS_BUCKET) {
            assert_eq!(
                tagged(value, "!Ref").and_then(Yaml::as_str),
                Some("RunsBucket"),
                "{logical}"
            );
            given.push(logical);
        }
    }
    assert_eq!(given, ["VerifyPlan", "VerifyReport", "VerifyTable"]);
}
