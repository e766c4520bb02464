//! The command line: `clonesync <command> [--option value]...`. A handful
//! of options per command, so a small strict parser: an unknown option, a
//! missing value or a bad number is a usage error naming it.

use clonesync::pg::{PgName, TableName};
use clonesync::pipeline::Scope;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
clonesync — keep a copy of a PostgreSQL database in sync, set up by the real
state machine (run locally in moto's Step Functions engine).

Usage:
  clonesync demo [--duration SECONDS] [--work-dir DIR] [--keep]
      Start a source server with a schema, data and a write load, run the
      setup state machine, show progress and lag, replicate until Ctrl-C or
      --duration, compare every table, tear everything down.

  clonesync local up --source-url URL [--pipeline ID] [--schemas A,B | --tables S.T,...]
                     [--databases DB1,DB2 | --databases all] [--apply-groups N]
                     [--work-dir DIR] [--clone-dir DIR] [--clone-port PORT]
      Clone a running local server (a superuser or REPLICATION login; the
      same major version as this machine's PostgreSQL binaries) and attach
      the clone to it by logical replication. The clone keeps running.
      --databases: replicate these databases (or every one) of the server
      instead of the URL's; --apply-groups: split each database's tables
      over N subscriptions (default 1).
  clonesync local status [--work-dir DIR] [--source-url URL]
  clonesync local down   [--work-dir DIR] [--source-url URL]
      Run statemachine/teardown.asl.json: subscription, slot, publication,
      clone and share go.
  clonesync local pause  [--work-dir DIR] [--source-url URL]
  clonesync local resume [--work-dir DIR] [--source-url URL]
      Disable / enable the subscription; the slot stays (and keeps WAL).
  clonesync local reseed [--work-dir DIR] [--source-url URL]
      After a lost slot: tear down with the clone, set up again (same names).

  clonesync local refresh [--work-dir DIR] [--source-url URL]
      Copy the tables new to the publication; list schema changes pending.
  clonesync drift  [--work-dir DIR] [--source-url URL]
      Table shapes compared, source against target.

  clonesync verify [--work-dir DIR] [--source-url URL] [--tables S.T,...]
                   [--connections N] [--chunk-rows N]
      Every table in scope (or those listed) compared by content while
      writes go on: equal, differs (naming the keys) or unsettled. Exit 0
      only when every table is equal.
  clonesync sequences [--work-dir DIR] [--source-url URL]
                      [--headroom N | --headroom-increments N]
      Set every sequence in scope on the target to the source's next value
      plus headroom (default 1000000 values); never moves one backwards.
  clonesync local switchover [--work-dir DIR] [--source-url URL]
                             [--quiet-seconds N | --source-stopped]
                             [--headroom N | --headroom-increments N]
                             [--drop-source-objects]
      Run statemachine/switchover.asl.json: the source quiet (no write for
      --quiet-seconds, default 30), zero lag, sequences, verification (any
      difference stops it), subscription disabled; with
      --drop-source-objects also the slot and publication dropped. The
      clone is then a standalone database.

  clonesync preflight --source-url URL [--pipeline ID] [--schemas A,B | --tables S.T,...]
      Every check on the source, as a readable report.

URL: postgres://user[:password]@host:port/dbname. Without a password in it,
PGPASSWORD is used. The password is never printed or written to disk.
--work-dir defaults to /var/tmp/clonesync/<pipeline> for `local`.
Log level: CLONESYNC_LOG=error|warn|info|debug (default warn).
";

#[derive(Debug)]
pub struct UsageError(pub String);

#[derive(Debug)]
pub enum Command {
    Help,
    Demo(DemoOptions),
    LocalUp(UpOptions),
    LocalStatus(PipelineDir),
    LocalDown(PipelineDir),
    LocalPause(PipelineDir),
    LocalResume(PipelineDir),
    LocalReseed(PipelineDir),
    LocalRefresh(PipelineDir),
    LocalDrift(PipelineDir),
    Verify(VerifyArgs),
    Sequences(PipelineDir, clonesync::steps::sequences::Headroom),
    Switchover(SwitchoverArgs),
    Preflight(SourceOptions),
}

#[derive(Debug)]
pub struct VerifyArgs {
    pub dir: PipelineDir,
    pub tables: Option<Vec<TableName>>,
    pub options: clonesync::steps::verify_table::VerifyOptions,
}

#[derive(Debug)]
pub struct SwitchoverArgs {
    pub dir: PipelineDir,
    pub quiet_seconds: u64,
    pub source_stopped: bool,
    pub drop_source_objects: bool,
    pub headroom: clonesync::steps::sequences::Headroom,
}

#[derive(Debug)]
pub struct DemoOptions {
    /// How long to replicate once streaming; `None`: until Ctrl-C.
    pub duration: Option<Duration>,
    pub work_dir: Option<PathBuf>,
    pub keep: bool,
}

#[derive(Debug)]
pub struct SourceOptions {
    pub source_url: String,
    pub pipeline: String,
    pub scope: Scope,
}

#[derive(Debug)]
pub struct UpOptions {
    pub source: SourceOptions,
    /// `--databases`: several databases, or all.
    pub databases: Option<clonesync::pipeline::DatabaseSelection>,
    /// `--apply-groups` (default 1).
    pub apply_groups: u32,
    pub work_dir: PathBuf,
    pub clone_dir: Option<PathBuf>,
    pub clone_port: Option<u16>,
}

#[derive(Debug)]
pub struct PipelineDir {
    pub work_dir: PathBuf,
    pub source_url: Option<String>,
    /// The pipeline to look for (`down` of a pipeline whose record is gone).
    pub pipeline: Option<clonesync::pipeline::PipelineId>,
}

struct Options(BTreeMap<String, String>);

const FLAG: &str = "";

impl Options {
    fn parse(args: &[String], with_value: &[&str], flags: &[&str]) -> Result<Options, UsageError> {
        let mut map = BTreeMap::new();
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (arg.as_str(), None),
            };
            let Some(key) = name.strip_prefix("--") else {
                return Err(UsageError(format!("unexpected argument {arg:?}")));
            };
            let value = if flags.contains(&key) {
                if inline.is_some() {
                    return Err(UsageError(format!("--{key} takes no value")));
                }
                FLAG.to_string()
            } else if with_value.contains(&key) {
                match inline {
                    Some(value) => value,
                    None => rest
                        .next()
                        .cloned()
                        .ok_or_else(|| UsageError(format!("--{key} needs a value")))?,
                }
            } else {
                return Err(UsageError(format!("unknown option --{key}")));
            };
            if map.insert(key.to_string(), value).is_some() {
                return Err(UsageError(format!("--{key} given twice")));
            }
        }
        Ok(Options(map))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn flag(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, UsageError> {
        self.get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| UsageError(format!("--{key}: {v:?} is not a valid number")))
            })
            .transpose()
    }

    /// `--pipeline`, checked before anything uses it as a name or a path.
    fn pipeline(&self) -> Result<Option<clonesync::pipeline::PipelineId>, UsageError> {
        self.get("pipeline")
            .map(|id| {
                clonesync::pipeline::PipelineId::new(id)
                    .map_err(|e| UsageError(format!("--pipeline: {e}")))
            })
            .transpose()
    }

    /// `--work-dir`, `--source-url` and `--pipeline` of a command on a
    /// pipeline set up with `local up`.
    fn pipeline_dir(&self) -> Result<PipelineDir, UsageError> {
        let pipeline = self.pipeline()?;
        Ok(PipelineDir {
            work_dir: self
                .get("work-dir")
                .map(PathBuf::from)
                .unwrap_or_else(|| default_work_dir(pipeline.as_deref().unwrap_or("local"))),
            source_url: self.get("source-url").map(str::to_string),
            pipeline,
        })
    }

    /// `--headroom N` (values) or `--headroom-increments N`.
    fn headroom(&self) -> Result<clonesync::steps::sequences::Headroom, UsageError> {
        use clonesync::steps::sequences::Headroom;
        match (
            self.number::<i64>("headroom")?,
            self.number::<i64>("headroom-increments")?,
        ) {
            (Some(_), Some(_)) => Err(UsageError(
                "give --headroom or --headroom-increments, not both".into(),
            )),
            (Some(n), None) if n >= 0 => Ok(Headroom::Values(n)),
            (None, Some(n)) if n >= 0 => Ok(Headroom::Increments(n)),
            (None, None) => Ok(Headroom::default()),
            _ => Err(UsageError("headroom must not be negative".into())),
        }
    }

    fn source(&self) -> Result<SourceOptions, UsageError> {
        let source_url = self
            .get("source-url")
            .ok_or_else(|| UsageError("--source-url is required".into()))?
            .to_string();
        let pipeline = self
            .pipeline()?
            .map(String::from)
            .unwrap_or_else(|| "local".to_string());
        let scope = match (self.get("schemas"), self.get("tables")) {
            (Some(_), Some(_)) => {
                return Err(UsageError("give --schemas or --tables, not both".into()))
            }
            (Some(list), None) => split_outside_quotes(list, ',')
                .and_then(|names| {
                    names
                        .iter()
                        .map(|name| identifier(name).and_then(PgName::new))
                        .collect::<Result<Vec<_>, _>>()
                })
                .and_then(Scope::schemas)
                .map_err(|e| UsageError(format!("--schemas: {e}")))?,
            (None, Some(list)) => split_outside_quotes(list, ',')
                .and_then(|names| {
                    names
                        .iter()
                        .map(|name| table(name))
                        .collect::<Result<Vec<_>, _>>()
                })
                .and_then(Scope::tables)
                .map_err(|e| UsageError(format!("--tables: {e}")))?,
            (None, None) => Scope::AllTables,
        };
        Ok(SourceOptions {
            source_url,
            pipeline,
            scope,
        })
    }
}

/// `--databases`: `all`, or names separated by commas (a name with a
/// comma or capitals in double quotes).
fn databases(text: &str) -> Result<clonesync::pipeline::DatabaseSelection, UsageError> {
    use clonesync::pipeline::triples::{AllDatabases, DatabaseEntry};
    use clonesync::pipeline::DatabaseSelection;
    if text == "all" {
        return Ok(DatabaseSelection::All(AllDatabases::All));
    }
    let names = split_outside_quotes(text, ',')
        .and_then(|names| {
            names
                .iter()
                .map(|name| identifier(name).and_then(PgName::new))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| UsageError(format!("--databases: {e}")))?;
    if names.is_empty() {
        return Err(UsageError("--databases lists no database".into()));
    }
    Ok(DatabaseSelection::List(
        names
            .into_iter()
            .map(|n| DatabaseEntry::Name(n.as_str().to_string()))
            .collect(),
    ))
}

/// `text` split at `separator` where it is not inside double quotes, as
/// psql reads a list of names.
fn split_outside_quotes(text: &str, separator: char) -> clonesync::Result<Vec<String>> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c == separator && !quoted => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if quoted {
        return Err(clonesync::Error::invalid(format!(
            "{text:?} has an unclosed double quote"
        )));
    }
    parts.push(current);
    Ok(parts)
}

/// One identifier as PostgreSQL reads it: `"Sales Ops"` verbatim (with
/// `""` for a quote), anything unquoted folded to lower case.
fn identifier(text: &str) -> clonesync::Result<String> {
    let text = text.trim();
    match text.strip_prefix('"') {
        Some(rest) => {
            let inner = rest.strip_suffix('"').ok_or_else(|| {
                clonesync::Error::invalid(format!("{text:?}: text after a closing quote"))
            })?;
            if inner.replace("\"\"", "").contains('"') {
                return Err(clonesync::Error::invalid(format!(
                    "{text:?}: a quote inside a quoted name must be doubled"
                )));
            }
            Ok(inner.replace("\"\"", "\""))
        }
        None => {
            if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == '"') {
                return Err(clonesync::Error::invalid(format!(
                    "{text:?} is not a name (quote it: \"{text}\")"
                )));
            }
            Ok(text.to_lowercase())
        }
    }
}

/// `schema.table` (or `table`, in public), each part an [`identifier`].
fn table(text: &str) -> clonesync::Result<TableName> {
    let parts = split_outside_quotes(text, '.')?;
    match parts.as_slice() {
        [name] => TableName::new("public", &identifier(name)?),
        [schema, name] => TableName::new(&identifier(schema)?, &identifier(name)?),
        _ => Err(clonesync::Error::invalid(format!(
            "{text:?} is not schema.table"
        ))),
    }
}

/// The default work directory of a local pipeline.
pub fn default_work_dir(pipeline: &str) -> PathBuf {
    PathBuf::from("/var/tmp/clonesync").join(pipeline)
}

pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] | ["help" | "--help" | "-h", ..] => Ok(Command::Help),
        ["demo", ..] => {
            let o = Options::parse(&args[1..], &["duration", "work-dir"], &["keep"])?;
            Ok(Command::Demo(DemoOptions {
                duration: o.number::<u64>("duration")?.map(Duration::from_secs),
                work_dir: o.get("work-dir").map(PathBuf::from),
                keep: o.flag("keep"),
            }))
        }
        ["local", "up", ..] => {
            let o = Options::parse(
                &args[2..],
                &[
                    "source-url",
                    "pipeline",
                    "schemas",
                    "tables",
                    "work-dir",
                    "clone-dir",
                    "clone-port",
                    "databases",
                    "apply-groups",
                ],
                &[],
            )?;
            let source = o.source()?;
            let databases = o.get("databases").map(databases).transpose()?;
            let apply_groups = match o.number::<u32>("apply-groups")? {
                None => 1,
                Some(n) if (1..=clonesync::pipeline::triples::MAX_APPLY_GROUPS).contains(&n) => n,
                Some(n) => {
                    return Err(UsageError(format!(
                        "--apply-groups: {n} is not 1..={}",
                        clonesync::pipeline::triples::MAX_APPLY_GROUPS
                    )))
                }
            };
            Ok(Command::LocalUp(UpOptions {
                databases,
                apply_groups,
                work_dir: o
                    .get("work-dir")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| default_work_dir(&source.pipeline)),
                clone_dir: o.get("clone-dir").map(PathBuf::from),
                clone_port: match o.number::<u16>("clone-port")? {
                    Some(port) if port < 1024 => {
                        return Err(UsageError(format!(
                            "--clone-port {port}: must be 1024-65535 (the clone's server does not run as root)"
                        )))
                    }
                    port => port,
                },
                source,
            }))
        }
        ["local", which @ ("status" | "down" | "pause" | "resume" | "reseed" | "refresh" | "drift"), ..]
        | [which @ "drift", ..] => {
            let rest = if *which == "drift" && args[0] == "drift" {
                &args[1..]
            } else {
                &args[2..]
            };
            let o = Options::parse(rest, &["work-dir", "source-url", "pipeline"], &[])?;
            let pipeline = o.pipeline()?;
            let dir = PipelineDir {
                work_dir: o
                    .get("work-dir")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| default_work_dir(pipeline.as_deref().unwrap_or("local"))),
                source_url: o.get("source-url").map(str::to_string),
                pipeline,
            };
            Ok(match *which {
                "status" => Command::LocalStatus(dir),
                "pause" => Command::LocalPause(dir),
                "resume" => Command::LocalResume(dir),
                "reseed" => Command::LocalReseed(dir),
                "refresh" => Command::LocalRefresh(dir),
                "drift" => Command::LocalDrift(dir),
                _ => Command::LocalDown(dir),
            })
        }
        ["verify", ..] | ["local", "verify", ..] => {
            let rest = if args[0] == "verify" { &args[1..] } else { &args[2..] };
            let o = Options::parse(
                rest,
                &[
                    "work-dir",
                    "source-url",
                    "pipeline",
                    "tables",
                    "connections",
                    "chunk-rows",
                ],
                &[],
            )?;
            let defaults = clonesync::steps::verify_table::VerifyOptions::default();
            let options = clonesync::steps::verify_table::VerifyOptions {
                connections: o.number("connections")?.unwrap_or(defaults.connections),
                chunk_rows: o.number("chunk-rows")?.unwrap_or(defaults.chunk_rows),
                ..defaults
            };
            options
                .check()
                .map_err(|e| UsageError(format!("verify: {e}")))?;
            let tables = o
                .get("tables")
                .map(|list| {
                    split_outside_quotes(list, ',')
                        .and_then(|names| names.iter().map(|name| table(name)).collect())
                        .map_err(|e| UsageError(format!("--tables: {e}")))
                })
                .transpose()?;
            Ok(Command::Verify(VerifyArgs {
                dir: o.pipeline_dir()?,
                tables,
                options,
            }))
        }
        ["sequences", ..] | ["local", "sequences", ..] => {
            let rest = if args[0] == "sequences" {
                &args[1..]
            } else {
                &args[2..]
            };
            let o = Options::parse(
                rest,
                &[
                    "work-dir",
                    "source-url",
                    "pipeline",
                    "headroom",
                    "headroom-increments",
                ],
                &[],
            )?;
            Ok(Command::Sequences(o.pipeline_dir()?, o.headroom()?))
        }
        ["local", "switchover", ..] => {
            let o = Options::parse(
                &args[2..],
                &[
                    "work-dir",
                    "source-url",
                    "pipeline",
                    "quiet-seconds",
                    "headroom",
                    "headroom-increments",
                ],
                &["source-stopped", "drop-source-objects"],
            )?;
            if o.flag("source-stopped") && o.get("quiet-seconds").is_some() {
                return Err(UsageError(
                    "give --quiet-seconds or --source-stopped, not both".into(),
                ));
            }
            Ok(Command::Switchover(SwitchoverArgs {
                dir: o.pipeline_dir()?,
                quiet_seconds: o.number("quiet-seconds")?.unwrap_or(30),
                source_stopped: o.flag("source-stopped"),
                drop_source_objects: o.flag("drop-source-objects"),
                headroom: o.headroom()?,
            }))
        }
        ["local", ..] => Err(UsageError(
            "local needs up, status, down, pause, resume, reseed, refresh, drift, verify, sequences or switchover".into(),
        )),
        ["preflight", ..] => {
            let o = Options::parse(
                &args[1..],
                &["source-url", "pipeline", "schemas", "tables"],
                &[],
            )?;
            Ok(Command::Preflight(o.source()?))
        }
        [other, ..] => Err(UsageError(format!("unknown command {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn demo_options() {
        let Ok(Command::Demo(o)) = parse(&args("demo --duration 30 --keep")) else {
            panic!("not a demo")
        };
        assert_eq!(o.duration, Some(Duration::from_secs(30)));
        assert!(o.keep);
        let Ok(Command::Demo(o)) = parse(&args("demo --duration=5")) else {
            panic!("not a demo")
        };
        assert_eq!(o.duration, Some(Duration::from_secs(5)));
    }

    #[test]
    fn usage_errors_name_the_problem() {
        for (line, expected) in [
            (
                "demo --duration soon",
                "--duration: \"soon\" is not a valid number",
            ),
            ("demo --fast", "unknown option --fast"),
            ("demo --duration", "--duration needs a value"),
            ("local up", "--source-url is required"),
            (
                "local sideways",
                "local needs up, status, down, pause, resume, reseed, refresh, drift, verify, sequences or switchover",
            ),
            (
                "preflight --source-url u --schemas a --tables b",
                "not both",
            ),
            ("launch", "unknown command \"launch\""),
            ("demo --keep --keep", "--keep given twice"),
            ("local up --source-url u --pipeline ../../x", "--pipeline"),
            ("local down --pipeline Bad-Id", "--pipeline"),
            ("local up --source-url u --clone-port 80", "1024-65535"),
            (
                "local up --source-url u --clone-port 70000",
                "not a valid number",
            ),
            ("preflight --source-url u --tables '\"a.b'", "unclosed"),
            ("verify --connections 0", "connections 0"),
            ("verify --chunk-rows many", "not a valid number"),
            ("sequences --headroom 5 --headroom-increments 2", "not both"),
            ("sequences --headroom -5", "negative"),
            (
                "local switchover --quiet-seconds 5 --source-stopped",
                "not both",
            ),
        ] {
            let err = parse(&args(line)).unwrap_err();
            assert!(err.0.contains(expected), "{line}: {}", err.0);
        }
    }

    #[test]
    fn databases_and_apply_groups() {
        use clonesync::pipeline::triples::AllDatabases;
        use clonesync::pipeline::DatabaseSelection;
        let Ok(Command::LocalUp(o)) = parse(&args(
            "local up --source-url postgres://a@h:1/d --databases all --apply-groups 3",
        )) else {
            panic!("not local up")
        };
        assert_eq!(o.databases, Some(DatabaseSelection::All(AllDatabases::All)));
        assert_eq!(o.apply_groups, 3);
        let Ok(Command::LocalUp(o)) = parse(&args(
            r#"local up --source-url postgres://a@h:1/d --databases orders,"AuditLog""#,
        )) else {
            panic!("not local up")
        };
        let Some(DatabaseSelection::List(list)) = &o.databases else {
            panic!("not a list")
        };
        let names: Vec<&str> = list.iter().map(|e| e.name()).collect();
        assert_eq!(names, ["orders", "AuditLog"]);
        assert_eq!(o.apply_groups, 1);
        for bad in [
            "--apply-groups 0",
            "--apply-groups 17",
            "--apply-groups x",
            "--databases ,",
        ] {
            let line = format!("local up --source-url postgres://a@h:1/d {bad}");
            assert!(parse(&args(&line)).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn scopes_and_defaults() {
        let Ok(Command::LocalUp(o)) = parse(&args(
            "local up --source-url postgres://a@h:1/d --pipeline p1 --tables sales.orders,items",
        )) else {
            panic!("not local up")
        };
        assert_eq!(o.work_dir, PathBuf::from("/var/tmp/clonesync/p1"));
        let Scope::Tables { tables } = &o.source.scope else {
            panic!("not tables")
        };
        assert_eq!(tables[0], TableName::new("sales", "orders").unwrap());
        assert_eq!(tables[1], TableName::new("public", "items").unwrap());
    }

    #[test]
    fn names_as_psql_writes_them() {
        let Ok(Command::Preflight(o)) = parse(&[
            "preflight".into(),
            "--source-url".into(),
            "u".into(),
            "--tables".into(),
            r#""Sales Ops"."Order Items", "a.b"."c,d", Plain.MixedCase, "q""uote""#.into(),
        ]) else {
            panic!("not preflight")
        };
        let Scope::Tables { tables } = &o.scope else {
            panic!("not tables")
        };
        assert_eq!(
            tables.to_vec(),
            vec![
                TableName::new("Sales Ops", "Order Items").unwrap(),
                TableName::new("a.b", "c,d").unwrap(),
                TableName::new("plain", "mixedcase").unwrap(),
                TableName::new("public", "q\"uote").unwrap(),
            ]
        );
        let Ok(Command::Preflight(o)) = parse(&[
            "preflight".into(),
            "--source-url".into(),
            "u".into(),
            "--schemas".into(),
            r#""Sales, Ops",public"#.into(),
        ]) else {
            panic!("not preflight")
        };
        let Scope::Schemas { schemas } = &o.scope else {
            panic!("not schemas")
        };
        assert_eq!(schemas[0].as_str(), "Sales, Ops");
        assert_eq!(schemas[1].as_str(), "public");
    }
}
