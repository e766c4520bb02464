//! Throwaway servers and the local control plane around them.

use clonesync::pg::{self, Endpoint, Secret, SessionSettings};
use clonesync::pipeline::PipelineSpec;
use clonesync::steps::preflight::PreflightReport;
use clonesync::workflow::State;
use clonesync_local::{LocalControlPlane, LocalServer};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use tokio_postgres::Client;

/// The database the tests replicate (not `postgres`, to prove the database
/// name is carried everywhere it must be).
pub const DB: &str = "appdb";
pub const SUPERUSER: &str = "clonesync_admin";

/// Settings of a source that logical replication can use.
pub const LOGICAL: &[(&str, &str)] = &[
    ("wal_level", "logical"),
    ("max_wal_senders", "10"),
    ("max_replication_slots", "10"),
    ("max_logical_replication_workers", "4"),
    ("max_worker_processes", "8"),
    // Throwaway servers: durability buys nothing here.
    ("fsync", "off"),
    ("full_page_writes", "off"),
    // Subscriber feedback every second, so slot positions settle quickly.
    ("wal_receiver_status_interval", "1s"),
    ("log_min_messages", "info"),
];

/// A random password per server, so no test depends on a known one.
pub fn random_password() -> Secret {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Secret::new(format!("pw-{:x}-{}", nanos, std::process::id()))
}

const TEMP_PREFIX: &str = "clonesync-test-";
const OWNER_FILE: &str = "owner.pid";

/// A temporary directory the server account can enter, marked with the
/// test process's pid.
fn temp_root() -> TempDir {
    reap_orphans();
    let dir = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempdir()
        .expect("temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
        .expect("chmod temporary directory");
    std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
        .expect("write owner file");
    dir
}

/// Stop and remove the servers of test processes that died without running
/// their destructors (killed by a timeout, say), so they do not pile up.
fn reap_orphans() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(TEMP_PREFIX));
        let owner = std::fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok());
        let Some(owner) = owner.filter(|_| is_ours) else {
            continue;
        };
        if Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        kill_processes_under(&path);
        for data in find_data_dirs(&path) {
            if let Ok(bins) = clonesync_local::PgBinaries::locate() {
                let server = LocalServer::open(
                    data.parent().unwrap_or(&path).to_path_buf(),
                    0,
                    SUPERUSER,
                    Secret::new(""),
                    bins,
                    clonesync_local::RunAs::detect().ok().flatten(),
                );
                server.stop_now();
            }
        }
        let _ = std::fs::remove_dir_all(&path);
    }
}

/// SIGKILL every process but the servers whose command line names a path
/// under `root`: a `clonesync local up` (or status, down) a killed test
/// left running works in a directory under its root. Servers are stopped
/// in order by the caller; moto follows its `clonesync` (its lifeline).
fn kill_processes_under(root: &Path) {
    let Some(root) = root.to_str() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let program = args.first().map(String::as_str).unwrap_or("");
        let is_server = Path::new(program)
            .file_name()
            .is_some_and(|name| name == "postgres");
        if !is_server && pid != std::process::id() && args.iter().any(|a| a.contains(root)) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// `data` directories up to two levels below `root`.
fn find_data_dirs(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten().filter(|e| e.path().is_dir()) {
            if entry.file_name() == "data" {
                found.push(entry.path());
            } else if depth < 2 {
                pending.push((entry.path(), depth + 1));
            }
        }
    }
    found
}

/// One server in its own temporary directory; stopped (immediately) and
/// removed on drop.
pub struct TestServer {
    pub server: LocalServer,
    _root: TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(LOGICAL).await
    }

    pub async fn start_with(settings: &[(&str, &str)]) -> TestServer {
        let root = temp_root();
        let server = start_server(&root.path().join("server"), settings).await;
        TestServer {
            server,
            _root: root,
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        self.server.endpoint(DB)
    }

    /// The directory everything of this server lives in.
    pub fn root(&self) -> &Path {
        self._root.path()
    }

    pub async fn client(&self) -> Client {
        connect(&self.endpoint()).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.stop_now();
    }
}

async fn start_server(dir: &Path, settings: &[(&str, &str)]) -> LocalServer {
    let template = template_cluster().await;
    let mut server =
        LocalServer::init_from_copy(dir, &template, SUPERUSER, random_password(), settings)
            .await
            .expect("a cluster copied from the template");
    server.start().await.expect("start server");
    let admin = connect(&server.endpoint("postgres")).await;
    // A run that asks for a major must really be on it: wrong binaries
    // found on the way would otherwise pass as that major.
    let requested = clonesync_local::requested_major().expect("CLONESYNC_PG_MAJOR");
    if let Some(major) = requested {
        let running = server_major(&admin).await;
        assert_eq!(
            running,
            major,
            "{} asks for PostgreSQL {major}, the server is {running}",
            clonesync_local::PG_MAJOR_VAR
        );
    }
    admin
        .batch_execute(&format!("CREATE DATABASE {DB}"))
        .await
        .expect("create database");
    server
}

/// What every template directory's name starts with (not [`TEMP_PREFIX`]:
/// a template outlives the test process that made it).
const TEMPLATE_PREFIX: &str = "clonesync-pgtemplate-";

/// A stopped cluster of the binaries this run uses, made by `initdb` once
/// for every test process and copied for each server
/// ([`LocalServer::init_from_copy`]): `initdb` costs about 0.8 s of CPU,
/// a copy about a fifth of that, and the tests start hundreds of servers.
/// Named after the binaries (their directory and the `postgres`
/// program's size and time), so other binaries get their own. Made in a
/// temporary directory and renamed into place: a process that loses the
/// race uses the winner's and removes its own.
async fn template_cluster() -> PathBuf {
    let bins = clonesync_local::PgBinaries::locate().expect("PostgreSQL binaries");
    let postgres = bins.program("postgres");
    let meta = std::fs::metadata(&postgres).expect("the postgres program");
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let key = format!(
        "{}|{}|{modified}|{SUPERUSER}",
        postgres.display(),
        meta.len()
    );
    let digest = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let template = std::env::temp_dir().join(format!("{TEMPLATE_PREFIX}{digest:016x}"));
    if template.join("data").join("PG_VERSION").is_file() {
        return template;
    }
    let partial = temp_root();
    let made = partial.path().join("template");
    LocalServer::init(&made, SUPERUSER, random_password(), &[])
        .await
        .expect("initdb of the template cluster");
    if std::fs::rename(&made, &template).is_err() && !template.join("data").is_dir() {
        panic!("cannot put the template cluster at {}", template.display());
    }
    template
}

/// The setup state of a pipeline `spec` over the database [`DB`]: what
/// the state machine's ValidateInput gives, with `spec`'s own names.
pub fn state_of(spec: &PipelineSpec) -> State {
    let input = clonesync_local::runtime::request(
        spec.id.as_str(),
        serde_json::json!({"kind": "all_tables"}),
        DB,
        clonesync::pipeline::Waits::default(),
    );
    let mut state = clonesync::workflow::state::validate(input, clonesync_local::moto::REGION)
        .expect("a valid request");
    state.pipeline = spec.clone();
    state
}

/// Preflight of `spec` through `plane` (its login, its clone settings),
/// the state machine's own path.
pub async fn preflight_with<P: clonesync::ports::ControlPlane>(
    plane: &P,
    spec: &PipelineSpec,
) -> clonesync::Result<PreflightReport> {
    clonesync::workflow::preflight(plane, &state_of(spec)).await
}

/// The server's major version (`server_version_num / 10000`).
pub async fn server_major(client: &Client) -> u32 {
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int / 10000",
            &[],
        )
        .await
        .expect("server_version_num");
    u32::try_from(row.get::<_, i32>(0)).expect("a positive version")
}

/// A table's `relreplident` (`d`, `f`, `i` or `n`), by its qualified name.
pub async fn replica_identity(client: &Client, table: &str) -> String {
    client
        .query_one(
            "SELECT relreplident::text FROM pg_class WHERE oid = $1::text::regclass",
            &[&table],
        )
        .await
        .expect("the table's replica identity")
        .get(0)
}

/// A session as the application has it (the login's default
/// search_path): tests create and query tables by unqualified name, as
/// users do.
pub async fn connect(endpoint: &Endpoint) -> Client {
    let settings = SessionSettings {
        search_path: pg::SearchPath::Application,
        ..SessionSettings::default()
    };
    pg::connect(endpoint, &settings).await.expect("connect")
}

/// A source server plus a local control plane that clones it; every server
/// under the directory (source and clones) is stopped on drop.
pub struct TestEnv {
    pub source: LocalServer,
    pub plane: LocalControlPlane,
    pub root_path: PathBuf,
    _root: TempDir,
}

impl TestEnv {
    pub async fn start() -> TestEnv {
        TestEnv::start_with(LOGICAL).await
    }

    /// The usual settings with one changed.
    pub async fn start_with_setting(name: &str, value: &str) -> TestEnv {
        let mut settings = LOGICAL.to_vec();
        settings.push((name, value));
        TestEnv::start_with(&settings).await
    }

    pub async fn start_with(settings: &[(&str, &str)]) -> TestEnv {
        let root = temp_root();
        let source = start_server(&root.path().join("source"), settings).await;
        let clones = root.path().join("clones");
        std::fs::create_dir_all(&clones).expect("clones dir");
        if let Some(run_as) = source.run_as() {
            run_as.own(&clones).expect("chown clones dir");
        }
        let plane = LocalControlPlane::for_server(&source, DB, &clones);
        TestEnv {
            source,
            plane,
            root_path: root.path().to_path_buf(),
            _root: root,
        }
    }

    pub fn source_endpoint(&self) -> Endpoint {
        self.source.endpoint(DB)
    }

    /// Preflight of `spec` over this environment's database, through the
    /// same multi-triple path the setup state machine runs.
    pub async fn preflight(&self, spec: &PipelineSpec) -> clonesync::Result<PreflightReport> {
        preflight_with(&self.plane, spec).await
    }

    pub async fn source_client(&self) -> Client {
        connect(&self.source_endpoint()).await
    }

    /// Clone directories that exist (finished or not).
    pub fn clone_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.root_path.join("clones"))
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }

    /// Clone servers still running: postmasters whose command line names a
    /// data directory under this environment's clones directory.
    pub fn running_servers(&self) -> usize {
        servers_under(&self.root_path.join("clones"))
    }
}

/// PostgreSQL processes whose command line names a path under `dir`.
pub fn servers_under(dir: &Path) -> usize {
    let dir = dir.to_string_lossy();
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
                .filter(|cmd| cmd.contains("postgres") && cmd.contains(dir.as_ref()))
                .count()
        })
        .unwrap_or(0)
}

/// A URL for `endpoint` without its password (which the caller passes in
/// `PGPASSWORD`, as a user would, to keep it out of the process list).
pub fn url_without_password(endpoint: &Endpoint) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        endpoint.user, endpoint.host, endpoint.port, endpoint.dbname
    )
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for dir in self.clone_dirs() {
            let clone = LocalServer::open(
                dir,
                0,
                SUPERUSER,
                Secret::new(""),
                self.source.binaries().clone(),
                self.source.run_as(),
            );
            clone.stop_now();
        }
        self.source.stop_now();
    }
}
