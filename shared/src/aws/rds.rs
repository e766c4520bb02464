//! RDS behind [`ControlPlane`]: the source cluster's facts (read in the
//! source account), the copy-on-write clone and its writer instance (made in
//! the target account), and the clone's start LSN.
//!
//! The writer is requested only once the restored cluster reads
//! `available` (RDS refuses an instance before): until then `create_clone`
//! answers `Clone.NotReady`, and the state machine's retry finds the cluster
//! by name and asks again, so a retried step makes nothing twice.
//!
//! Idempotent by name and tag: the clone is a cluster named by the pipeline
//! and tagged `clonesync:pipeline = <id>`. `DBClusterAlreadyExists` (or
//! `DBInstanceAlreadyExists`) for a resource with that tag is success; for
//! anything else it is `Clone.Conflict`, and nothing without the tag is
//! ever deleted (deleting it is "nothing of ours to delete").

use crate::aws::fault::classify;
use crate::aws::secrets::{fetch_login, fetch_previous_login, Login};
use crate::aws::{AwsClients, Settings};
use crate::error::{Error, PreflightFailure, Result};
use crate::pg::{Endpoint, Lsn, SessionSettings};
use crate::pipeline::names::{writer_instance_id, TAG_PIPELINE, TAG_SETUP, TAG_SOURCE_CLUSTER};
use crate::pipeline::{CloneInfo, CloneSettings, ClusterArn, SourceCluster};
use crate::ports::{ControlPlane, SourceLogin};
use aws_sdk_rds::types::{DbCluster, Filter, Tag};
use tokio_postgres::Client;

const SERVICE: &str = "rds";
const ENGINE: &str = "aurora-postgresql";

pub struct AwsControlPlane<'a> {
    pub clients: &'a AwsClients,
    pub settings: &'a Settings,
    pub pipeline_id: String,
    /// The pipeline's setup mark, tagged on the clone (`clonesync:setup`);
    /// empty for a pipeline set up before marks existed.
    pub setup_mark: String,
    pub source: SourceCluster,
    pub clone: CloneSettings,
}

fn tag_value<'t>(tags: &'t [Tag], key: &str) -> Option<&'t str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Whether Aurora PostgreSQL `version` offers `aurora_volume_logical_start_lsn()`
/// (AWS documents it from 15.2 in the 15 line; 16 and later have it) and
/// the PostgreSQL 15 catalogs clonesync reads.
pub fn version_offers_start_lsn(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), _) if major >= 16 => true,
        (Some(15), Some(minor)) => minor >= 2,
        _ => false,
    }
}

impl AwsControlPlane<'_> {
    /// [`clone_status`] of this pipeline's clone `clone_id`.
    pub async fn clone_status(&self, clone_id: &str) -> Result<CloneInfo> {
        clone_status(&self.clients.rds, &self.pipeline_id, clone_id).await
    }

    fn source_arn(&self) -> Result<ClusterArn> {
        ClusterArn::parse(&self.source.cluster_arn)
    }

    fn tags(&self) -> Vec<Tag> {
        let mut tags = vec![
            Tag::builder()
                .key(TAG_PIPELINE)
                .value(&self.pipeline_id)
                .build(),
            Tag::builder()
                .key(TAG_SOURCE_CLUSTER)
                .value(&self.source.cluster_arn)
                .build(),
        ];
        if !self.setup_mark.is_empty() {
            tags.push(
                Tag::builder()
                    .key(TAG_SETUP)
                    .value(&self.setup_mark)
                    .build(),
            );
        }
        tags
    }

    /// The source cluster as the source account sees it.
    pub async fn describe_source(&self) -> Result<DbCluster> {
        describe_cluster(&self.clients.source_rds, &self.source.cluster_arn)
            .await?
            .ok_or_else(|| Error::AwsNotFound {
                service: SERVICE.into(),
                what: format!("source DB cluster {}", self.source.cluster_arn),
            })
    }

    async fn clone_cluster(&self, clone_id: &str) -> Result<Option<DbCluster>> {
        describe_cluster(&self.clients.rds, clone_id).await
    }

    /// The clone is this pipeline's: tagged with its id and, where both
    /// carry a setup mark, with its mark (a clone made by another setup of
    /// the same id — another deployment in this account — is theirs).
    fn ensure_ours(&self, clone_id: &str, tags: &[Tag]) -> Result<()> {
        let conflict = |reason: String| {
            Err(Error::CloneConflict {
                clone_id: clone_id.to_string(),
                reason,
            })
        };
        match (tag_value(tags, TAG_PIPELINE), tag_value(tags, TAG_SETUP)) {
            (Some(owner), Some(mark))
                if owner == self.pipeline_id
                    && !self.setup_mark.is_empty()
                    && mark != self.setup_mark =>
            {
                conflict(format!(
                    "it was made by another setup of pipeline {owner:?} ({TAG_SETUP}={mark})"
                ))
            }
            (Some(owner), _) if owner == self.pipeline_id => Ok(()),
            (Some(other), _) => conflict(format!("it belongs to pipeline {other:?}")),
            (None, _) => conflict(format!("it has no {TAG_PIPELINE} tag")),
        }
    }

    async fn source_secret_login(&self) -> Result<Login> {
        fetch_login(&self.clients.source_secrets, &self.source.secret_arn).await
    }

    async fn parameter(&self, group: &str, name: &str) -> Result<Option<String>> {
        let mut pages = self
            .clients
            .source_rds
            .describe_db_cluster_parameters()
            .db_cluster_parameter_group_name(group)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            use aws_sdk_rds::operation::describe_db_cluster_parameters::DescribeDBClusterParametersError as E;
            let page = match page {
                Ok(page) => page,
                Err(e) => match e.as_service_error() {
                    Some(E::DbParameterGroupNotFoundFault(_)) => return Ok(None),
                    _ => return Err(classify(SERVICE, "DescribeDBClusterParameters", e)),
                },
            };
            if let Some(p) = page
                .parameters()
                .iter()
                .find(|p| p.parameter_name() == Some(name))
            {
                return Ok(p.parameter_value().map(str::to_string));
            }
        }
        Ok(None)
    }

    /// Clones of the source already in this account: tagged by another
    /// pipeline for this source, or (made by hand or by another tool) any
    /// cross-account clone in the source's clone group. RDS allows one
    /// cross-account clone of a cluster per target account, so either
    /// makes the restore fail.
    async fn earlier_clones(&self, source_clone_group: Option<&str>) -> Result<Vec<String>> {
        let mut found = Vec::new();
        let mut pages = self
            .clients
            .rds
            .describe_db_clusters()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(SERVICE, "DescribeDBClusters", e))?;
            for cluster in page.db_clusters() {
                let tags = cluster.tag_list();
                let ours = tag_value(tags, TAG_PIPELINE) == Some(self.pipeline_id.as_str());
                let tagged_for_source =
                    tag_value(tags, TAG_SOURCE_CLUSTER) == Some(self.source.cluster_arn.as_str());
                let same_group = cluster.cross_account_clone() == Some(true)
                    && source_clone_group.is_some()
                    && cluster.clone_group_id() == source_clone_group;
                if !ours && (tagged_for_source || same_group) {
                    found.push(
                        cluster
                            .db_cluster_identifier()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
            }
        }
        Ok(found)
    }

    /// "You can create DB instances only after RestoreDBClusterToPointInTime
    /// has completed and the DB cluster is available" (RDS API reference):
    /// the writer is requested once `cluster` reads `available`; before,
    /// `Clone.NotReady`, which the state machine retries (the next attempt
    /// finds the cluster and asks again).
    async fn writer_once_available(&self, clone_id: &str, cluster: &DbCluster) -> Result<()> {
        match cluster.status() {
            Some("available") => self.create_writer(clone_id).await,
            status => Err(Error::CloneNotReady {
                clone_id: clone_id.to_string(),
                status: format!(
                    "cluster {}; the writer is created once it is available",
                    status.unwrap_or("unknown")
                ),
            }),
        }
    }

    async fn create_writer(&self, clone_id: &str) -> Result<()> {
        use aws_sdk_rds::operation::create_db_instance::CreateDBInstanceError as E;
        let instance_id = writer_instance_id(clone_id);
        let result = self
            .clients
            .rds
            .create_db_instance()
            .db_instance_identifier(&instance_id)
            .db_cluster_identifier(clone_id)
            .engine(ENGINE)
            .db_instance_class(&self.clone.instance_class)
            .set_db_parameter_group_name(self.clone.db_parameter_group.clone())
            .set_tags(Some(self.tags()))
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::info!(clone = clone_id, instance = %instance_id, "writer instance requested");
                Ok(())
            }
            Err(e) => match e.as_service_error() {
                Some(E::DbInstanceAlreadyExistsFault(_)) => {
                    let out = self
                        .clients
                        .rds
                        .describe_db_instances()
                        .db_instance_identifier(&instance_id)
                        .send()
                        .await
                        .map_err(|e| classify(SERVICE, "DescribeDBInstances", e))?;
                    let instance = out.db_instances().first();
                    let tags = instance.map(|i| i.tag_list()).unwrap_or_default();
                    self.ensure_ours(&instance_id, tags)?;
                    if instance.and_then(|i| i.db_cluster_identifier()) != Some(clone_id) {
                        return Err(Error::CloneConflict {
                            clone_id: instance_id,
                            reason: format!("the instance is not a member of {clone_id}"),
                        });
                    }
                    Ok(())
                }
                // The cluster left `available` between Describe and this
                // call (a maintenance action): not ready, asked again.
                Some(E::InvalidDbClusterStateFault(_)) => Err(Error::CloneNotReady {
                    clone_id: clone_id.to_string(),
                    status: "cluster not in a state to add an instance".into(),
                }),
                _ => Err(classify(SERVICE, "CreateDBInstance", e)),
            },
        }
    }
}

pub async fn describe_cluster(rds: &aws_sdk_rds::Client, id: &str) -> Result<Option<DbCluster>> {
    use aws_sdk_rds::operation::describe_db_clusters::DescribeDBClustersError as E;
    match rds
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_clusters().first().cloned()),
        Err(e) => match e.as_service_error() {
            Some(E::DbClusterNotFoundFault(_)) => Ok(None),
            _ => Err(classify(SERVICE, "DescribeDBClusters", e)),
        },
    }
}

fn info_of(clone_id: &str, cluster: &DbCluster) -> CloneInfo {
    CloneInfo {
        clone_id: clone_id.to_string(),
        host: cluster.endpoint().unwrap_or_default().to_string(),
        port: cluster
            .port()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(5432),
    }
}

impl ControlPlane for AwsControlPlane<'_> {
    async fn preflight(&self) -> Result<Vec<PreflightFailure>> {
        let mut failures = Vec::new();
        let mut fail = |check: &str, detail: String, hint: &str| {
            failures.push(PreflightFailure {
                check: check.into(),
                detail,
                hint: hint.into(),
            })
        };
        let arn = self.source_arn()?;
        if arn.region != self.settings.region {
            fail(
                "same_region",
                format!("the source is in {} and clonesync runs in {}", arn.region, self.settings.region),
                "deploy the target stack in the source cluster's Region: a clone is made in the Region of its source",
            );
        }
        let Some(cluster) =
            describe_cluster(&self.clients.source_rds, &self.source.cluster_arn).await?
        else {
            fail(
                "source_cluster",
                format!(
                    "DB cluster {} is not visible to the source role",
                    self.source.cluster_arn
                ),
                "check the ARN and that the source stack's role may describe it",
            );
            return Ok(failures);
        };
        if cluster.engine() != Some(ENGINE) {
            fail(
                "engine",
                format!("engine is {}", cluster.engine().unwrap_or("unknown")),
                "clonesync clones Aurora PostgreSQL clusters only",
            );
        }
        let version = cluster.engine_version().unwrap_or_default();
        if !version_offers_start_lsn(version) {
            fail(
                "engine_version",
                format!("engine version {version} lacks aurora_volume_logical_start_lsn() or the PostgreSQL 15 catalogs"),
                "upgrade the source to Aurora PostgreSQL 15.2 or later",
            );
        }
        if cluster.status() != Some("available") {
            fail(
                "cluster_status",
                format!(
                    "cluster status is {}",
                    cluster.status().unwrap_or("unknown")
                ),
                "wait until the cluster is available",
            );
        }
        if cluster.db_cluster_members().is_empty() {
            fail(
                "instances",
                "the cluster has no DB instance".into(),
                "add a writer instance to the source cluster",
            );
        }
        match cluster.db_cluster_parameter_group() {
            Some(group) => match self.parameter(group, "rds.logical_replication").await? {
                Some(value) if value == "1" => {}
                value => fail(
                    "rds_logical_replication",
                    format!(
                        "rds.logical_replication is {} in cluster parameter group {group}",
                        value.as_deref().unwrap_or("unset (0)")
                    ),
                    "set rds.logical_replication = 1 in the cluster parameter group and reboot the writer",
                ),
            },
            None => fail(
                "rds_logical_replication",
                "the cluster has no cluster parameter group".into(),
                "attach a cluster parameter group with rds.logical_replication = 1",
            ),
        }
        if cluster.storage_encrypted() == Some(true) && self.clone.kms_key_id.is_none() {
            fail(
                "kms_key",
                format!(
                    "the source is encrypted with {} and no clone.kms_key_id was given",
                    cluster.kms_key_id().unwrap_or("a KMS key")
                ),
                "the source key must be a customer managed key whose policy lets the target account use it \
                 (the aws/rds key cannot be shared); give clone.kms_key_id, a key in the target account",
            );
        }
        // A rotating secret is followed while the pipeline streams
        // (crate::steps::follow_rotation); a secret the source role cannot
        // see stops every step, so it is named here.
        match crate::aws::secrets::rotation(&self.clients.source_secrets, &self.source.secret_arn)
            .await
        {
            Err(Error::AwsNotFound { what, .. }) => fail(
                "source_secret",
                format!("{what} is not visible to the source role"),
                "check source.secret_arn and that the source stack's SourceSecretArn names it",
            ),
            Err(e) => return Err(e),
            Ok(Some(days)) => tracing::info!(
                secret = %self.source.secret_arn,
                days,
                "the source secret rotates; the lag monitor re-applies each new version"
            ),
            Ok(None) => {}
        }
        let earlier = self.earlier_clones(cluster.clone_group_id()).await?;
        if !earlier.is_empty() {
            fail(
                "earlier_clone",
                format!("clones of this cluster already in the target account: {}", earlier.join(", ")),
                "delete them (or finish their pipelines) first: two pipelines would hold two slots on the source",
            );
        }
        Ok(failures)
    }

    async fn create_clone(&self, clone_id: &str) -> Result<CloneInfo> {
        use aws_sdk_rds::operation::restore_db_cluster_to_point_in_time::RestoreDBClusterToPointInTimeError as E;
        // Look first: a retried step finds its clone without a second
        // restore request (and an untagged cluster is refused before any
        // change). DBClusterAlreadyExists below covers a race with another
        // attempt.
        if let Some(existing) = self.clone_cluster(clone_id).await? {
            self.ensure_ours(clone_id, existing.tag_list())?;
            tracing::info!(clone = clone_id, "the pipeline's clone exists already");
            self.writer_once_available(clone_id, &existing).await?;
            return Ok(info_of(clone_id, &existing));
        }
        let result = self
            .clients
            .rds
            .restore_db_cluster_to_point_in_time()
            .db_cluster_identifier(clone_id)
            .source_db_cluster_identifier(&self.source.cluster_arn)
            .restore_type("copy-on-write")
            .use_latest_restorable_time(true)
            .set_kms_key_id(self.clone.kms_key_id.clone())
            .set_db_subnet_group_name(self.clone.db_subnet_group.clone())
            .set_db_cluster_parameter_group_name(self.clone.db_cluster_parameter_group.clone())
            .set_vpc_security_group_ids(
                (!self.clone.security_group_ids.is_empty())
                    .then(|| self.clone.security_group_ids.clone()),
            )
            .set_tags(Some(self.tags()))
            .send()
            .await;
        let cluster = match result {
            Ok(out) => {
                tracing::info!(clone = clone_id, source = %self.source.cluster_arn, "copy-on-write clone requested");
                out.db_cluster().cloned()
            }
            Err(e) => match e.as_service_error() {
                Some(E::DbClusterAlreadyExistsFault(_)) => {
                    let existing = self.clone_cluster(clone_id).await?;
                    let tags = existing.as_ref().map(|c| c.tag_list()).unwrap_or_default();
                    self.ensure_ours(clone_id, tags)?;
                    tracing::info!(clone = clone_id, "the pipeline's clone exists already");
                    existing
                }
                // A shared cluster reads as not found until RAM has
                // associated the share, some time after the invitation is
                // accepted ("the same error is returned as if the specified
                // cluster doesn't exist", Aurora cross-account cloning).
                // Preflight saw it in the source account, so this is that
                // lag: not ready, asked again for a bounded time.
                Some(E::DbClusterNotFoundFault(_)) => {
                    return Err(Error::CloneNotReady {
                        clone_id: clone_id.to_string(),
                        status: format!(
                            "the shared cluster {} is not visible in this account yet (the RAM share's association is not active)",
                            self.source.cluster_arn
                        ),
                    })
                }
                Some(E::KmsKeyNotAccessibleFault(_)) => {
                    return Err(Error::AwsAccessDenied {
                        service: SERVICE.into(),
                        operation: "RestoreDBClusterToPointInTime".into(),
                        message: "the KMS key is not usable from the target account".into(),
                        cause: None,
                    })
                }
                _ => return Err(classify(SERVICE, "RestoreDBClusterToPointInTime", e)),
            },
        };
        match cluster {
            Some(cluster) => {
                self.writer_once_available(clone_id, &cluster).await?;
                Ok(info_of(clone_id, &cluster))
            }
            None => Err(Error::CloneNotReady {
                clone_id: clone_id.to_string(),
                status: "restore requested; the writer is created once the cluster is available"
                    .into(),
            }),
        }
    }

    async fn clone_start_lsn(&self, clone: &CloneInfo, clone_client: &Client) -> Result<Lsn> {
        aurora_start_lsn(&clone.clone_id, clone_client).await
    }

    async fn delete_clone(&self, clone_id: &str) -> Result<bool> {
        use aws_sdk_rds::operation::delete_db_cluster::DeleteDBClusterError as C;
        use aws_sdk_rds::operation::delete_db_instance::DeleteDBInstanceError as I;
        let Some(cluster) = self.clone_cluster(clone_id).await? else {
            return Ok(false);
        };
        // A cluster of that name that is not ours was not made by this
        // pipeline: there is nothing of ours to delete, and theirs stays.
        if let Err(conflict) = self.ensure_ours(clone_id, cluster.tag_list()) {
            tracing::warn!(clone = clone_id, reason = %conflict, "not deleting a cluster this pipeline does not own");
            return Ok(false);
        }
        for member in cluster.db_cluster_members() {
            let Some(instance) = member.db_instance_identifier() else {
                continue;
            };
            if let Err(e) = self
                .clients
                .rds
                .delete_db_instance()
                .db_instance_identifier(instance)
                .skip_final_snapshot(true)
                .send()
                .await
            {
                match e.as_service_error() {
                    Some(I::DbInstanceNotFoundFault(_))
                    | Some(I::InvalidDbInstanceStateFault(_)) => {}
                    _ => return Err(classify(SERVICE, "DeleteDBInstance", e)),
                }
            }
        }
        match self
            .clients
            .rds
            .delete_db_cluster()
            .db_cluster_identifier(clone_id)
            .skip_final_snapshot(true)
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(clone = clone_id, "clone deletion requested");
                Ok(true)
            }
            Err(e) => match e.as_service_error() {
                Some(C::DbClusterNotFoundFault(_)) => Ok(true),
                Some(C::InvalidDbClusterStateFault(_)) if cluster.status() == Some("deleting") => {
                    Ok(true)
                }
                Some(C::InvalidDbClusterStateFault(_)) => Err(Error::TransientAws {
                    service: SERVICE.into(),
                    operation: "DeleteDBCluster".into(),
                    message: format!(
                        "{clone_id} cannot be deleted yet (instances still being deleted)"
                    ),
                    cause: None,
                }),
                _ => Err(classify(SERVICE, "DeleteDBCluster", e)),
            },
        }
    }

    async fn source_login(&self) -> Result<SourceLogin> {
        let login = self.source_secret_login().await?;
        let (host, port) = match (&self.source.host, self.source.port) {
            (Some(host), port) => (host.clone(), port.or(login.port).unwrap_or(5432)),
            (None, port) => {
                let cluster = self.describe_source().await?;
                let endpoint = cluster.endpoint().ok_or_else(|| Error::CloneFailed {
                    reason: format!("source cluster {} has no endpoint", self.source.cluster_arn),
                    cause: None,
                })?;
                let cluster_port = cluster.port().and_then(|p| u16::try_from(p).ok());
                (endpoint.to_string(), port.or(cluster_port).unwrap_or(5432))
            }
        };
        Ok(SourceLogin {
            endpoint: login.endpoint(&host, port, self.source.login_database()),
            version: login.version,
        })
    }

    fn session(&self) -> SessionSettings {
        SessionSettings {
            tls: self.settings.db_tls.clone(),
            ..SessionSettings::default()
        }
    }

    async fn clone_endpoint(&self, clone: &CloneInfo) -> Result<Endpoint> {
        let login = match &self.clone.secret_arn {
            Some(arn) => fetch_login(&self.clients.secrets, arn).await?,
            None => self.source_secret_login().await?,
        };
        Ok(login.endpoint(&clone.host, clone.port, self.source.login_database()))
    }

    /// A clone with a secret of its own is that secret's business (its
    /// rotation sets the clone's password); only the source's login, which
    /// the clone copied, needs following.
    async fn previous_clone_endpoint(&self, clone: &CloneInfo) -> Result<Option<Endpoint>> {
        if self.clone.secret_arn.is_some() {
            return Ok(None);
        }
        Ok(
            fetch_previous_login(&self.clients.source_secrets, &self.source.secret_arn)
                .await?
                .map(|login| login.endpoint(&clone.host, clone.port, self.source.login_database())),
        )
    }
}

/// The clone when its cluster and a writer instance are `available`;
/// `Clone.NotReady` before, `Clone.Failed` when RDS gave up. Used by the
/// polling fallback and by the RDS event handler (which never trusts the
/// event alone).
pub async fn clone_status(
    rds: &aws_sdk_rds::Client,
    pipeline_id: &str,
    clone_id: &str,
) -> Result<CloneInfo> {
    let cluster = describe_cluster(rds, clone_id)
        .await?
        .ok_or_else(|| Error::AwsNotFound {
            service: SERVICE.into(),
            what: format!("clone DB cluster {clone_id}"),
        })?;
    if tag_value(cluster.tag_list(), TAG_PIPELINE) != Some(pipeline_id) {
        return Err(Error::CloneConflict {
            clone_id: clone_id.to_string(),
            reason: format!("it is not tagged {TAG_PIPELINE}={pipeline_id}"),
        });
    }
    let out = rds
        .describe_db_instances()
        .filters(
            Filter::builder()
                .name("db-cluster-id")
                .values(clone_id)
                .build(),
        )
        .send()
        .await
        .map_err(|e| classify(SERVICE, "DescribeDBInstances", e))?;
    let writer_available = out
        .db_instances()
        .iter()
        .any(|i| i.db_instance_status() == Some("available"));
    let cluster_status = cluster.status().unwrap_or("unknown");
    if cluster_status == "available" && writer_available && cluster.endpoint().is_some() {
        return Ok(info_of(clone_id, &cluster));
    }
    if matches!(
        cluster_status,
        "failed" | "inaccessible-encryption-credentials" | "incompatible-restore"
    ) {
        return Err(Error::CloneFailed {
            reason: format!("clone {clone_id} is {cluster_status}"),
            cause: None,
        });
    }
    Err(Error::CloneNotReady {
        clone_id: clone_id.to_string(),
        status: format!(
            "cluster {cluster_status}; writer instance {}",
            if writer_available {
                "available"
            } else {
                "not available yet"
            }
        ),
    })
}

/// `aurora_volume_logical_start_lsn()` on the clone, after checking that
/// the function exists (an engine version before 15.2, or not Aurora).
pub async fn aurora_start_lsn(clone_id: &str, clone: &Client) -> Result<Lsn> {
    crate::pg::wal::aurora_volume_logical_start_lsn(clone)
        .await?
        .ok_or_else(|| Error::CloneFailed {
            reason: format!(
                "aurora_volume_logical_start_lsn() does not exist on clone {clone_id}: \
                 Aurora PostgreSQL 15.2 or later is needed"
            ),
            cause: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_lsn_versions() {
        for ok in ["15.2", "15.10", "16.1", "17.4"] {
            assert!(version_offers_start_lsn(ok), "{ok}");
        }
        for old in ["15.1", "14.9", "13.6", "", "x"] {
            assert!(!version_offers_start_lsn(old), "{old}");
        }
    }
}
