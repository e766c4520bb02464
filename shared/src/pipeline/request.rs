//! The console request: the pipeline's id and scope (object names default
//! from the id), the source and how to make the clone, and how long the
//! event-driven waits last. [`validate`] reads it and names every problem
//! at once.

use crate::error::{Error, Result};
use crate::pg::{PgName, SlotName};
use crate::pipeline::arn::ClusterArn;
use crate::pipeline::names;
use crate::pipeline::triples::{self, DatabaseSelection};
use crate::pipeline::{PipelineId, PipelineSpec, Scope};
use serde::{Deserialize, Serialize};

/// The source: the shared cluster, the login to use and the database(s).
/// Identifiers only; the login is read from the secret when connecting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceCluster {
    pub cluster_arn: String,
    /// Secrets Manager secret in the source account with a login that has
    /// the REPLICATION privilege (`rds_replication` on Aurora).
    pub secret_arn: String,
    /// The one database to replicate (or `databases`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Several databases, or `"all"` (or `database`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub databases: Option<DatabaseSelection>,
    /// Connect here instead of the cluster's writer endpoint (for example
    /// when the endpoint's name does not resolve across the VPC peering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl SourceCluster {
    /// The database a session opens when it needs no particular one (the
    /// cluster-wide reads: slots, LSNs, the list of databases): `database`,
    /// else the first one listed, else `postgres` (every cluster has it).
    pub fn login_database(&self) -> &str {
        match (&self.database, &self.databases) {
            (Some(db), _) => db,
            (None, Some(DatabaseSelection::List(list))) if !list.is_empty() => list[0].name(),
            _ => "postgres",
        }
    }

    /// Whether the pipeline names its databases (`databases`), so each
    /// triple's names carry its database.
    pub fn several_databases(&self) -> bool {
        self.databases.is_some()
    }
}

/// How to make the clone in the target account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloneSettings {
    /// DB instance class of the clone's writer, e.g. `db.r6g.large`.
    pub instance_class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_subnet_group: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
    /// Key in the target account to encrypt the clone with (required when
    /// the source is encrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Login for the clone, if not the source's (the clone has the
    /// source's roles and passwords, so by default the source secret is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_arn: Option<String>,
    /// The clone's DB cluster parameter group in the target account.
    /// Without one a restore uses the target account's default group
    /// (`rds.logical_replication = 0`, default worker limits), not the
    /// source's: give one with the settings the copy needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_cluster_parameter_group: Option<String>,
    /// The writer instance's DB parameter group (the default one without).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_parameter_group: Option<String>,
}

/// RDS's rule for a parameter group's name: 1-255 letters, digits,
/// hyphens and (in the default groups' names) periods, starting with a
/// letter, not ending with a hyphen, no two hyphens in a row.
pub fn parameter_group_problem(field: &str, name: &str) -> Option<String> {
    let ok = (1..=255).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !name.ends_with('-')
        && !name.contains("--");
    (!ok).then(|| {
        format!(
            "clone.{field} {name:?} is not a parameter group name (1-255 letters, digits, hyphens \
             or periods, starting with a letter, no trailing or double hyphen)"
        )
    })
}

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
    /// How long setup may hold a new slot unused: the slot is made before
    /// the share and the clone, and consumed only once the subscription
    /// is enabled on the clone.
    pub fn slot_idle_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            u64::from(self.share_timeout_seconds) + u64::from(self.clone_timeout_seconds),
        )
    }

    /// Every problem: each value at least 1 s, at most a day, and a
    /// heartbeat shorter than its timeout (Step Functions refuses a
    /// HeartbeatSeconds that is not smaller than TimeoutSeconds).
    pub fn problems(&self) -> Vec<String> {
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
        if self.share_heartbeat_seconds >= self.share_timeout_seconds {
            problems.push(
                "waits.share_heartbeat_seconds must be shorter than the share timeout".into(),
            );
        }
        if self.clone_heartbeat_seconds >= self.clone_timeout_seconds {
            problems.push(
                "waits.clone_heartbeat_seconds must be shorter than the clone timeout".into(),
            );
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
    /// Split each database's tables over this many subscriptions
    /// (default 1).
    #[serde(default)]
    pub apply_groups: Option<u32>,
    /// "on" (the default with one apply group) or "off": capture DDL on
    /// the source and apply it on the target.
    #[serde(default)]
    pub schema_changes: Option<String>,
    /// What setup does with tables in scope that have no key: "refuse"
    /// (the default: preflight names them) or "replica_identity_full"
    /// (setup gives them REPLICA IDENTITY FULL, teardown sets DEFAULT
    /// back; needs schema changes on, whose capture keeps the record).
    #[serde(default)]
    pub keyless_tables: Option<String>,
    /// The setup mark of a recorded pipeline whose setup runs again
    /// (`local up` in the same work directory, a re-seed). Left out, a new
    /// one is drawn; the registry's wins where it has the pipeline.
    #[serde(default)]
    pub setup_mark: Option<String>,
}

/// A request that passed [`validate`]: the pipeline's names resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRequest {
    pub pipeline: PipelineSpec,
    pub source: SourceCluster,
    pub clone: CloneSettings,
    /// The clone's DB cluster identifier, derived from the pipeline id.
    pub clone_id: String,
    pub waits: Waits,
    /// Tear the registered pipeline down with its clone first, then set it
    /// up again with the same names (after its slot was lost).
    pub reseed: bool,
    /// Subscriptions per database (1 ..= [`triples::MAX_APPLY_GROUPS`]).
    pub apply_groups: u32,
}

/// Check the whole console request and name every problem in one
/// `Input.Invalid`. `region`: the Region the steps run in (the source
/// cluster must be in it).
pub fn validate(input: serde_json::Value, region: &str) -> Result<ValidRequest> {
    let mut problems = Vec::new();
    let Some(object) = input.as_object() else {
        return Err(Error::invalid(
            "the input must be a JSON object with pipeline, source and clone",
        ));
    };
    for key in object.keys() {
        if !["pipeline", "source", "clone", "waits", "reseed"].contains(&key.as_str()) {
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
    let reseed = match object.get("reseed") {
        None => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(other) => {
            problems.push(format!("reseed must be true or false, not {other}"));
            false
        }
    };
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
    let default_name = names::default_object_name(&p.id);
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
    let id = PipelineId::new(p.id.clone());
    let setup_mark = match &p.setup_mark {
        Some(mark) => {
            note(names::check_setup_mark(mark));
            mark.clone()
        }
        None => names::new_setup_mark()?,
    };
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
    match (&request.source.database, &request.source.databases) {
        (Some(db), None) => note(PgName::new(db.clone()).map(|_| ())),
        (None, Some(DatabaseSelection::All(_))) => {}
        (None, Some(DatabaseSelection::List(list))) => {
            if list.is_empty() {
                note(Err(Error::invalid("source.databases lists no database")));
            }
            let mut seen = std::collections::BTreeSet::new();
            for entry in list {
                note(PgName::new(entry.name().to_string()).map(|_| ()));
                if !seen.insert(entry.name()) {
                    note(Err(Error::invalid(format!(
                        "source.databases lists {:?} twice",
                        entry.name()
                    ))));
                }
            }
        }
        (Some(_), Some(_)) => note(Err(Error::invalid(
            "give source.database or source.databases, not both",
        ))),
        (None, None) => note(Err(Error::invalid(
            "source.database (one) or source.databases (a list, or \"all\") is missing",
        ))),
    }
    let apply_groups = p.apply_groups.unwrap_or(1);
    if !(1..=triples::MAX_APPLY_GROUPS).contains(&apply_groups) {
        note(Err(Error::invalid(format!(
            "pipeline.apply_groups must be 1..={}, not {apply_groups}",
            triples::MAX_APPLY_GROUPS
        ))));
    }
    // Several groups apply one database's tables in independent streams; a
    // command applied in one stream could land before rows of another
    // group that predate it, so capture is off there unless asked for, and
    // asking for it is refused.
    let schema_changes = match p.schema_changes.as_deref() {
        None => apply_groups == 1,
        Some("on") if apply_groups > 1 => {
            note(Err(Error::invalid(
                "pipeline.schema_changes \"on\" needs pipeline.apply_groups 1: several groups apply in independent streams, so a schema change cannot be ordered with every group's rows",
            )));
            false
        }
        Some("on") => true,
        Some("off") => false,
        Some(other) => {
            note(Err(Error::invalid(format!(
                "pipeline.schema_changes must be \"on\" or \"off\", not {other:?}"
            ))));
            false
        }
    };
    let keyless_full = match p.keyless_tables.as_deref() {
        None | Some("refuse") => false,
        Some("replica_identity_full") if !schema_changes => {
            note(Err(Error::invalid(
                "pipeline.keyless_tables \"replica_identity_full\" needs pipeline.schema_changes \"on\": the capture records the tables it changes, so teardown can set them back",
            )));
            false
        }
        Some("replica_identity_full") => true,
        Some(other) => {
            note(Err(Error::invalid(format!(
                "pipeline.keyless_tables must be \"refuse\" or \"replica_identity_full\", not {other:?}"
            ))));
            false
        }
    };
    for (field, group) in [
        (
            "db_cluster_parameter_group",
            &request.clone.db_cluster_parameter_group,
        ),
        ("db_parameter_group", &request.clone.db_parameter_group),
    ] {
        if let Some(problem) = group
            .as_deref()
            .and_then(|name| parameter_group_problem(field, name))
        {
            note(Err(Error::invalid(problem)));
        }
    }
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
            schema_changes,
            setup_mark,
            keyless_full,
        }),
        _ => None,
    };
    if let Some(spec) = &spec {
        let room = triples::longest_suffix(request.source.several_databases(), apply_groups > 1);
        for name in [
            spec.publication.as_str(),
            spec.slot.as_str(),
            spec.subscription.as_str(),
        ] {
            if room > 0 && name.len() + room > crate::pg::name::MAX_NAME_BYTES {
                note(Err(Error::invalid(format!(
                    "the name {name:?} leaves no room for the database and group suffix (at most {} bytes with several databases or apply groups)",
                    crate::pg::name::MAX_NAME_BYTES - room
                ))));
            }
        }
    }
    // A valid id gives a valid clone and writer name (PipelineId::new).
    let clone_id = spec.as_ref().map(PipelineSpec::clone_id);
    match (spec, clone_id) {
        (Some(pipeline), Some(clone_id)) if problems.is_empty() => Ok(ValidRequest {
            pipeline,
            source: request.source,
            clone: request.clone,
            clone_id,
            waits: request.waits,
            reseed,
            apply_groups,
        }),
        _ => Err(Error::InvalidInput { problems }),
    }
}

#[cfg(test)]
mod tests {
    use super::{parameter_group_problem, Waits};

    #[test]
    fn parameter_group_names_follow_rds_rules() {
        for good in ["clonesync-copy", "default.aurora-postgresql15", "a"] {
            assert_eq!(parameter_group_problem("g", good), None, "{good}");
        }
        for bad in ["", "1abc", "a--b", "a-", "a b", "a;drop", &"a".repeat(256)] {
            assert!(parameter_group_problem("g", bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn a_heartbeat_must_be_shorter_than_its_timeout() {
        let equal = Waits {
            share_timeout_seconds: 60,
            share_heartbeat_seconds: 60,
            clone_timeout_seconds: 120,
            clone_heartbeat_seconds: 120,
        };
        assert_eq!(equal.problems().len(), 2, "{:?}", equal.problems());
        let shorter = Waits {
            share_heartbeat_seconds: 59,
            clone_heartbeat_seconds: 119,
            ..equal
        };
        assert!(shorter.problems().is_empty(), "{:?}", shorter.problems());
        assert!(Waits::default().problems().is_empty());
    }
}
