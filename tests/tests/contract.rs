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
        "SourceTablesUnwritable",
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

/// The handlers (by package name) whose body writes to stdout: EMF lines.
fn handlers_writing_stdout() -> BTreeSet<String> {
    let source = std::fs::read_to_string(root().join("shared/src/handlers.rs")).unwrap();
    source
        .split("\npub async fn ")
        .skip(1)
        .filter(|body| {
            // The body ends where the next item starts.
            let body = body.split("\n}\n").next().unwrap_or(body);
            body.contains("println!(")
        })
        .map(|body| {
            let name = body.split(['<', '(']).next().unwrap();
            name.replace('_', "-")
        })
        .collect()
}

/// AWS-BEHAVIOURS row 11: with the JSON log format, Lambda reads a stdout
/// line without a `level` as INFO and drops it below the function's
/// `ApplicationLogLevel`. The EMF lines carry no level, so every function
/// that writes them logs at INFO whatever the `LogLevel` parameter says;
/// the others follow it.
#[test]
fn the_functions_that_write_metrics_keep_them_whatever_the_log_level() {
    use clonesync::monitor::{emf, MonitorReport};
    let writers = handlers_writing_stdout();
    assert_eq!(
        writers,
        BTreeSet::from(["lag-monitor".to_string(), "verify-report".to_string()]),
        "the handlers printing to stdout changed: check their log level here"
    );
    // Their lines are read as INFO: JSON without a level of their own.
    let results = clonesync::workflow::verify::VerifyResults {
        pipeline_id: "p".parse().unwrap(),
        results: Vec::new(),
        require_equal: false,
    };
    let summary = clonesync::workflow::verify::summarize(&results).unwrap();
    let mut lines = emf::lines(&MonitorReport::default(), 0);
    lines.extend(emf::verification_lines(&summary.counts(), 0));
    assert!(!lines.is_empty());
    for line in &lines {
        let doc: Value = serde_json::from_str(line).unwrap();
        assert!(doc.get("level").is_none(), "{line}");
    }
    let template = template();
    let levels = template["Parameters"]["LogLevel"]["AllowedValues"]
        .as_sequence()
        .unwrap();
    assert!(levels.iter().any(|l| l.as_str() == Some("WARN")));
    let global = &template["Globals"]["Function"]["LoggingConfig"];
    assert_eq!(global["LogFormat"].as_str(), Some("JSON"));
    assert_eq!(
        tagged(&global["ApplicationLogLevel"], "!Ref").and_then(Yaml::as_str),
        Some("LogLevel")
    );
    for (name, function) in functions(&template) {
        let package = function["Properties"]["CodeUri"]
            .as_str()
            .unwrap()
            .trim_start_matches("target/lambda/")
            .to_string();
        let own = &function["Properties"]["LoggingConfig"];
        if writers.contains(&package) {
            assert_eq!(own["LogFormat"].as_str(), Some("JSON"), "{name}");
            assert_eq!(
                own["ApplicationLogLevel"].as_str(),
                Some("INFO"),
                "{name} writes EMF lines: a WARN or ERROR level would drop them"
            );
        } else {
            assert!(own.is_null(), "{name} sets its own logging config");
        }
    }
}

/// CloudWatch's evaluation of an M-of-N alarm (CloudWatch user guide,
/// "How CloudWatch alarm evaluates when data is missing"): when at least
/// M of the N newest periods hold a point, only those real points are
/// judged; otherwise the missing ones are filled as `TreatMissingData`
/// says (`ignore` keeps the state). `points` is oldest first, a point
/// `Some(breaching)`.
fn cloudwatch_alarms(points: &[Option<bool>], m: usize, n: usize, treat: &str) -> Option<bool> {
    let range = &points[points.len().saturating_sub(n)..];
    let real: Vec<bool> = range.iter().flatten().copied().collect();
    if real.len() >= m {
        return Some(real.iter().filter(|b| **b).count() >= m);
    }
    let filled = match treat {
        "breaching" => Some(true),
        "notBreaching" => Some(false),
        _ => None,
    };
    let breaching = range
        .iter()
        .map(|p| p.or(filled))
        .collect::<Option<Vec<bool>>>()?;
    Some(breaching.iter().filter(|b| **b).count() >= m)
}

#[test]
fn the_model_of_cloudwatch_evaluation_fills_only_when_too_few_points_are_real() {
    let late = [Some(false), Some(false), None];
    // 1 of 1 with missing data breaching: one late point fires it.
    assert_eq!(cloudwatch_alarms(&late, 1, 1, "breaching"), Some(true));
    assert_eq!(cloudwatch_alarms(&late, 2, 3, "breaching"), Some(false));
    assert_eq!(cloudwatch_alarms(&late, 3, 3, "breaching"), Some(false));
    assert_eq!(cloudwatch_alarms(&[None; 3], 2, 3, "breaching"), Some(true));
    assert_eq!(cloudwatch_alarms(&[None; 3], 2, 3, "ignore"), None);
    assert_eq!(
        cloudwatch_alarms(&[Some(true), Some(true), None], 2, 3, "breaching"),
        Some(true)
    );
}

/// A Number parameter's or a literal's value, at the parameter's least.
fn least(template: &Yaml, value: &Yaml) -> u64 {
    match tagged(value, "!Ref").and_then(Yaml::as_str) {
        Some(parameter) => template["Parameters"][parameter]["MinValue"]
            .as_u64()
            .unwrap_or_else(|| panic!("{parameter} has no MinValue")),
        None => value.as_u64().unwrap(),
    }
}

/// AWS-BEHAVIOURS row 16: no alarm cries wolf on one late data point, and
/// a monitor silent for a whole evaluation range still alarms; every
/// alarm on the monitor's figures has the monitor's period, which follows
/// `MonitorSchedule` (the `MonitorMinutes` mapping), whatever value a
/// parameter takes.
#[test]
fn every_alarm_survives_a_late_point_and_follows_the_monitor_schedule() {
    let template = template();
    let mapping = template["Mappings"]["MonitorPeriod"].as_mapping().unwrap();
    let minutes = template["Parameters"]["MonitorMinutes"]["AllowedValues"]
        .as_sequence()
        .unwrap();
    assert_eq!(mapping.len(), minutes.len());
    for allowed in minutes {
        let key = allowed.as_u64().unwrap().to_string();
        let entry = &mapping[Yaml::from(key.clone())];
        let m: u64 = key.parse().unwrap();
        let unit = if m == 1 { "minute" } else { "minutes" };
        assert_eq!(
            entry["Schedule"].as_str(),
            Some(format!("rate({m} {unit})").as_str())
        );
        assert_eq!(entry["Seconds"].as_u64(), Some(m * 60));
    }
    let monitor_period = |value: &Yaml| {
        let found = tagged(value, "!FindInMap").and_then(Yaml::as_sequence);
        let parts: Vec<String> = found
            .map(|s| {
                s.iter()
                    .map(|p| {
                        p.as_str()
                            .or_else(|| tagged(p, "!Ref").and_then(Yaml::as_str))
                            .unwrap_or("?")
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default();
        parts
    };
    for function in ["LagMonitor", "RefreshTables"] {
        let schedule = &resources(&template)[function]["Properties"]["Events"]["Every"]
            ["Properties"]["Schedule"];
        assert_eq!(
            monitor_period(schedule),
            ["MonitorPeriod", "MonitorMinutes", "Schedule"],
            "{function}"
        );
    }
    let mut judged = 0;
    for (name, resource) in resources(&template) {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let name = name.as_str().unwrap();
        let p = &resource["Properties"];
        let treat = p["TreatMissingData"].as_str().unwrap();
        let period = if p["Metrics"].is_sequence() {
            p["Metrics"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|q| !q["MetricStat"].is_null())
                .map(|q| &q["MetricStat"]["Period"])
                .unwrap()
        } else {
            &p["Period"]
        };
        // A verification's figure is written once per run, not on the
        // schedule, and ignored while missing.
        if treat != "ignore" {
            assert_eq!(
                monitor_period(period),
                ["MonitorPeriod", "MonitorMinutes", "Seconds"],
                "{name}: its period is not the monitor's"
            );
        }
        let m = least(&template, &p["DatapointsToAlarm"]) as usize;
        let n = least(&template, &p["EvaluationPeriods"]) as usize;
        assert!(m >= 1 && m <= n, "{name}: {m} of {n}");
        // The same parameter for both keeps M = N at every value.
        if let (Some(a), Some(b)) = (
            tagged(&p["DatapointsToAlarm"], "!Ref"),
            tagged(&p["EvaluationPeriods"], "!Ref"),
        ) {
            assert_eq!(a, b, "{name}");
        }
        // Healthy every period, the newest point late: no alarm.
        let mut healthy = vec![Some(false); n + 2];
        *healthy.last_mut().unwrap() = None;
        assert_ne!(
            cloudwatch_alarms(&healthy, m, n, treat),
            Some(true),
            "{name} ({m} of {n}, missing {treat}) fires on one late point"
        );
        // The monitor silent for the whole range: alarm where missing
        // data means the monitor is down.
        if treat == "breaching" {
            assert_eq!(
                cloudwatch_alarms(&vec![None; n], m, n, treat),
                Some(true),
                "{name}: a silent monitor does not alarm"
            );
        }
        judged += 1;
    }
    assert!(judged >= 10, "{judged} alarms");
}

/// AWS-BEHAVIOURS row 22: the source role trusts only the target stack's
/// function roles (SAM names a function's role `<stack>-<Function>Role-…`
/// when the template names none), not every principal of the target
/// account, and demands the external id when one is set. The id itself is
/// in the functions' environment (README, Limits).
#[test]
fn the_source_role_trusts_only_the_target_stacks_function_roles() {
    let template = template();
    let trust = &resources(&template)["SourceAccessRole"]["Properties"]["AssumeRolePolicyDocument"]
        ["Statement"];
    let statements = trust.as_sequence().unwrap();
    assert_eq!(statements.len(), 1);
    let statement = &statements[0];
    assert_eq!(statement["Effect"].as_str(), Some("Allow"));
    assert_eq!(statement["Action"].as_str(), Some("sts:AssumeRole"));
    let principal = tagged(
        &statement["Condition"]["ArnLike"]["aws:PrincipalArn"],
        "!Sub",
    )
    .and_then(Yaml::as_str)
    .expect("an aws:PrincipalArn condition");
    assert_eq!(
        principal,
        "arn:${AWS::Partition}:iam::${TargetAccountId}:role/${TargetStackName}-*"
    );
    let external = tagged(&statement["Condition"]["StringEquals"], "!If")
        .and_then(Yaml::as_sequence)
        .expect("the external id condition");
    assert_eq!(external[0].as_str(), Some("HasExternalId"));
    assert_eq!(
        tagged(&external[1]["sts:ExternalId"], "!Ref").and_then(Yaml::as_str),
        Some("ExternalId")
    );
    // No function names its own role, so each gets SAM's
    // <stack>-<Function>Role-<suffix>, inside the trusted prefix.
    for (name, function) in functions(&template) {
        assert!(function["Properties"]["Role"].is_null(), "{name}");
    }
    assert!(resources(&template).iter().all(|(_, r)| {
        r["Type"].as_str() != Some("AWS::IAM::Role") || r["Properties"]["RoleName"].is_null()
    }));
}
