//! The one error type of clonesync.
//!
//! Every variant has a stable name ([`Error::name`]) of the form `Area.Kind`.
//! That name becomes the Lambda `errorType`, so the state machine's
//! `Retry`/`Catch` clauses match on it; renaming one is a breaking change.
//! Everything whose name starts with `Transient.` is safe to retry as is.
//!
//! Messages carry identifiers and LSNs only: never a password, a connection
//! string or a row value. Where a library error (the database driver, an
//! AWS SDK call, the file system) caused one, it is kept as the error's
//! `source()`, so a caller can walk the chain; the message already carries
//! what an operator needs.

use crate::pg::Lsn;
use std::fmt;
use std::path::PathBuf;

/// The library error behind one of ours.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One failed preflight check, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PreflightFailure {
    /// Stable identifier of the check, e.g. `wal_level`.
    pub check: String,
    /// What was found.
    pub detail: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for PreflightFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {} (hint: {})", self.check, self.detail, self.hint)
    }
}

fn list_failures(failures: &[PreflightFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong (a name too long, an empty list, ...).
    #[error("invalid input: {}", .problems.join("; "))]
    InvalidInput { problems: Vec<String> },

    /// One or more preflight checks failed; all of them are listed.
    #[error("preflight failed ({} problem(s)): {}", .failures.len(), list_failures(.failures))]
    PreflightFailed { failures: Vec<PreflightFailure> },

    /// A replication slot of that name exists and is not this pipeline's.
    #[error("replication slot {slot:?} exists and is not ours: {reason}")]
    SlotConflict { slot: String, reason: String },

    /// The pipeline's slot is gone from the source.
    #[error("replication slot {slot:?} does not exist on the source")]
    SlotMissing { slot: String },

    /// The source has no free replication slot or WAL sender.
    #[error("no free replication slot on the source: {detail}")]
    NoFreeSlots { detail: String },

    /// A publication of that name exists and publishes something else.
    #[error("publication {publication:?} exists and is not ours: {reason}")]
    PublicationConflict { publication: String, reason: String },

    /// A subscription of that name exists on the target with other settings.
    #[error("subscription {subscription:?} exists and is not ours: {reason}")]
    SubscriptionConflict {
        subscription: String,
        reason: String,
    },

    /// The subscription the step needs is not on the target.
    #[error("subscription {subscription:?} does not exist on the target")]
    SubscriptionMissing { subscription: String },

    /// The clone's start LSN is outside `[slot consistent LSN, source flush LSN]`:
    /// attaching there would lose or repeat rows.
    #[error("clone start LSN {clone_lsn} is outside [{slot_consistent_lsn}, {source_flush_lsn}]: attaching would lose or repeat rows")]
    CloneLsnOutOfRange {
        clone_lsn: Lsn,
        slot_consistent_lsn: Lsn,
        source_flush_lsn: Lsn,
    },

    /// Making the clone failed for good.
    #[error("clone failed: {reason}")]
    CloneFailed {
        reason: String,
        #[source]
        cause: Option<Cause>,
    },

    /// The clone exists but is not ready yet; ask again later.
    #[error("clone {clone_id:?} is not ready yet: {status}")]
    CloneNotReady { clone_id: String, status: String },

    /// The subscription is not streaming: no apply worker or inactive slot.
    #[error("replication is not streaming: {detail}")]
    NotStreaming { detail: String },

    /// The database refused for lack of privilege.
    #[error("permission denied during {operation}: {message}")]
    PermissionDenied {
        operation: String,
        message: String,
        #[source]
        cause: Option<Cause>,
    },

    /// A connection problem, a timeout, a lock or serialization conflict:
    /// retrying the same step is safe.
    #[error("transient database error during {operation}: {message}")]
    TransientDatabase {
        operation: String,
        message: String,
        #[source]
        cause: Option<Cause>,
    },

    /// TLS to a database failed: no TLS offered, or a certificate that does
    /// not verify against the trusted roots or name the host.
    #[error("TLS failure during {operation}: {message}")]
    TlsFailed {
        operation: String,
        message: String,
        #[source]
        cause: Option<Cause>,
    },

    /// Any other database error (carries the SQLSTATE).
    #[error("database error during {operation} (SQLSTATE {sqlstate}): {message}")]
    Database {
        operation: String,
        sqlstate: String,
        message: String,
        #[source]
        cause: Option<Cause>,
    },

    /// A local PostgreSQL server program (initdb, pg_ctl, pg_basebackup)
    /// failed, or a local server did not come up.
    #[error("local server: {reason}")]
    LocalServer {
        reason: String,
        #[source]
        cause: Option<Cause>,
    },

    /// The PostgreSQL programs a local run needs are not on this machine.
    #[error("local PostgreSQL binaries: {reason}")]
    LocalBinariesMissing { reason: String },

    /// Running as root, the OS account the servers must run as is missing.
    #[error("local OS account: {reason}")]
    LocalAccountMissing { reason: String },

    /// A local file or directory could not be created, read, written,
    /// removed or handed over.
    #[error("local file: cannot {action} {}: {cause}", .path.display())]
    LocalFile {
        action: &'static str,
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },

    /// A local record (a clone's, the shares', a pipeline's, an execution's
    /// output) does not decode or encode.
    #[error("local record {what}: {reason}")]
    LocalRecordInvalid {
        what: String,
        reason: String,
        #[source]
        cause: Option<Cause>,
    },

    /// Installing the local AWS emulator (moto) failed.
    #[error("installing the emulator: {reason}")]
    LocalInstallFailed {
        reason: String,
        #[source]
        cause: Option<Cause>,
    },

    /// The local AWS emulator did not start or answer.
    #[error("the emulator: {reason}")]
    LocalEmulatorFailed {
        reason: String,
        #[source]
        cause: Option<Cause>,
    },

    /// No local port could be had (a free one, or one to listen on).
    #[error("local port: {reason}")]
    LocalPortUnavailable {
        reason: String,
        #[source]
        cause: Option<Cause>,
    },

    /// The state machine definition cannot be prepared for a local run.
    #[error("state machine definition: {reason}")]
    LocalDefinitionInvalid { reason: String },

    /// The demo's write load failed or stalled.
    #[error("write load: {reason}")]
    LocalWorkloadFailed { reason: String },

    /// The local clone's port is not held by the server clonesync started
    /// for it: no login is sent there.
    #[error("local clone on 127.0.0.1:{port} cannot be verified: {reason}")]
    LocalCloneUnverified { port: u16, reason: String },

    /// Another clonesync command holds the work directory.
    #[error("busy: {what}")]
    LocalBusy { what: String },

    /// A local wait ran out of time (a table catching up, a clone job).
    #[error("timed out: {what}")]
    LocalTimedOut { what: String },

    /// The resource share is not accepted yet (no invitation has arrived,
    /// or it is still pending); ask again later.
    #[error("resource share {share_arn} is not ready yet: {status}")]
    ShareNotReady { share_arn: String, status: String },

    /// The share cannot be used: a share of that name that is not ours, or
    /// an invitation that was rejected or expired.
    #[error("resource share {share}: {reason}")]
    ShareFailed { share: String, reason: String },

    /// A DB cluster of the clone's name exists and is not this pipeline's.
    #[error("DB cluster {clone_id:?} exists and is not ours: {reason}")]
    CloneConflict { clone_id: String, reason: String },

    /// The clone has no room for the pipeline's subscriptions (workers or
    /// replication origins): its settings come from its own parameter
    /// group, not the source's. Every shortfall is listed.
    #[error("the clone {clone_id} cannot take the pipeline's subscriptions: {}", list_failures(.failures))]
    CloneLimits {
        clone_id: String,
        failures: Vec<PreflightFailure>,
    },

    /// A credentials secret lacks a field or is not the expected JSON.
    /// Names the secret and the field, never its content.
    #[error("secret {secret_arn}: {reason}")]
    SecretInvalid { secret_arn: String, reason: String },

    /// The function's own configuration (environment) is wrong.
    #[error("configuration: {}", .problems.join("; "))]
    ConfigInvalid { problems: Vec<String> },

    /// An event could not be understood at all.
    #[error("malformed event: {reason}")]
    EventMalformed { reason: String },

    /// A task's own output does not encode as JSON: clonesync's defect,
    /// not the caller's input (which is `Input.Invalid`).
    #[error("the output of {what} does not encode: {cause}")]
    OutputUnencodable {
        what: String,
        #[source]
        cause: serde_json::Error,
    },

    /// No pipeline of that id is registered: nothing to tear down, pause
    /// or re-seed, and nothing was touched.
    #[error("pipeline {pipeline:?} is not registered")]
    PipelineUnknown { pipeline: String },

    /// A setup execution of the pipeline is still running; tearing down
    /// under it would race its steps. Nothing was touched.
    #[error("pipeline {pipeline:?}: its setup execution {execution} is still running")]
    SetupRunning { pipeline: String, execution: String },

    /// The table to verify is not on the source.
    #[error("table {table} does not exist on the source")]
    VerifyTableUnknown { table: String },

    /// The table to verify exists but the pipeline does not replicate it.
    #[error("table {table} is not in pipeline {pipeline:?}'s scope: it is not replicated, so there is no copy to verify")]
    VerifyTableOutOfScope { table: String, pipeline: String },

    /// Verification found tables that differ (or did not settle) where
    /// they had to be equal (a switchover).
    #[error("verification: {}", .tables.join("; "))]
    VerifyDiffers { tables: Vec<String> },

    /// A table of the plan has no verdict in the runs bucket: the Map
    /// ended without verifying it (its document expired, or the plan and
    /// the Map are of different runs).
    #[error("verification incomplete: {detail}")]
    VerifyIncomplete { detail: String },

    /// The source did not stay quiet through the switchover's quiet
    /// period: something still writes to it.
    #[error("the source is still being written to: {detail}")]
    SourceWriting { detail: String },

    /// The target did not catch up with the source in the time given.
    #[error("the target is behind the source: {detail}")]
    Lagging { detail: String },

    /// An AWS resource the step needs does not exist (or is not visible
    /// from this account).
    #[error("{service}: {what} not found")]
    AwsNotFound { service: String, what: String },

    /// AWS refused the call for lack of permission.
    #[error("{service} {operation}: access denied: {message}")]
    AwsAccessDenied {
        service: String,
        operation: String,
        message: String,
        #[source]
        cause: Option<Cause>,
    },

    /// The schema clonesync installs into, or something in it, belongs to
    /// a role other than the login (or a superuser), or another role may
    /// create in it: what clonesync would install there could be replaced
    /// by that role and then run by a superuser's DDL.
    #[error("schema clonesync in database {database:?} is not clonesync's: {}; drop it or make the login its owner", .found.join("; "))]
    SchemaNotOurs {
        database: String,
        found: Vec<String>,
    },

    /// The pipeline was switched over: its copy is standalone and takes no
    /// more replication until it is re-seeded.
    #[error("pipeline {pipeline:?} was switched over; {action} would replicate onto the standalone copy (re-seed it first)")]
    SwitchedOver { pipeline: String, action: String },

    /// Another setup of the same pipeline id holds it: objects on the
    /// source carry another setup's mark (another work directory or
    /// deployment), or the registry holds the id for another source.
    #[error("pipeline id {pipeline:?} is in use by another setup: {holder}")]
    PipelineIdInUse { pipeline: String, holder: String },

    /// The pipeline's registry record changed between this step's read and
    /// its write (another setup took it over, or a pause and a resume
    /// crossed): the write is refused instead of losing the other one.
    #[error("pipeline {pipeline:?}: its registry record changed since it was read ({expected})")]
    PipelineChanged { pipeline: String, expected: String },

    /// Throttling, a 5xx, a timeout or a network failure talking to AWS:
    /// the same call may succeed later.
    #[error("{service} {operation}: transient failure: {message}")]
    TransientAws {
        service: String,
        operation: String,
        message: String,
        #[source]
        cause: Option<Cause>,
    },

    /// Any other AWS error (carries its error code).
    #[error("{service} {operation} failed ({code}): {message}")]
    Aws {
        service: String,
        operation: String,
        code: String,
        message: String,
        #[source]
        cause: Option<Cause>,
    },
}

impl Error {
    /// Every stable name, in declaration order. A test keeps this in step
    /// with [`Error::name`], and the ASL contract test checks `ErrorEquals`
    /// against it.
    pub const NAMES: &'static [&'static str] = &[
        "Input.Invalid",
        "Preflight.Failed",
        "Source.SlotConflict",
        "Source.SlotMissing",
        "Source.NoFreeSlots",
        "Source.PublicationConflict",
        "Target.SubscriptionConflict",
        "Target.SubscriptionMissing",
        "Clone.LsnOutOfRange",
        "Clone.Failed",
        "Clone.NotReady",
        "Verify.NotStreaming",
        "Database.PermissionDenied",
        "Transient.Database",
        "Database.TlsFailed",
        "Database.Failed",
        "Local.ServerFailed",
        "Local.BinariesMissing",
        "Local.AccountMissing",
        "Local.FileFailed",
        "Local.RecordInvalid",
        "Local.InstallFailed",
        "Local.EmulatorFailed",
        "Local.PortUnavailable",
        "Local.DefinitionInvalid",
        "Local.WorkloadFailed",
        "Local.TimedOut",
        "Local.CloneUnverified",
        "Local.Busy",
        "Share.NotReady",
        "Share.Failed",
        "Clone.Conflict",
        "Clone.LimitsTooLow",
        "Secret.Invalid",
        "Config.Invalid",
        "Event.Malformed",
        "Output.Unencodable",
        "Pipeline.Unknown",
        "Pipeline.SetupRunning",
        "Verify.TableUnknown",
        "Verify.TableOutOfScope",
        "Verify.Differs",
        "Verify.Incomplete",
        "Switchover.SourceWriting",
        "Switchover.Lagging",
        "Database.SchemaNotOurs",
        "Pipeline.SwitchedOver",
        "Pipeline.IdInUse",
        "Pipeline.Changed",
        "Aws.NotFound",
        "Aws.AccessDenied",
        "Transient.Aws",
        "Aws.Failed",
    ];

    /// The stable name that becomes the Lambda `errorType`.
    pub fn name(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "Input.Invalid",
            Error::PreflightFailed { .. } => "Preflight.Failed",
            Error::SlotConflict { .. } => "Source.SlotConflict",
            Error::SlotMissing { .. } => "Source.SlotMissing",
            Error::NoFreeSlots { .. } => "Source.NoFreeSlots",
            Error::PublicationConflict { .. } => "Source.PublicationConflict",
            Error::SubscriptionConflict { .. } => "Target.SubscriptionConflict",
            Error::SubscriptionMissing { .. } => "Target.SubscriptionMissing",
            Error::CloneLsnOutOfRange { .. } => "Clone.LsnOutOfRange",
            Error::CloneFailed { .. } => "Clone.Failed",
            Error::CloneNotReady { .. } => "Clone.NotReady",
            Error::NotStreaming { .. } => "Verify.NotStreaming",
            Error::PermissionDenied { .. } => "Database.PermissionDenied",
            Error::TransientDatabase { .. } => "Transient.Database",
            Error::TlsFailed { .. } => "Database.TlsFailed",
            Error::Database { .. } => "Database.Failed",
            Error::LocalServer { .. } => "Local.ServerFailed",
            Error::LocalBinariesMissing { .. } => "Local.BinariesMissing",
            Error::LocalAccountMissing { .. } => "Local.AccountMissing",
            Error::LocalFile { .. } => "Local.FileFailed",
            Error::LocalRecordInvalid { .. } => "Local.RecordInvalid",
            Error::LocalInstallFailed { .. } => "Local.InstallFailed",
            Error::LocalEmulatorFailed { .. } => "Local.EmulatorFailed",
            Error::LocalPortUnavailable { .. } => "Local.PortUnavailable",
            Error::LocalDefinitionInvalid { .. } => "Local.DefinitionInvalid",
            Error::LocalWorkloadFailed { .. } => "Local.WorkloadFailed",
            Error::LocalTimedOut { .. } => "Local.TimedOut",
            Error::LocalCloneUnverified { .. } => "Local.CloneUnverified",
            Error::LocalBusy { .. } => "Local.Busy",
            Error::ShareNotReady { .. } => "Share.NotReady",
            Error::ShareFailed { .. } => "Share.Failed",
            Error::CloneConflict { .. } => "Clone.Conflict",
            Error::CloneLimits { .. } => "Clone.LimitsTooLow",
            Error::SecretInvalid { .. } => "Secret.Invalid",
            Error::ConfigInvalid { .. } => "Config.Invalid",
            Error::EventMalformed { .. } => "Event.Malformed",
            Error::OutputUnencodable { .. } => "Output.Unencodable",
            Error::PipelineUnknown { .. } => "Pipeline.Unknown",
            Error::SetupRunning { .. } => "Pipeline.SetupRunning",
            Error::VerifyTableUnknown { .. } => "Verify.TableUnknown",
            Error::VerifyTableOutOfScope { .. } => "Verify.TableOutOfScope",
            Error::VerifyDiffers { .. } => "Verify.Differs",
            Error::VerifyIncomplete { .. } => "Verify.Incomplete",
            Error::SourceWriting { .. } => "Switchover.SourceWriting",
            Error::Lagging { .. } => "Switchover.Lagging",
            Error::SchemaNotOurs { .. } => "Database.SchemaNotOurs",
            Error::SwitchedOver { .. } => "Pipeline.SwitchedOver",
            Error::PipelineIdInUse { .. } => "Pipeline.IdInUse",
            Error::PipelineChanged { .. } => "Pipeline.Changed",
            Error::AwsNotFound { .. } => "Aws.NotFound",
            Error::AwsAccessDenied { .. } => "Aws.AccessDenied",
            Error::TransientAws { .. } => "Transient.Aws",
            Error::Aws { .. } => "Aws.Failed",
        }
    }

    /// Whether running the same step again may succeed without any change:
    /// every `Transient.*` name, and the two "not ready yet" answers that
    /// the state machine's polling fallback retries.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::TransientDatabase { .. }
                | Error::TransientAws { .. }
                | Error::CloneNotReady { .. }
                | Error::ShareNotReady { .. }
        )
    }

    pub fn invalid(problem: impl Into<String>) -> Self {
        Error::InvalidInput {
            problems: vec![problem.into()],
        }
    }

    /// A local server failure with nothing below it.
    pub fn local_server(reason: impl Into<String>) -> Self {
        Error::LocalServer {
            reason: reason.into(),
            cause: None,
        }
    }

    /// A file-system call on `path` failed.
    pub fn local_file(
        action: &'static str,
        path: impl Into<PathBuf>,
        cause: std::io::Error,
    ) -> Self {
        Error::LocalFile {
            action,
            path: path.into(),
            cause,
        }
    }

    /// A local record that does not decode or encode.
    pub fn local_record(what: impl Into<String>, cause: serde_json::Error) -> Self {
        Error::LocalRecordInvalid {
            what: what.into(),
            reason: cause.to_string(),
            cause: Some(Box::new(cause)),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn one_of_each() -> Vec<Error> {
        let lsn = Lsn::from(0u64);
        let s = || String::from("x");
        vec![
            Error::InvalidInput { problems: vec![] },
            Error::PreflightFailed { failures: vec![] },
            Error::SlotConflict {
                slot: s(),
                reason: s(),
            },
            Error::SlotMissing { slot: s() },
            Error::NoFreeSlots { detail: s() },
            Error::PublicationConflict {
                publication: s(),
                reason: s(),
            },
            Error::SubscriptionConflict {
                subscription: s(),
                reason: s(),
            },
            Error::SubscriptionMissing { subscription: s() },
            Error::CloneLsnOutOfRange {
                clone_lsn: lsn,
                slot_consistent_lsn: lsn,
                source_flush_lsn: lsn,
            },
            Error::CloneFailed {
                reason: s(),
                cause: None,
            },
            Error::CloneNotReady {
                clone_id: s(),
                status: s(),
            },
            Error::NotStreaming { detail: s() },
            Error::PermissionDenied {
                operation: s(),
                message: s(),
                cause: None,
            },
            Error::TransientDatabase {
                operation: s(),
                message: s(),
                cause: None,
            },
            Error::TlsFailed {
                operation: s(),
                message: s(),
                cause: None,
            },
            Error::Database {
                operation: s(),
                sqlstate: s(),
                message: s(),
                cause: None,
            },
            Error::local_server(s()),
            Error::LocalBinariesMissing { reason: s() },
            Error::LocalAccountMissing { reason: s() },
            Error::local_file("read", "x", std::io::Error::other("x")),
            Error::LocalRecordInvalid {
                what: s(),
                reason: s(),
                cause: None,
            },
            Error::LocalInstallFailed {
                reason: s(),
                cause: None,
            },
            Error::LocalEmulatorFailed {
                reason: s(),
                cause: None,
            },
            Error::LocalPortUnavailable {
                reason: s(),
                cause: None,
            },
            Error::LocalDefinitionInvalid { reason: s() },
            Error::LocalWorkloadFailed { reason: s() },
            Error::LocalTimedOut { what: s() },
            Error::LocalCloneUnverified {
                port: 0,
                reason: s(),
            },
            Error::LocalBusy { what: s() },
            Error::ShareNotReady {
                share_arn: s(),
                status: s(),
            },
            Error::ShareFailed {
                share: s(),
                reason: s(),
            },
            Error::CloneConflict {
                clone_id: s(),
                reason: s(),
            },
            Error::CloneLimits {
                clone_id: s(),
                failures: vec![],
            },
            Error::SecretInvalid {
                secret_arn: s(),
                reason: s(),
            },
            Error::ConfigInvalid { problems: vec![] },
            Error::EventMalformed { reason: s() },
            Error::OutputUnencodable {
                what: s(),
                cause: serde_json::from_str::<u8>("x").unwrap_err(),
            },
            Error::PipelineUnknown { pipeline: s() },
            Error::SetupRunning {
                pipeline: s(),
                execution: s(),
            },
            Error::VerifyTableUnknown { table: s() },
            Error::VerifyTableOutOfScope {
                table: s(),
                pipeline: s(),
            },
            Error::VerifyDiffers { tables: vec![] },
            Error::VerifyIncomplete { detail: s() },
            Error::SourceWriting { detail: s() },
            Error::Lagging { detail: s() },
            Error::SchemaNotOurs {
                database: s(),
                found: vec![],
            },
            Error::SwitchedOver {
                pipeline: s(),
                action: s(),
            },
            Error::PipelineIdInUse {
                pipeline: s(),
                holder: s(),
            },
            Error::PipelineChanged {
                pipeline: s(),
                expected: s(),
            },
            Error::AwsNotFound {
                service: s(),
                what: s(),
            },
            Error::AwsAccessDenied {
                service: s(),
                operation: s(),
                message: s(),
                cause: None,
            },
            Error::TransientAws {
                service: s(),
                operation: s(),
                message: s(),
                cause: None,
            },
            Error::Aws {
                service: s(),
                operation: s(),
                code: s(),
                message: s(),
                cause: None,
            },
        ]
    }

    #[test]
    fn every_variant_has_its_listed_name_in_order() {
        let names: Vec<&str> = one_of_each().iter().map(Error::name).collect();
        assert_eq!(names, Error::NAMES);
    }

    #[test]
    fn names_are_unique_and_dotted() {
        let mut seen = std::collections::HashSet::new();
        for name in Error::NAMES {
            assert!(seen.insert(name), "duplicate error name {name}");
            let (area, kind) = name.split_once('.').expect("Area.Kind");
            assert!(!area.is_empty() && !kind.is_empty(), "{name}");
        }
    }

    #[test]
    fn only_transient_names_are_retryable() {
        for error in one_of_each() {
            assert_eq!(
                error.is_transient(),
                error.name().starts_with("Transient.") || error.name().ends_with(".NotReady"),
                "{}",
                error.name()
            );
        }
    }

    #[test]
    fn a_cause_is_kept_as_the_source() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let error = Error::local_file("create", "/x/y", io);
        assert_eq!(error.name(), "Local.FileFailed");
        assert!(error.to_string().contains("/x/y"), "{error}");
        let cause = error.source().expect("the io error is the source");
        assert_eq!(cause.to_string(), "denied");
    }

    #[test]
    fn preflight_message_lists_every_failure() {
        let error = Error::PreflightFailed {
            failures: vec![
                PreflightFailure {
                    check: "wal_level".into(),
                    detail: "wal_level is replica".into(),
                    hint: "set wal_level = logical".into(),
                },
                PreflightFailure {
                    check: "replica_identity".into(),
                    detail: "public.t has no primary key".into(),
                    hint: "add one".into(),
                },
            ],
        };
        let text = error.to_string();
        assert!(text.contains("2 problem(s)"), "{text}");
        assert!(text.contains("[wal_level]") && text.contains("[replica_identity]"));
    }
}
