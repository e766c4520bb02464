//! The house's shape, read from the source: no import circle among the
//! library's files, every import going down the layers `lib.rs` lists, and
//! no step, workflow, monitor or handler reaching past the ports into an
//! AWS adapter. The local crate has no circle either.
//!
//! Imports are read from `use crate::...` statements and inline
//! `crate::a::b` paths. A path is resolved to the longest file prefix; a
//! name a `mod.rs` re-exports (`pub use sub::{Name}`) resolves to `sub.rs`,
//! so `crate::pg::Endpoint` counts as the session adapter, not the value
//! types beside it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A library's files (paths relative to its `src/`, `/`-separated), with
/// their text.
fn sources(src: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(src)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d}}` as the paths `a::b`, `a::c::d`.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree);
        return vec![path
            .split("::")
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != "self" && *p != "*")
            .map(String::from)
            .collect()];
    };
    let head: Vec<String> = tree[..open]
        .split("::")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|i| !i.trim().is_empty())
        .flat_map(expand)
        .map(|tail| head.iter().cloned().chain(tail).collect())
        .collect()
}

/// Every `crate::` path a file names.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let text = strip_comments(text);
    let mut paths = Vec::new();
    // `use` statements first, cut out of the text so the inline scan
    // below does not read their heads again.
    let mut code = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("use crate::") {
        code.push_str(&rest[..at]);
        let after = &rest[at + "use crate::".len()..];
        let end = after.find(';').unwrap_or(after.len());
        paths.extend(expand(&after[..end]));
        rest = &after[end..];
    }
    code.push_str(rest);
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let len = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(after.len());
        let path: Vec<String> = after[..len]
            .split("::")
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        if !path.is_empty() {
            paths.push(path);
        }
        rest = &after[len..];
    }
    paths
}

/// Names a `mod.rs` re-exports, and from which of its files.
fn reexports(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for statement in strip_comments(text).split(';') {
        let statement = statement.trim();
        let Some(tree) = statement.strip_prefix("pub use ") else {
            continue;
        };
        if tree.starts_with("crate::") {
            continue;
        }
        for path in expand(tree) {
            if let (Some(sub), Some(name)) = (path.first(), path.last()) {
                out.insert(name.clone(), sub.clone());
            }
        }
    }
    out
}

/// The file a path names (longest existing prefix, re-exports followed).
fn resolve(files: &BTreeMap<String, String>, path: &[String]) -> Option<String> {
    if matches!(path.first().map(String::as_str), Some("Error" | "Result")) {
        return files
            .contains_key("error.rs")
            .then(|| "error.rs".to_string());
    }
    for n in (1..=path.len()).rev() {
        let base = path[..n].join("/");
        let file = format!("{base}.rs");
        if files.contains_key(&file) {
            return Some(file);
        }
        let module = format!("{base}/mod.rs");
        if let Some(text) = files.get(&module) {
            if let Some(name) = path.get(n) {
                if let Some(sub) = reexports(text).get(name) {
                    let target = format!("{base}/{sub}.rs");
                    if files.contains_key(&target) {
                        return Some(target);
                    }
                }
            }
            return Some(module);
        }
    }
    None
}

/// file -> the files it imports (its own `mod.rs` parents excluded: a
/// module's children may use what the module itself declares).
fn edges(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    files
        .iter()
        .map(|(file, text)| {
            let targets = crate_paths(text)
                .iter()
                .filter_map(|p| resolve(files, p))
                .filter(|t| t != file && t != "lib.rs")
                .filter(|t| {
                    !(t.ends_with("mod.rs") && file.starts_with(t.trim_end_matches("mod.rs")))
                })
                .collect();
            (file.clone(), targets)
        })
        .collect()
}

/// The circles (strongly connected sets of more than one file).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Reachability is enough at this size: a and b share a circle when
    // each reaches the other.
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(f) = todo.pop() {
            for t in edges.get(&f).into_iter().flatten() {
                if seen.insert(t.clone()) {
                    todo.push(t.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|f| (f, reach(f))).collect();
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for (file, seen) in &reached {
        let mut circle: Vec<String> = seen
            .iter()
            .filter(|other| reached.get(other).is_some_and(|back| back.contains(*file)))
            .cloned()
            .collect();
        if !circle.is_empty() {
            if !circle.contains(file) {
                circle.push((*file).clone());
            }
            circle.sort();
            found.insert(circle);
        }
    }
    found.into_iter().collect()
}

/// The library's layers, bottom (0) to top, as `lib.rs` lists them.
fn layer(file: &str) -> usize {
    let top = file.split('/').next().unwrap_or(file);
    match (top, file) {
        (_, "error.rs" | "pg/lsn.rs" | "pg/name.rs" | "pg/secret.rs" | "pg/quote.rs") => 0,
        ("pipeline", _) => 1,
        ("pg", _) => 2,
        ("ports", _) => 3,
        ("aws", _) => 4,
        ("steps", _) => 5,
        ("monitor", _) => 6,
        ("workflow", _) => 7,
        (_, "handlers.rs") => 8,
        (_, "lambda.rs") => 9,
        (_, "lib.rs") => 10,
        _ => panic!("{file} is in no layer: add it to lib.rs's list and here"),
    }
}

/// Modules that work through the ports and must not reach an AWS adapter.
const PORT_USERS: &[&str] = &["steps", "workflow", "monitor", "handlers.rs"];

fn violations(files: &BTreeMap<String, String>) -> Vec<String> {
    let edges = edges(files);
    let mut problems: Vec<String> = circles(&edges)
        .into_iter()
        .map(|c| format!("circle: {}", c.join(" <-> ")))
        .collect();
    for (file, targets) in &edges {
        for target in targets {
            if layer(target) > layer(file) {
                problems.push(format!(
                    "upward: {file} (layer {}) imports {target} (layer {})",
                    layer(file),
                    layer(target)
                ));
            }
            let user = PORT_USERS
                .iter()
                .any(|m| file == m || file.starts_with(&format!("{m}/")));
            if user && target.starts_with("aws/") {
                problems.push(format!("past the ports: {file} imports {target}"));
            }
        }
    }
    problems
}

#[test]
fn the_library_has_no_circle_and_imports_only_downwards() {
    let files = sources(&root().join("shared/src"));
    assert!(files.len() > 40, "read {} files", files.len());
    let edges = edges(&files);
    let total: usize = edges.values().map(BTreeSet::len).sum();
    assert!(
        total > 100,
        "only {total} imports read: the parser lost them"
    );
    let problems = violations(&files);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_local_application_has_no_circle() {
    let files = sources(&root().join("local/src"));
    let circles = circles(&edges(&files));
    assert!(circles.is_empty(), "{circles:?}");
}

#[test]
fn the_check_finds_a_circle_an_upward_import_and_a_step_reaching_aws() {
    let files: BTreeMap<String, String> = [
        ("error.rs", ""),
        ("pipeline/mod.rs", "pub mod scope;\npub use scope::Scope;"),
        ("pipeline/scope.rs", "use crate::pg::slot::SlotInfo;"),
        ("pg/mod.rs", "pub mod slot;"),
        ("pg/slot.rs", "use crate::pipeline::Scope;"),
        ("aws/rds.rs", "use crate::{error::Error, pipeline::Scope};"),
        (
            "steps/clone.rs",
            "fn f() { let _ = crate::aws::rds::describe(); }",
        ),
    ]
    .into_iter()
    .map(|(f, t)| (f.to_string(), t.to_string()))
    .collect();
    let problems = violations(&files);
    let text = problems.join("\n");
    assert!(
        text.contains("circle: pg/slot.rs <-> pipeline/scope.rs"),
        "{text}"
    );
    assert!(
        text.contains("upward: pipeline/scope.rs (layer 1) imports pg/slot.rs (layer 2)"),
        "{text}"
    );
    assert!(
        text.contains("past the ports: steps/clone.rs imports aws/rds.rs"),
        "{text}"
    );
    assert_eq!(problems.len(), 3, "{text}");
}

/// The workflow only orchestrates: every act on a database is a step. A
/// workflow file may name PostgreSQL's value types and open sessions
/// (`pg::connect`), never a function or module of the adapter.
fn database_acts_in_the_workflow(files: &BTreeMap<String, String>) -> Vec<String> {
    let lowercase = |s: &str| s.starts_with(|c: char| c.is_ascii_lowercase());
    files
        .iter()
        .filter(|(file, _)| file.starts_with("workflow/"))
        .flat_map(|(file, text)| {
            crate_paths(text)
                .into_iter()
                .filter(|path| path.first().is_some_and(|p| p == "pg") && path.len() > 1)
                .filter(|path| path[1] != "connect" && path.last().is_some_and(|l| lowercase(l)))
                .map(|path| format!("{file}: crate::{}", path.join("::")))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_workflow_acts_on_databases_only_through_steps() {
    let files = sources(&root().join("shared/src"));
    let acts = database_acts_in_the_workflow(&files);
    assert!(acts.is_empty(), "pg calls in workflow/: {acts:#?}");
    let planted: BTreeMap<String, String> = [
        (
            "workflow/mod.rs",
            "use crate::pg::{connect, Lsn};\nuse crate::pg::ddl::{self, AppliedSummary};",
        ),
        (
            "workflow/lifecycle.rs",
            "fn f() { crate::pg::slot::drop_slot_if_exists(c, s); }",
        ),
    ]
    .into_iter()
    .map(|(f, t)| (f.to_string(), t.to_string()))
    .collect();
    assert_eq!(
        database_acts_in_the_workflow(&planted),
        [
            "workflow/lifecycle.rs: crate::pg::slot::drop_slot_if_exists",
            "workflow/mod.rs: crate::pg::ddl",
        ]
    );
}

/// A registered pipeline is looked up in one place: `Pipeline.Unknown` is
/// made only in `workflow/registered.rs`, whose lookup takes a
/// `PipelineId` (valid by construction, so no id check is written
/// anywhere else: there is no string checker left to call).
#[test]
fn a_registered_pipeline_is_looked_up_in_one_place() {
    let files = sources(&root().join("shared/src"));
    let elsewhere: Vec<String> = files
        .iter()
        .filter(|(file, _)| file.starts_with("workflow/") && *file != "workflow/registered.rs")
        .flat_map(|(file, text)| {
            // Matching the error (`PipelineUnknown { .. }`) is fine;
            // making it is the lookup's.
            let code = strip_comments(text).replace("PipelineUnknown { .. }", "");
            ["PipelineUnknown {"]
                .into_iter()
                .filter(|needle| code.contains(needle))
                .map(|needle| format!("{file}: {needle}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(elsewhere.is_empty(), "{elsewhere:?}");
    let once = strip_comments(&files["workflow/registered.rs"]);
    assert!(once.contains("PipelineUnknown {") && once.contains("pipeline_id: &PipelineId"));
    let checkers: Vec<&String> = files
        .iter()
        .filter(|(_, text)| strip_comments(text).contains("fn check_pipeline_id("))
        .map(|(file, _)| file)
        .collect();
    assert!(checkers.is_empty(), "{checkers:?}");
}

#[test]
fn sql_is_sent_only_from_the_postgresql_adapter() {
    let files = sources(&root().join("shared/src"));
    let calls = [
        ".query(",
        ".query_one(",
        ".query_opt(",
        ".execute(",
        ".batch_execute(",
        ".simple_query(",
        ".prepare(",
    ];
    let outside: Vec<String> = files
        .iter()
        .filter(|(file, _)| !file.starts_with("pg/"))
        .flat_map(|(file, text)| {
            let code = strip_comments(text);
            calls
                .iter()
                .filter(|call| code.contains(*call))
                .map(|call| format!("{file}: {call}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(outside.is_empty(), "SQL outside pg/: {outside:?}");
    let in_pg = files
        .iter()
        .filter(|(file, text)| file.starts_with("pg/") && text.contains(".query"))
        .count();
    assert!(in_pg >= 5, "the check read no SQL in pg/ either");
}

/// `cargo tree -e normal,features` of `packages` together, one line a node.
fn tree(packages: &[String]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(root())
        .args(["tree", "--locked", "--offline", "-e", "normal,features"])
        .args(["--prefix", "none", "--charset", "ascii"]);
    for package in packages {
        command.args(["-p", package]);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What links the local application or an HTTP server.
fn offending(tree: &str) -> BTreeSet<&str> {
    tree.lines()
        .filter(|line| {
            line.starts_with("clonesync-local ")
                || line.starts_with("hyper feature \"server\"")
                || line.starts_with("hyper-util feature \"server")
        })
        .collect()
}

/// Every function package together: neither the local application nor an
/// HTTP server is linked into a Lambda binary (the CLI, which links both,
/// shows the check sees them).
#[test]
fn no_lambda_function_links_the_local_application_or_an_http_server() {
    let functions: Vec<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(functions.len() >= 17, "{functions:?}");
    let tree_of_functions = tree(&functions);
    assert!(
        tree_of_functions.contains("clonesync v"),
        "not a tree of the functions:\n{tree_of_functions}"
    );
    assert!(
        tree_of_functions.contains("hyper v"),
        "the SDK's HTTP client should be listed"
    );
    let found = offending(&tree_of_functions);
    assert!(found.is_empty(), "{found:?}");
    let cli = tree(&["clonesync-cli".to_string()]);
    let found = offending(&cli);
    assert!(
        found.iter().any(|l| l.starts_with("clonesync-local "))
            && found.iter().any(|l| l.starts_with("hyper feature")),
        "{found:?}"
    );
}

/// Where the WAL stands is read in one module, `pg/wal.rs`: a primary's
/// written, flushed and inserted positions, the slots' least confirmed
/// one, an Aurora clone's start and the recovery marker. The lag reading
/// (`pg/lag.rs`) alone also reads `pg_current_wal_lsn()`, in the same
/// snapshot as the slots' positions it subtracts it from.
#[test]
fn wal_positions_are_read_in_one_module() {
    let files = sources(&root().join("shared/src"));
    let rules: [(&str, &[&str]); 5] = [
        ("pg_current_wal_insert_lsn(", &["pg/wal.rs"]),
        ("pg_current_wal_flush_lsn(", &["pg/wal.rs"]),
        ("pg_current_wal_lsn(", &["pg/wal.rs", "pg/lag.rs"]),
        ("pg_logical_emit_message(", &["pg/wal.rs"]),
        (
            "pg_catalog.aurora_volume_logical_start_lsn(",
            &["pg/wal.rs"],
        ),
    ];
    let mut misplaced = Vec::new();
    for (needle, allowed) in rules {
        let found: Vec<&String> = files
            .iter()
            .filter(|(_, text)| strip_comments(text).contains(needle))
            .map(|(file, _)| file)
            .collect();
        assert!(
            found.iter().any(|f| *f == "pg/wal.rs"),
            "{needle} not in pg/wal.rs"
        );
        misplaced.extend(
            found
                .into_iter()
                .filter(|f| !allowed.contains(&f.as_str()))
                .map(|f| format!("{f}: {needle}")),
        );
    }
    assert!(misplaced.is_empty(), "{misplaced:?}");
}
