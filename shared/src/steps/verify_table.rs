//! Verify one table by content while writes go on: source against target,
//! naming the rows that differ.
//!
//! The table is cut into key ranges of `chunk_rows` rows, found by walking
//! the source's key index; a first range and a last one are open-ended, so
//! rows only the target has are in a range too. `connections` workers,
//! each holding a session on either side, hash a range on both at once
//! ([`crate::pg::checksum`]). Writes go on meanwhile, so a range that
//! differs is re-checked: the source's WAL insert position is read after
//! its hash, the target is waited for until it has applied past it (every
//! slot of the table's database has confirmed it), and the target is
//! hashed again; equal now, or equal to a fresh source hash, the range is
//! settled. A range that still differs is bisected (at the middle key of
//! the side holding more of its rows) down to `leaf_rows` rows, whose row
//! hashes are compared; each row that differs is re-checked the same way
//! by key. A row is `differs` when the source kept the same content across
//! a re-check the target had applied past; rows whose source content
//! changed in each of `rechecks` rounds are `unsettled`. A table without a
//! key (replica identity full) is hashed whole, with the same re-check.
//!
//! Memory stays bounded whatever the table's size: ranges go through a
//! bounded queue, a leaf holds at most `16 × leaf_rows` row hashes per
//! side, and at most `max_keys` keys are kept per finding.
//!
//! Reads only, and only with its own sessions (closed when it returns):
//! running it twice is running it once. Leaves behind: nothing.

use crate::error::{Error, Result};
use crate::pg::checksum::{self, Key, KeyRange, RangeHash, TableLayout};
use crate::pg::{connect, wal, Endpoint, Lsn, SessionSettings, TableName};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// How a table compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Equal,
    Differs,
    /// Rows changed faster than the re-check could settle them, or the
    /// table's initial copy is still running.
    Unsettled,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Equal => "equal",
            Verdict::Differs => "differs",
            Verdict::Unsettled => "unsettled",
        }
    }
}

/// How a row differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowState {
    /// The source has it, the target does not.
    MissingOnTarget,
    /// The target has it, the source does not.
    ExtraOnTarget,
    /// Both have the key, with other content.
    Changed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DifferingRow {
    /// Each key column's text, in key order.
    pub key: Key,
    pub state: RowState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableVerdict {
    pub database: String,
    pub table: String,
    pub verdict: Verdict,
    /// The key columns compared by; empty: the table was compared whole.
    pub key: Vec<String>,
    /// Rows the source had when its ranges were first hashed.
    pub source_rows: i64,
    pub chunks: u64,
    /// Ranges (or rows) that needed a re-check.
    pub rechecked: u64,
    /// The rows that differ, at most `max_keys` of them.
    pub differing_rows: Vec<DifferingRow>,
    pub differing_total: u64,
    /// Keys that did not settle, at most `max_keys`.
    pub unsettled_keys: Vec<Key>,
    pub unsettled_total: u64,
    /// Why, where the rows alone do not say (missing columns, a table
    /// compared whole, a copy still running).
    pub detail: Option<String>,
    pub took_ms: u64,
}

/// How hard to look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyOptions {
    /// Rows per range.
    pub chunk_rows: i64,
    /// Worker pairs (one session on each side each).
    pub connections: usize,
    /// Rows at which bisection stops and rows are compared.
    pub leaf_rows: i64,
    /// Re-checks of a range or row before it is called unsettled.
    pub rechecks: u32,
    /// Keys kept per finding.
    pub max_keys: usize,
    /// How long one wait for the target to apply past a position may take.
    pub catch_up_seconds: u64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            chunk_rows: 10_000,
            connections: 2,
            leaf_rows: 64,
            rechecks: 5,
            max_keys: 100,
            catch_up_seconds: 60,
        }
    }
}

/// The most worker pairs one table may use.
pub const MAX_CONNECTIONS: usize = 16;

impl VerifyOptions {
    /// Every problem with the options, named.
    pub fn check(&self) -> Result<()> {
        let mut problems = Vec::new();
        if !(100..=10_000_000).contains(&self.chunk_rows) {
            problems.push(format!(
                "chunk_rows {} is not 100..=10000000",
                self.chunk_rows
            ));
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.connections) {
            problems.push(format!(
                "connections {} is not 1..={MAX_CONNECTIONS}",
                self.connections
            ));
        }
        if !(1..=10_000).contains(&self.leaf_rows) || self.leaf_rows > self.chunk_rows {
            problems.push(format!(
                "leaf_rows {} is not 1..=10000 and at most chunk_rows",
                self.leaf_rows
            ));
        }
        if !(1..=100).contains(&self.rechecks) {
            problems.push(format!("rechecks {} is not 1..=100", self.rechecks));
        }
        if !(1..=100_000).contains(&self.max_keys) {
            problems.push(format!("max_keys {} is not 1..=100000", self.max_keys));
        }
        if !(1..=3_600).contains(&self.catch_up_seconds) {
            problems.push(format!(
                "catch_up_seconds {} is not 1..=3600",
                self.catch_up_seconds
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidInput { problems })
        }
    }
}

/// A login to one side's database.
#[derive(Debug, Clone)]
pub struct Login {
    pub endpoint: Endpoint,
    pub settings: SessionSettings,
}

impl Login {
    async fn session(&self) -> Result<Client> {
        let settings = SessionSettings {
            // One range's hash is short, but a table compared whole is
            // hashed in one statement.
            statement_timeout: Duration::from_secs(600),
            ..self.settings.clone()
        };
        let client = connect(&self.endpoint, &settings).await?;
        checksum::prepare(&client).await?;
        Ok(client)
    }
}

/// Both sides of one database of a pipeline.
#[derive(Debug, Clone)]
pub struct Sides {
    pub source: Login,
    pub target: Login,
    /// The pipeline's slots on this database: the target has applied past
    /// a position when all of them confirmed it.
    pub slots: Vec<String>,
    /// Its subscriptions there (to see a table's initial copy).
    pub subscriptions: Vec<String>,
}

/// What the workers found, shared.
#[derive(Debug, Default)]
struct Findings {
    source_rows: i64,
    chunks: u64,
    rechecked: u64,
    differing: Vec<DifferingRow>,
    differing_total: u64,
    unsettled: Vec<Key>,
    unsettled_total: u64,
    whole: Option<(RangeHash, RangeHash, bool)>,
}

struct Context {
    layout: TableLayout,
    slots: Vec<String>,
    options: VerifyOptions,
    /// `wal_block_size`, `wal_segment_size`.
    geometry: (u64, u64),
    findings: Mutex<Findings>,
}

impl Context {
    fn note(&self, change: impl FnOnce(&mut Findings)) {
        // A worker that panicked holding the lock cannot have left the
        // counters half-written in a way that matters more than the panic.
        let mut findings = self.findings.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut findings);
    }

    fn differing(&self, key: Key, state: RowState) {
        let cap = self.options.max_keys;
        self.note(|f| {
            f.differing_total += 1;
            if f.differing.len() < cap {
                f.differing.push(DifferingRow { key, state });
            }
        });
    }

    fn unsettled(&self, key: Key) {
        let cap = self.options.max_keys;
        self.note(|f| {
            f.unsettled_total += 1;
            if f.unsettled.len() < cap {
                f.unsettled.push(key);
            }
        });
    }
}

/// The position a target must have confirmed to have applied everything
/// up to the insert position `lsn`. An insert position just past a page
/// header is the page's start to a WAL reader: the last record ended
/// at the page boundary, and on an idle source no sender ever reaches
/// past it.
pub fn applied_mark(lsn: Lsn, (page, segment): (u64, u64)) -> Lsn {
    const SHORT_HEADER: u64 = 24;
    const LONG_HEADER: u64 = 40;
    let at = lsn.as_u64();
    let in_page = at % page;
    // A segment's first page has the long header.
    let header = if at % segment < page {
        LONG_HEADER
    } else {
        SHORT_HEADER
    };
    if in_page == header {
        Lsn::from(at - in_page)
    } else {
        lsn
    }
}

struct Worker {
    source: Client,
    target: Client,
    context: Arc<Context>,
}

/// How deep bisection goes before the rest of a range is compared row by
/// row (rows moving under it can keep a split from shrinking it).
const MAX_DEPTH: u32 = 48;

impl Worker {
    fn layout(&self) -> &TableLayout {
        &self.context.layout
    }

    async fn hash_source(&self, range: &KeyRange) -> Result<(RangeHash, Lsn)> {
        let hash = checksum::hash_range(&self.source, self.layout(), range).await?;
        Ok((hash, wal::insert_lsn(&self.source).await?))
    }

    async fn both(&self, range: &KeyRange) -> Result<((RangeHash, Lsn), RangeHash)> {
        tokio::try_join!(
            self.hash_source(range),
            checksum::hash_range(&self.target, self.layout(), range)
        )
    }

    /// Wait until every slot confirmed the source position `lsn`.
    async fn wait_applied(&self, lsn: Lsn) -> Result<()> {
        let mark = applied_mark(lsn, self.context.geometry);
        let limit = Duration::from_secs(self.context.options.catch_up_seconds);
        let started = Instant::now();
        loop {
            let confirmed = wal::least_confirmed(&self.source, &self.context.slots).await?;
            if confirmed.is_some_and(|c| c >= mark) {
                return Ok(());
            }
            if started.elapsed() >= limit {
                return Err(Error::NotStreaming {
                    detail: format!(
                        "the target did not apply past {lsn} within {limit:?} (slots {} confirmed {})",
                        self.context.slots.join(", "),
                        confirmed.map_or("nothing".to_string(), |c| c.to_string())
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Re-check a range that differed: whether it settled, the last
    /// hashes of each side, and whether the source held still through a
    /// re-check the target had applied past.
    async fn recheck(
        &self,
        range: &KeyRange,
        first: (RangeHash, Lsn),
    ) -> Result<(bool, RangeHash, RangeHash, bool)> {
        let (mut source, mut lsn) = first;
        let mut target = RangeHash::default();
        for _ in 0..self.context.options.rechecks {
            self.wait_applied(lsn).await?;
            target = checksum::hash_range(&self.target, self.layout(), range).await?;
            if target == source {
                return Ok((true, source, target, false));
            }
            let (again, again_lsn) = self.hash_source(range).await?;
            if again == target {
                return Ok((true, again, target, false));
            }
            if again == source {
                return Ok((false, source, target, true));
            }
            source = again;
            lsn = again_lsn;
        }
        Ok((false, source, target, false))
    }

    /// Check a range: hash both sides, re-check, bisect, compare rows.
    fn check(
        &self,
        range: KeyRange,
        depth: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + '_>> {
        Box::pin(async move {
            let (first, target) = self.both(&range).await?;
            if depth == 0 {
                self.context.note(|f| f.source_rows += first.0.rows);
            }
            if first.0 == target {
                return Ok(());
            }
            self.context.note(|f| f.rechecked += 1);
            let (settled, source, target, stable) = self.recheck(&range, first).await?;
            if settled {
                return Ok(());
            }
            if self.layout().key.is_empty() {
                self.context
                    .note(|f| f.whole = Some((source, target, stable)));
                return Ok(());
            }
            let leaf = self.context.options.leaf_rows;
            let larger = source.rows.max(target.rows);
            tracing::debug!(table = %self.layout().table, ?range, depth, source_rows = source.rows, target_rows = target.rows, stable, "a range differs: bisecting");
            if larger <= leaf || depth >= MAX_DEPTH {
                return self.compare_rows(&range).await;
            }
            let side = if source.rows >= target.rows {
                &self.source
            } else {
                &self.target
            };
            match checksum::key_at(side, self.layout(), &range, larger / 2 - 1).await? {
                None => self.compare_rows(&range).await,
                Some(middle) => {
                    let left = KeyRange {
                        after: range.after.clone(),
                        upto: Some(middle.clone()),
                    };
                    let right = KeyRange {
                        after: Some(middle),
                        upto: range.upto,
                    };
                    self.check(left, depth + 1).await?;
                    self.check(right, depth + 1).await
                }
            }
        })
    }

    /// Compare a small range row by row, and re-check each row that
    /// differs by its key.
    async fn compare_rows(&self, range: &KeyRange) -> Result<()> {
        let limit = self.context.options.leaf_rows * 16;
        let (source, target) = tokio::try_join!(
            checksum::row_hashes(&self.source, self.layout(), range, limit + 1),
            checksum::row_hashes(&self.target, self.layout(), range, limit + 1)
        )?;
        if source.len() as i64 > limit || target.len() as i64 > limit {
            // Rows arrive faster than bisection narrows the range.
            let key = source
                .first()
                .or(target.first())
                .map(|(k, _)| k.clone())
                .unwrap_or_default();
            self.context.unsettled(key);
            return Ok(());
        }
        let mut candidates: Vec<Key> = Vec::new();
        for (key, hash) in &source {
            if target.iter().find(|(k, _)| k == key).map(|(_, h)| h) != Some(hash) {
                candidates.push(key.clone());
            }
        }
        for (key, _) in &target {
            if !source.iter().any(|(k, _)| k == key) {
                candidates.push(key.clone());
            }
        }
        for key in candidates {
            self.check_row(key).await?;
        }
        Ok(())
    }

    /// One row, by key, re-checked until the source holds still across a
    /// position the target applied past.
    async fn check_row(&self, key: Key) -> Result<()> {
        for _ in 0..self.context.options.rechecks {
            let source = checksum::row_hash(&self.source, self.layout(), &key).await?;
            let lsn = wal::insert_lsn(&self.source).await?;
            self.wait_applied(lsn).await?;
            let target = checksum::row_hash(&self.target, self.layout(), &key).await?;
            if source == target {
                return Ok(());
            }
            let again = checksum::row_hash(&self.source, self.layout(), &key).await?;
            if again == source {
                let state = match (source, target) {
                    (Some(_), None) => RowState::MissingOnTarget,
                    (None, Some(_)) => RowState::ExtraOnTarget,
                    _ => RowState::Changed,
                };
                self.context.differing(key, state);
                return Ok(());
            }
        }
        self.context.unsettled(key);
        Ok(())
    }
}

/// The layout of `table` on the source, or `Verify.TableUnknown`.
pub async fn source_layout(source: &Client, table: &TableName) -> Result<TableLayout> {
    checksum::layout(source, table)
        .await?
        .ok_or_else(|| Error::VerifyTableUnknown {
            table: table.to_string(),
        })
}

/// Verify `table` of `database`.
pub async fn run(
    sides: &Sides,
    database: &str,
    table: &TableName,
    options: &VerifyOptions,
) -> Result<TableVerdict> {
    options.check()?;
    let started = Instant::now();
    let source = sides.source.session().await?;
    let target = sides.target.session().await?;
    let layout = source_layout(&source, table).await?;
    let mut verdict = TableVerdict {
        database: database.to_string(),
        table: table.to_string(),
        verdict: Verdict::Equal,
        key: layout.key.clone(),
        source_rows: 0,
        chunks: 0,
        rechecked: 0,
        differing_rows: Vec::new(),
        differing_total: 0,
        unsettled_keys: Vec::new(),
        unsettled_total: 0,
        detail: None,
        took_ms: 0,
    };
    let finish = |mut verdict: TableVerdict| {
        verdict.took_ms = started.elapsed().as_millis() as u64;
        tracing::info!(database, table = %verdict.table, verdict = verdict.verdict.as_str(), differing = verdict.differing_total, unsettled = verdict.unsettled_total, took_ms = verdict.took_ms, "table verified");
        Ok(verdict)
    };
    if checksum::initial_copy_running(&target, &sides.subscriptions, table).await? {
        verdict.verdict = Verdict::Unsettled;
        verdict.detail = Some("its initial copy to the target is still running".into());
        return finish(verdict);
    }
    let geometry = wal::wal_geometry(&source).await?;
    let context = Arc::new(Context {
        layout,
        slots: sides.slots.clone(),
        options: options.clone(),
        geometry,
        findings: Mutex::new(Findings::default()),
    });
    let first = Worker {
        source,
        target,
        context: context.clone(),
    };
    // A column the source has and the target lacks may be a schema change
    // still on its way: wait for the target to pass the source once.
    let mut missing = checksum::missing_columns(&first.target, &context.layout).await?;
    if !missing.is_empty() {
        first
            .wait_applied(wal::insert_lsn(&first.source).await?)
            .await?;
        missing = checksum::missing_columns(&first.target, &context.layout).await?;
    }
    if !missing.is_empty() {
        verdict.verdict = Verdict::Differs;
        verdict.detail = Some(format!(
            "the target's table lacks column(s) {}",
            missing.join(", ")
        ));
        return finish(verdict);
    }
    if context.layout.key.is_empty() {
        first.context.note(|f| f.chunks = 1);
        first.check(KeyRange::default(), 0).await?;
    } else {
        chunked(sides, first, options).await?;
    }
    let findings = std::mem::take(&mut *context.findings.lock().unwrap_or_else(|e| e.into_inner()));
    verdict.source_rows = findings.source_rows;
    verdict.chunks = findings.chunks;
    verdict.rechecked = findings.rechecked;
    verdict.differing_rows = findings.differing;
    verdict.differing_total = findings.differing_total;
    verdict.unsettled_keys = findings.unsettled;
    verdict.unsettled_total = findings.unsettled_total;
    if let Some((source, target, stable)) = findings.whole {
        verdict.detail = Some(format!(
            "compared whole (no key): the source has {} row(s), the target {}",
            source.rows, target.rows
        ));
        if stable {
            verdict.differing_total = 1;
        } else {
            verdict.unsettled_total = 1;
        }
    }
    verdict.verdict = if verdict.differing_total > 0 {
        Verdict::Differs
    } else if verdict.unsettled_total > 0 {
        Verdict::Unsettled
    } else {
        Verdict::Equal
    };
    finish(verdict)
}

/// Cut the table into ranges on a session of its own while
/// `connections` workers (the first one among them) check them.
async fn chunked(sides: &Sides, first: Worker, options: &VerifyOptions) -> Result<()> {
    let context = first.context.clone();
    let cutter = sides.source.session().await?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<KeyRange>(options.connections * 2);
    let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
    let mut workers = tokio::task::JoinSet::new();
    workers.spawn(work(first, receiver.clone()));
    for _ in 1..options.connections {
        let worker = Worker {
            source: sides.source.session().await?,
            target: sides.target.session().await?,
            context: context.clone(),
        };
        workers.spawn(work(worker, receiver.clone()));
    }
    let produce = async {
        let mut after: Option<Key> = None;
        loop {
            let upto = checksum::key_at(
                &cutter,
                &context.layout,
                &KeyRange {
                    after: after.clone(),
                    upto: None,
                },
                options.chunk_rows - 1,
            )
            .await?;
            let range = KeyRange {
                after: after.clone(),
                upto: upto.clone(),
            };
            context.note(|f| f.chunks += 1);
            if sender.send(range).await.is_err() {
                // Every worker stopped: their error is the answer.
                break;
            }
            match upto {
                Some(key) => after = Some(key),
                None => break,
            }
        }
        drop(sender);
        Ok::<(), Error>(())
    };
    let wait = async {
        let mut outcome = Ok(());
        while let Some(done) = workers.join_next().await {
            let result = done.unwrap_or_else(|e| {
                Err(Error::Database {
                    operation: "verify a table".into(),
                    sqlstate: "XX000".into(),
                    message: format!("a verification worker stopped: {e}"),
                    cause: None,
                })
            });
            if let Err(e) = result {
                workers.abort_all();
                // The cutter waits on a full queue no worker reads now.
                receiver.lock().await.close();
                if outcome.is_ok() {
                    outcome = Err(e);
                }
            }
        }
        outcome
    };
    let (produced, waited) = tokio::join!(produce, wait);
    waited.and(produced)
}

async fn work(
    worker: Worker,
    ranges: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<KeyRange>>>,
) -> Result<()> {
    loop {
        let next = ranges.lock().await.recv().await;
        match next {
            Some(range) => worker.check(range, 0).await?,
            None => return Ok(()),
        }
    }
}

/// Whether `table` exists on the source (a table asked for that is not in
/// the pipeline's scope is `Verify.TableOutOfScope` only if it exists).
pub async fn exists(source: &Client, table: &TableName) -> Result<bool> {
    Ok(crate::pg::checksum::layout(source, table).await?.is_some())
}

/// The tables `publication` publishes: what a verify of the pipeline
/// covers in that database.
pub async fn published(source: &Client, publication: &crate::pg::PgName) -> Result<Vec<TableName>> {
    crate::pg::subscription::published_tables(source, publication).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_after_a_page_header_is_the_page_boundary() {
        let geometry = (8192, 16 * 1024 * 1024);
        assert_eq!(
            applied_mark(Lsn::from(8192 * 3 + 24), geometry),
            Lsn::from(8192 * 3)
        );
        assert_eq!(
            applied_mark(Lsn::from(16 * 1024 * 1024 + 40), geometry),
            Lsn::from(16 * 1024 * 1024)
        );
        assert_eq!(
            applied_mark(Lsn::from(8192 * 3 + 100), geometry),
            Lsn::from(8192 * 3 + 100)
        );
        // 24 bytes into a segment's first page is inside its long header.
        assert_eq!(
            applied_mark(Lsn::from(16 * 1024 * 1024 + 24), geometry),
            Lsn::from(16 * 1024 * 1024 + 24)
        );
    }

    #[test]
    fn options_out_of_range_are_named() {
        let bad = VerifyOptions {
            chunk_rows: 5,
            connections: 0,
            ..VerifyOptions::default()
        };
        let Err(Error::InvalidInput { problems }) = bad.check() else {
            panic!("accepted");
        };
        assert!(problems.iter().any(|p| p.contains("chunk_rows 5")));
        assert!(problems.iter().any(|p| p.contains("connections 0")));
        assert!(VerifyOptions::default().check().is_ok());
    }
}
