//! The setup state machine's state: what the console input says and what
//! each step adds. Identifiers and ARNs only; a test proves no credential
//! can be put here.

use crate::aws::ram::{Accepted, Share};
use crate::aws::rds::{CloneSettings, SourceCluster};
use crate::aws::{arn, ClusterArn};
use crate::control_plane::CloneInfo;
use crate::error::{Error, Result};
use crate::pg::{Lsn, PgName, SlotName};
use crate::pipeline::{Created, PipelineSpec};
use crate::scope::Scope;
use crate::steps::clone::clone_id;
use crate::steps::create_subscription::SubscriptionCreated;
use serde::{Deserialize, Serialize};

/// The console input: the pipeline's id and scope (object names default
/// from the id), the source and how to make the clone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub pipeline: PipelineRequest,
    pub source: SourceCluster,
    pub clone: CloneSettings,
    #[serde(default)]
    pub waits: Waits,
}

/// How long the two event-driven waits last before the state machine falls
/// back to polling (`TimeoutSecondsPath` / `HeartbeatSecondsPath` in the
/// ASL). The defaults suit AWS; a local run shortens them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Waits {
    pub share_timeout_seconds: u32,
    pub share_heartbeat_seconds: u32,
    pub clone_timeout_seconds: u32,
    pub clone_heartbeat_seconds: u32,
}

impl Default for Waits {
    fn default() -> Self {
        Waits {
            share_timeout_seconds: 900,
            share_heartbeat_seconds: 300,
            clone_timeout_seconds: 3600,
            clone_heartbeat_seconds: 1200,
        }
    }
}

impl Waits {
    /// Every problem: each value at least 1 s, at most a day, and a
    /// heartbeat no longer than its timeout.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("share_timeout_seconds", self.share_timeout_seconds),
            ("share_heartbeat_seconds", self.share_heartbeat_seconds),
            ("clone_timeout_seconds", self.clone_timeout_seconds),
            ("clone_heartbeat_seconds", self.clone_heartbeat_seconds),
        ] {
            if !(1..=86_400).contains(&value) {
                problems.push(format!("waits.{name} must be 1..=86400, not {value}"));
            }
        }
        if self.share_heartbeat_seconds > self.share_timeout_seconds {
            problems.push("waits.share_heartbeat_seconds exceeds the share timeout".into());
        }
        if self.clone_heartbeat_seconds > self.clone_timeout_seconds {
            problems.push("waits.clone_heartbeat_seconds exceeds the clone timeout".into());
        }
        problems
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineRequest {
    pub id: String,
    pub scope: Scope,
    #[serde(default)]
    pub publication: Option<String>,
    #[serde(default)]
    pub slot: Option<String>,
    #[serde(default)]
    pub subscription: Option<String>,
}

/// What the source side of a run made (owned, so cleanup may drop it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCreated {
    pub publication: bool,
    pub slot: bool,
    pub slot_consistent_lsn: Lsn,
}

/// `$.created`: filled in by the steps that create something.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceCreated>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone: Option<CloneInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<SubscriptionCreated>,
}

impl CreatedState {
    pub fn to_created(&self) -> Created {
        Created {
            publication: self.source.as_ref().is_some_and(|s| s.publication),
            slot: self.source.as_ref().is_some_and(|s| s.slot),
            clone: self.clone.as_ref().map(|c| c.clone_id.clone()),
            subscription: self.subscription.is_some(),
        }
    }
}

/// The state after `validate-input`; later steps add their results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub pipeline: PipelineSpec,
    pub source: SourceCluster,
    pub clone: CloneSettings,
    /// The clone's DB cluster identifier, derived from the pipeline id.
    pub clone_id: String,
    #[serde(default)]
    pub waits: Waits,
    #[serde(default)]
    pub created: CreatedState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<Share>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Accepted>,
    /// The clone once it accepts connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_info: Option<CloneInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_lsn: Option<crate::steps::clone_lsn::CloneLsn>,
}

impl State {
    /// The clone to connect to: the available one, else the one created.
    pub fn clone_info(&self) -> Result<&CloneInfo> {
        self.clone_info
            .as_ref()
            .or(self.created.clone.as_ref())
            .ok_or_else(|| Error::invalid("the state has no clone yet (clone_info)"))
    }

    pub fn slot_consistent_lsn(&self) -> Result<Lsn> {
        self.created
            .source
            .as_ref()
            .map(|s| s.slot_consistent_lsn)
            .ok_or_else(|| Error::invalid("the state has no prepared source (created.source)"))
    }

    pub fn clone_lsn(&self) -> Result<Lsn> {
        self.clone_lsn
            .as_ref()
            .map(|c| c.clone_lsn)
            .ok_or_else(|| Error::invalid("the state has no clone LSN (clone_lsn)"))
    }

    pub fn share_arn(&self) -> Result<&str> {
        self.share
            .as_ref()
            .map(|s| s.share_arn.as_str())
            .ok_or_else(|| Error::invalid("the state has no resource share (share)"))
    }
}

/// Check the whole request and name every problem in one `Input.Invalid`.
pub fn validate(input: serde_json::Value, region: &str) -> Result<State> {
    let mut problems = Vec::new();
    let Some(object) = input.as_object() else {
        return Err(Error::invalid(
            "the input must be a JSON object with pipeline, source and clone",
        ));
    };
    for key in object.keys() {
        if !["pipeline", "source", "clone", "waits"].contains(&key.as_str()) {
            problems.push(format!("unknown input field {key:?}"));
        }
    }
    // Each section is read on its own so one bad section does not hide
    // the problems of the others.
    fn section<T: serde::de::DeserializeOwned>(
        object: &serde_json::Map<String, serde_json::Value>,
        name: &str,
        problems: &mut Vec<String>,
    ) -> Option<T> {
        match object.get(name) {
            None => {
                problems.push(format!("{name} is missing"));
                None
            }
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|e| problems.push(format!("{name}: {e}")))
                .ok(),
        }
    }
    let pipeline = section::<PipelineRequest>(object, "pipeline", &mut problems);
    let source = section::<SourceCluster>(object, "source", &mut problems);
    let clone = section::<CloneSettings>(object, "clone", &mut problems);
    let waits = match object.get("waits") {
        None => Some(Waits::default()),
        Some(_) => section::<Waits>(object, "waits", &mut problems),
    };
    if let Some(waits) = &waits {
        problems.extend(waits.problems());
    }
    let (Some(pipeline), Some(source), Some(clone), Some(waits)) = (pipeline, source, clone, waits)
    else {
        return Err(Error::InvalidInput { problems });
    };
    let request = Request {
        pipeline,
        source,
        clone,
        waits,
    };
    let mut note = |r: Result<()>| {
        if let Err(e) = r {
            match e {
                Error::InvalidInput { problems: p } => problems.extend(p),
                other => problems.push(other.to_string()),
            }
        }
    };
    let p = &request.pipeline;
    let default_name = format!("clonesync_{}", p.id);
    let publication = PgName::new(
        p.publication
            .clone()
            .unwrap_or_else(|| default_name.clone()),
    );
    let slot = SlotName::new(p.slot.clone().unwrap_or_else(|| default_name.clone()));
    let subscription = PgName::new(
        p.subscription
            .clone()
            .unwrap_or_else(|| default_name.clone()),
    );
    let id = PgName::new(p.id.clone());
    if !p
        .id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        || !p.id.starts_with(|c: char| c.is_ascii_lowercase())
    {
        note(Err(Error::invalid(format!(
            "pipeline.id {:?} must start with a lowercase letter and hold only a-z, 0-9 and _",
            p.id
        ))));
    }
    note(p.scope.validate());
    match ClusterArn::parse(&request.source.cluster_arn) {
        Ok(arn) if arn.region != region => note(Err(Error::invalid(format!(
            "source.cluster_arn is in {} but this stack runs in {region}",
            arn.region
        )))),
        Ok(_) => {}
        Err(e) => note(Err(e)),
    }
    if !request.source.secret_arn.starts_with("arn:")
        || !request.source.secret_arn.contains(":secretsmanager:")
    {
        note(Err(Error::invalid(
            "source.secret_arn must be a Secrets Manager secret ARN",
        )));
    }
    if let Some(arn) = &request.clone.secret_arn {
        if !arn.starts_with("arn:") || !arn.contains(":secretsmanager:") {
            note(Err(Error::invalid(
                "clone.secret_arn must be a Secrets Manager secret ARN",
            )));
        }
    }
    note(PgName::new(request.source.database.clone()).map(|_| ()));
    if !request.clone.instance_class.starts_with("db.") {
        note(Err(Error::invalid(format!(
            "clone.instance_class {:?} is not a DB instance class (db.*)",
            request.clone.instance_class
        ))));
    }
    let names = (id, publication, slot, subscription);
    let (id, publication, slot, subscription) = match names {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (Some(a), Some(b), Some(c), Some(d)),
        (a, b, c, d) => {
            note(a.map(|_| ()));
            note(b.map(|_| ()));
            note(c.map(|_| ()));
            note(d.map(|_| ()));
            (None, None, None, None)
        }
    };
    let spec = match (id, publication, slot, subscription) {
        (Some(id), Some(publication), Some(slot), Some(subscription)) => Some(PipelineSpec {
            id,
            publication,
            slot,
            subscription,
            scope: p.scope.clone(),
        }),
        _ => None,
    };
    let clone_id = spec.as_ref().map(clone_id);
    if let Some(clone_id) = &clone_id {
        // The writer instance adds "-writer" to the cluster's name.
        if !arn::valid_db_identifier(&crate::aws::rds::writer_instance_id(clone_id)) {
            note(Err(Error::invalid(format!(
                "the clone id {clone_id:?} derived from pipeline.id is not a valid DB identifier (too long?)"
            ))));
        }
    }
    match (spec, clone_id) {
        (Some(pipeline), Some(clone_id)) if problems.is_empty() => Ok(State {
            pipeline,
            source: request.source,
            clone: request.clone,
            clone_id,
            waits: request.waits,
            created: CreatedState::default(),
            share: None,
            accepted: None,
            clone_info: None,
            clone_lsn: None,
        }),
        _ => Err(Error::InvalidInput { problems }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> serde_json::Value {
        json!({
            "pipeline": {"id": "orders_dev", "scope": {"kind": "all_tables"}},
            "source": {
                "cluster_arn": "arn:aws:rds:eu-west-1:111122223333:cluster:orders-prod",
                "secret_arn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:repl-AbCdEf",
                "database": "orders"
            },
            "clone": {"instance_class": "db.r6g.large"}
        })
    }

    #[test]
    fn waits_default_and_bad_ones_are_named() {
        let state = validate(good(), "eu-west-1").unwrap();
        assert_eq!(state.waits, Waits::default());
        let mut input = good();
        input["waits"] = json!({"share_timeout_seconds": 0, "clone_heartbeat_seconds": 5000, "clone_timeout_seconds": 60});
        let Err(Error::InvalidInput { problems }) = validate(input, "eu-west-1") else {
            panic!("bad waits accepted")
        };
        assert!(
            problems
                .iter()
                .any(|p| p.contains("share_timeout_seconds must be")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("clone_heartbeat_seconds exceeds")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_good_request_gets_default_names_and_an_empty_created() {
        let state = validate(good(), "eu-west-1").unwrap();
        assert_eq!(state.pipeline.slot.as_str(), "clonesync_orders_dev");
        assert_eq!(state.clone_id, "clonesync-orders-dev");
        assert_eq!(state.created, CreatedState::default());
        let text = serde_json::to_value(&state).unwrap();
        assert_eq!(
            text["created"],
            json!({}),
            "ResultPath $.created.* needs the object"
        );
        // Validating the validated input again gives the same state
        // (the step is idempotent).
        let again = validate(good(), "eu-west-1").unwrap();
        assert_eq!(again, state);
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let mut input = good();
        input["pipeline"]["id"] = json!("Orders-Dev");
        input["source"]["cluster_arn"] =
            json!("arn:aws:rds:us-east-1:111122223333:cluster:orders-prod");
        input["source"]["secret_arn"] = json!("repl");
        input["clone"]["instance_class"] = json!("r6g.large");
        input["clone"]["secret_arn"] = json!("nope");
        let err = validate(input, "eu-west-1").unwrap_err();
        assert_eq!(err.name(), "Input.Invalid");
        let Error::InvalidInput { problems } = err else {
            unreachable!()
        };
        for needle in [
            "pipeline.id",
            "us-east-1",
            "source.secret_arn",
            "instance_class",
            "clone.secret_arn",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "{needle} not named in {problems:?}"
            );
        }
    }

    #[test]
    fn shape_problems_of_every_section_are_named() {
        let input = json!({
            "pipeline": {"id": "x", "scope": {"kind": "everything"}},
            "source": {"cluster_arn": "a", "database": "d", "passwrd": "oops"},
            "extra": 1
        });
        let Error::InvalidInput { problems } = validate(input, "eu-west-1").unwrap_err() else {
            panic!("not Input.Invalid")
        };
        for needle in ["extra", "pipeline:", "source:", "clone is missing"] {
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "{needle} not named in {problems:?}"
            );
        }
        let err = validate(json!(["not", "an", "object"]), "eu-west-1").unwrap_err();
        assert_eq!(err.name(), "Input.Invalid");
    }

    #[test]
    fn names_too_long_for_postgres_or_rds_are_refused() {
        let mut input = good();
        input["pipeline"]["id"] = json!("a".repeat(60));
        let Error::InvalidInput { problems } = validate(input, "eu-west-1").unwrap_err() else {
            panic!("not Input.Invalid")
        };
        assert!(!problems.is_empty());
        let mut input = good();
        input["pipeline"]["slot"] = json!("Bad-Slot");
        assert_eq!(
            validate(input, "eu-west-1").unwrap_err().name(),
            "Input.Invalid"
        );
        let mut input = good();
        input["pipeline"]["scope"] = json!({"kind": "schemas", "schemas": []});
        assert_eq!(
            validate(input, "eu-west-1").unwrap_err().name(),
            "Input.Invalid"
        );
    }

    #[test]
    fn cleanup_reads_what_was_created() {
        let mut state = validate(good(), "eu-west-1").unwrap();
        assert!(state.created.to_created().is_empty());
        state.created.source = Some(SourceCreated {
            publication: false,
            slot: true,
            slot_consistent_lsn: Lsn::from(1u64),
        });
        state.created.clone = Some(CloneInfo {
            clone_id: "clonesync-orders-dev".into(),
            host: String::new(),
            port: 5432,
        });
        let created = state.created.to_created();
        assert!(created.slot && !created.publication && !created.subscription);
        assert_eq!(created.clone.as_deref(), Some("clonesync-orders-dev"));
    }
}
