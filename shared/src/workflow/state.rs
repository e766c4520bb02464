//! The setup state machine's state: what the console input says and what
//! each step adds. Identifiers and ARNs only; a test proves no credential
//! can be put here.

use crate::error::{Error, Result};
use crate::pg::Lsn;
use crate::pipeline::request::{self, ValidRequest};
use crate::pipeline::Triple;
use crate::pipeline::{
    Accepted, CloneInfo, CloneSettings, OwnedShare, Phase, PipelineRecord, PipelineSpec, Share,
    SourceCluster, UndoPlan, Waits,
};
use crate::steps::clone_lsn::CloneLsn;
use crate::steps::create_subscription::SubscriptionCreated;
use crate::steps::preflight::PreflightReport;
use serde::{Deserialize, Serialize};

/// What the source side of a run made (owned, so cleanup may drop it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCreated {
    /// Some triple's publication is the pipeline's.
    pub publication: bool,
    pub slot: bool,
    /// The latest consistent point of the triples' slots: the clone must
    /// be at or after it.
    pub slot_consistent_lsn: Lsn,
    /// Each triple's slot and its consistent point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triples: Vec<PreparedTriple>,
}

/// One triple's source side after `prepare-source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedTriple {
    pub database: String,
    pub slot: String,
    pub consistent_lsn: Lsn,
    pub publication_created: bool,
}

/// `$.created`: filled in by the steps that create something.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceCreated>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone: Option<CloneInfo>,
    /// Every triple's subscription (`create-subscription`). A state
    /// written before there were several holds one object: read as one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "one_or_many"
    )]
    pub subscription: Option<Vec<SubscriptionCreated>>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Vec<SubscriptionCreated>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<SubscriptionCreated>),
        One(SubscriptionCreated),
    }
    Ok(
        Option::<OneOrMany>::deserialize(deserializer)?.map(|v| match v {
            OneOrMany::Many(list) => list,
            OneOrMany::One(one) => vec![one],
        }),
    )
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
    pub clone_lsn: Option<CloneLsn>,
    /// Tear the pipeline down (clone included) before setting it up again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reseed: bool,
    /// Set once the inventory is recorded (`RecordInventory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    /// Subscriptions per database (`pipeline.apply_groups`).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub apply_groups: u32,
    /// What preflight found, with the pipeline's triples (`$.preflight`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<PreflightReport>,
    /// The pipeline's triples as known without this run's preflight: from
    /// its record (a teardown), or named again from the request (a run
    /// killed before preflight planned them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recorded_triples: Vec<Triple>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// What `RecordInventory` adds to the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The setup execution's ARN (`$$.Execution.Id`).
    pub execution: String,
    /// This execution wrote the record (see `lifecycle::record_inventory`).
    #[serde(default)]
    pub created_record: bool,
    /// Setup runs again on a pipeline that streamed (or was paused).
    #[serde(default)]
    pub registered_before: bool,
    /// The pipeline's setup mark as recorded (also in
    /// `$.pipeline.setup_mark` from here on).
    #[serde(default)]
    pub setup_mark: String,
}

impl State {
    /// The pipeline's triples: as preflight planned them; before that (or
    /// in a state rebuilt from an older record) the one triple of the
    /// pipeline's own names in its database.
    pub fn triples(&self) -> Vec<Triple> {
        match &self.preflight {
            Some(report) if !report.triples.is_empty() => report.triples.clone(),
            _ if !self.recorded_triples.is_empty() => self.recorded_triples.clone(),
            _ => vec![Triple::single(&self.pipeline, self.source.login_database())],
        }
    }

    /// The setup execution working on this state, once recorded.
    pub fn setup_execution(&self) -> Option<String> {
        self.inventory.as_ref().map(|i| i.execution.clone())
    }
}

impl From<ValidRequest> for State {
    fn from(request: ValidRequest) -> State {
        State {
            pipeline: request.pipeline,
            source: request.source,
            clone: request.clone,
            clone_id: request.clone_id,
            waits: request.waits,
            created: CreatedState::default(),
            share: None,
            accepted: None,
            clone_info: None,
            clone_lsn: None,
            inventory: None,
            reseed: request.reseed,
            apply_groups: request.apply_groups,
            preflight: None,
            recorded_triples: Vec::new(),
        }
    }
}

impl State {
    /// The state a registered pipeline's record stands for: what a
    /// teardown or a re-seed works on (nothing of a run in it).
    pub fn of_record(record: &PipelineRecord) -> State {
        State {
            pipeline: record.pipeline.clone(),
            source: record.source.clone(),
            clone: record.clone.clone(),
            clone_id: record
                .clone_id()
                .map(str::to_string)
                .unwrap_or_else(|| record.pipeline.clone_id()),
            waits: Waits::default(),
            created: CreatedState::default(),
            share: None,
            accepted: None,
            clone_info: record.clone_info.clone(),
            clone_lsn: None,
            inventory: record.setup_execution.clone().map(|execution| Inventory {
                execution,
                created_record: false,
                registered_before: false,
                setup_mark: record.pipeline.setup_mark.clone(),
            }),
            reseed: false,
            apply_groups: record.apply_groups,
            preflight: None,
            recorded_triples: record.triples(),
        }
    }

    /// The record this state stands for, in `phase`: the one conversion
    /// from a setup's state to the registry's record. A share of the
    /// state's is the pipeline's (reused only when it carries the
    /// pipeline's name and tag).
    pub fn record(&self, phase: Phase, registered_at: u64) -> PipelineRecord {
        PipelineRecord {
            pipeline: self.pipeline.clone(),
            source: self.source.clone(),
            clone: self.clone.clone(),
            clone_id: Some(self.clone_id.clone()),
            clone_info: self.clone_info.clone(),
            share: self.share.as_ref().map(|share| OwnedShare {
                arn: share.share_arn.clone(),
                created: true,
            }),
            setup_execution: self.setup_execution(),
            phase,
            registered_at,
            // Only triples planned (by preflight) or recorded: a record of a
            // setup that has not planned its triples yet says so by having
            // none, and whoever removes it names them again.
            triples: match &self.preflight {
                Some(report) if !report.triples.is_empty() => report.triples.clone(),
                _ => self.recorded_triples.clone(),
            },
            apply_groups: self.apply_groups,
        }
    }
}

/// Check the whole console request ([`request::validate`]) and start the
/// state from it.
pub fn validate(input: serde_json::Value, region: &str) -> Result<State> {
    request::validate(input, region).map(State::from)
}

impl State {
    /// What this run created, from `$.created.*` and the share: what its
    /// cleanup undoes. Setup run again on a live pipeline
    /// (`registered_before`) found and reused its slots, publications,
    /// subscriptions and clone: recorded in `$.created` as this run's, they
    /// are the streaming pipeline's, and its cleanup keeps them (only a
    /// share made now goes).
    pub fn undo_plan(&self) -> UndoPlan {
        if self.inventory.as_ref().is_some_and(|i| i.registered_before) {
            return UndoPlan {
                share: self
                    .share
                    .as_ref()
                    .filter(|s| s.created_now)
                    .map(|s| s.share_arn.clone()),
                ..UndoPlan::default()
            };
        }
        UndoPlan {
            publication: self.created.source.as_ref().is_some_and(|s| s.publication),
            slot: self.created.source.as_ref().is_some_and(|s| s.slot),
            clone: self.created.clone.as_ref().map(|c| c.clone_id.clone()),
            subscription: self.created.subscription.is_some(),
            share: self
                .share
                .as_ref()
                .filter(|s| s.created_now)
                .map(|s| s.share_arn.clone()),
        }
    }

    /// Everything a pipeline is named for, whether or not its setup got
    /// as far as making it (its teardown owns it all, whoever made it; a
    /// part that does not exist is nothing to undo).
    pub fn undo_everything(&self) -> UndoPlan {
        UndoPlan::everything(
            Some(self.clone_id.clone()),
            self.share.as_ref().map(|s| s.share_arn.clone()),
        )
    }

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
                .any(|p| p.contains("clone_heartbeat_seconds must be shorter")),
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
        // Validating the same input again gives the same state but for
        // the setup mark, drawn anew: nothing is made or recorded before
        // RecordInventory, which fixes the mark (a retry finds its record).
        let again = validate(good(), "eu-west-1").unwrap();
        assert_ne!(again.pipeline.setup_mark, state.pipeline.setup_mark);
        let mut same_mark = good();
        same_mark["pipeline"]["setup_mark"] = json!(state.pipeline.setup_mark);
        assert_eq!(validate(same_mark, "eu-west-1").unwrap(), state);
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
    fn databases_and_apply_groups_are_checked() {
        let problems_of = |input: serde_json::Value| match validate(input, "eu-west-1") {
            Err(Error::InvalidInput { problems }) => problems,
            other => panic!("accepted: {other:?}"),
        };
        let mut both = good();
        both["source"]["databases"] = json!(["a", "b"]);
        assert!(problems_of(both)[0].contains("not both"));
        let mut neither = good();
        neither["source"]
            .as_object_mut()
            .unwrap()
            .remove("database");
        assert!(problems_of(neither)[0].contains("missing"));
        let mut listed = good();
        listed["source"].as_object_mut().unwrap().remove("database");
        listed["source"]["databases"] = json!([]);
        assert!(problems_of(listed.clone())[0].contains("no database"));
        listed["source"]["databases"] = json!(["a", {"name": "a"}]);
        assert!(problems_of(listed.clone())[0].contains("twice"));
        listed["source"]["databases"] = json!("some");
        assert!(problems_of(listed.clone())[0].contains("source:"));
        for groups in [0, 17] {
            let mut grouped = good();
            grouped["pipeline"]["apply_groups"] = json!(groups);
            assert!(problems_of(grouped)[0].contains("apply_groups must be 1..=16"));
        }
        // A publication name so long it cannot take a suffix (an id that
        // long is refused itself: its clone's writer name is too long).
        let mut long = good();
        long["pipeline"]["publication"] = json!("p".repeat(60));
        long["pipeline"]["apply_groups"] = json!(2);
        assert!(problems_of(long)
            .iter()
            .any(|p| p.contains("no room for the database and group suffix")));
        let mut long = good();
        long["pipeline"]["id"] = json!("a".repeat(50));
        assert!(problems_of(long)
            .iter()
            .any(|p| p.contains("not a valid DB identifier")));

        listed["source"]["databases"] = json!("all");
        listed["pipeline"]["apply_groups"] = json!(4);
        let state = validate(listed, "eu-west-1").unwrap();
        assert_eq!(state.apply_groups, 4);
        assert_eq!(state.source.login_database(), "postgres");
        assert!(state.source.several_databases());
        // Before preflight plans, the one triple of the pipeline's names.
        assert_eq!(state.triples().len(), 1);
        let text = serde_json::to_value(&state).unwrap();
        assert_eq!(text["apply_groups"], 4);
        let back: State = serde_json::from_value(text).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn schema_changes_are_on_with_one_group_and_refused_with_several() {
        let problems_of = |input: serde_json::Value| match validate(input, "eu-west-1") {
            Err(Error::InvalidInput { problems }) => problems,
            other => panic!("accepted: {other:?}"),
        };
        assert!(
            validate(good(), "eu-west-1")
                .unwrap()
                .pipeline
                .schema_changes
        );
        let mut off = good();
        off["pipeline"]["schema_changes"] = json!("off");
        let state = validate(off, "eu-west-1").unwrap();
        assert!(!state.pipeline.schema_changes);
        let back: State = serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
        assert!(!back.pipeline.schema_changes, "it travels in the state");
        let mut grouped = good();
        grouped["pipeline"]["apply_groups"] = json!(3);
        assert!(
            !validate(grouped.clone(), "eu-west-1")
                .unwrap()
                .pipeline
                .schema_changes,
            "off by default with several groups"
        );
        grouped["pipeline"]["schema_changes"] = json!("on");
        assert!(problems_of(grouped)[0].contains("needs pipeline.apply_groups 1"));
        let mut odd = good();
        odd["pipeline"]["schema_changes"] = json!("sometimes");
        assert!(problems_of(odd)[0].contains("must be \"on\" or \"off\""));
        let mut typed = good();
        typed["pipeline"]["schema_changes"] = json!(true);
        assert!(!problems_of(typed).is_empty());
    }

    #[test]
    fn keyless_tables_are_refused_unless_setup_may_give_them_full_identity() {
        let problems_of = |input: serde_json::Value| match validate(input, "eu-west-1") {
            Err(Error::InvalidInput { problems }) => problems,
            other => panic!("accepted: {other:?}"),
        };
        assert!(!validate(good(), "eu-west-1").unwrap().pipeline.keyless_full);
        let mut full = good();
        full["pipeline"]["keyless_tables"] = json!("replica_identity_full");
        let state = validate(full.clone(), "eu-west-1").unwrap();
        assert!(state.pipeline.keyless_full);
        let back: State = serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
        assert!(back.pipeline.keyless_full, "it travels in the state");
        assert!(
            back.triples()
                .iter()
                .all(|t| t.spec(&back.pipeline).keyless_full),
            "and reaches each triple's step"
        );
        let mut refuse = good();
        refuse["pipeline"]["keyless_tables"] = json!("refuse");
        assert!(!validate(refuse, "eu-west-1").unwrap().pipeline.keyless_full);
        let mut off = full;
        off["pipeline"]["schema_changes"] = json!("off");
        assert!(problems_of(off)[0].contains("needs pipeline.schema_changes \"on\""));
        let mut odd = good();
        odd["pipeline"]["keyless_tables"] = json!("full");
        assert!(problems_of(odd)[0].contains("must be \"refuse\" or \"replica_identity_full\""));
    }

    #[test]
    fn a_state_of_one_subscription_still_reads() {
        let mut text = serde_json::to_value(validate(good(), "eu-west-1").unwrap()).unwrap();
        text["created"]["subscription"] =
            json!({"subscription_oid": 7, "origin": "pg_7", "created_now": true});
        let state: State = serde_json::from_value(text.clone()).unwrap();
        let subs = state.created.subscription.as_ref().unwrap();
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].subscription_oid, 7);
        assert!(state.undo_plan().subscription);
        text["created"]["subscription"] = json!([]);
        let state: State = serde_json::from_value(text).unwrap();
        assert_eq!(state.created.subscription, Some(vec![]));
    }

    #[test]
    fn cleanup_reads_what_was_created() {
        let mut state = validate(good(), "eu-west-1").unwrap();
        assert!(state.undo_plan().is_empty());
        state.created.source = Some(SourceCreated {
            publication: false,
            slot: true,
            slot_consistent_lsn: Lsn::from(1u64),
            triples: vec![],
        });
        state.created.clone = Some(CloneInfo {
            clone_id: "clonesync-orders-dev".into(),
            host: String::new(),
            port: 5432,
        });
        state.share = Some(Share {
            share_arn: "arn:aws:ram:eu-west-1:111122223333:resource-share/x".into(),
            name: "clonesync-orders_dev".into(),
            created_now: false,
        });
        let created = state.undo_plan();
        assert!(created.slot && !created.publication && !created.subscription);
        assert_eq!(created.clone.as_deref(), Some("clonesync-orders-dev"));
        assert_eq!(created.share, None, "a reused share is not this run's");
        state.share.as_mut().unwrap().created_now = true;
        assert!(state.undo_plan().share.is_some());
        // Setup run again on a streaming pipeline keeps what it found.
        let mut rerun = state.clone();
        rerun.inventory = Some(Inventory {
            execution: "arn:aws:states:eu-west-1:1:execution:setup:x".into(),
            created_record: false,
            registered_before: true,
            setup_mark: String::new(),
        });
        let kept = rerun.undo_plan();
        assert!(!kept.slot && !kept.publication && !kept.subscription && kept.clone.is_none());
        assert!(kept.share.is_some(), "a share made now still goes");
        let everything = state.undo_everything();
        assert!(everything.publication && everything.slot && everything.subscription);
        assert!(everything.share.is_some());
    }
}
