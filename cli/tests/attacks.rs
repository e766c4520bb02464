//! Attacks by the database's ordinary roles on what clonesync installs,
//! calls and replays (README, "Threat model"). Each test plays a role that
//! is not trusted — a role with CREATE on `public`, a database owner, a
//! table owner — and fails if that role gains a right, forges what the copy
//! applies, or takes another pipeline's objects.

// A test binary: its helpers fail the test by panicking, as its tests do.
#![allow(clippy::unwrap_used)]

use crate::driver::{clonesync, connect_to_clone, files_holding, text, StopServersUnder};
use clonesync::pg::Secret;
use clonesync_tests::fixture::{servers_under, url_without_password};
use clonesync_tests::pipeline::slots_and_publications;
use clonesync_tests::{create_schema, TestServer};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_postgres::Client;

/// The role with CREATE on `public` (or ownership of a table) that tries.
const ATTACKER: &str = "app_attacker";

/// A new login of the database, not trusted: an application's.
async fn create_attacker(admin: &Client) {
    admin
        .batch_execute(&format!(
            "CREATE ROLE {ATTACKER} LOGIN; GRANT CREATE, USAGE ON SCHEMA public TO {ATTACKER}; \
             GRANT CREATE ON DATABASE appdb TO {ATTACKER}"
        ))
        .await
        .unwrap();
}

async fn is_superuser(client: &Client, role: &str) -> bool {
    client
        .query_one(
            "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = $1",
            &[&role],
        )
        .await
        .unwrap()
        .get(0)
}

/// `local up` of pipeline `id` into `work`, for a source at `server`.
fn local_up(server: &TestServer, id: &str, work: &Path, password: &Secret) -> (bool, String) {
    let url = url_without_password(&server.endpoint());
    let up = clonesync(
        &[
            "local",
            "up",
            "--source-url",
            &url,
            "--pipeline",
            id,
            "--work-dir",
            work.to_str().unwrap(),
        ],
        Some(password),
    );
    (up.status.success(), text(&up))
}

fn run(args: &[&str], work: &Path, password: &Secret) -> (Option<i32>, String) {
    let mut all = args.to_vec();
    all.extend(["--work-dir", work.to_str().unwrap()]);
    let output = clonesync(&all, Some(password));
    (output.status.code(), text(&output))
}

/// The text of every string literal of a Rust file (plain and raw), or
/// the whole of an SQL file: where clonesync's SQL is written.
fn sql_texts(path: &Path) -> Vec<String> {
    let source = std::fs::read_to_string(path).unwrap();
    if path.extension().is_some_and(|e| e == "sql") {
        return vec![source];
    }
    let bytes = source.as_bytes();
    let mut texts = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'r' && i + 1 < bytes.len() && matches!(bytes[i + 1], b'#' | b'"') {
            let hashes = bytes[i + 1..].iter().take_while(|&&b| b == b'#').count();
            if bytes.get(i + 1 + hashes) == Some(&b'"') {
                let close = format!("\"{}", "#".repeat(hashes));
                let start = i + 2 + hashes;
                if let Some(end) = source[start..].find(&close) {
                    texts.push(source[start..start + end].to_string());
                    i = start + end + close.len();
                    continue;
                }
            }
        }
        if bytes[i] == b'\'' {
            // A char literal ('"') or a lifetime: skip the quote only.
            if i + 2 < bytes.len() && bytes[i + 2] == b'\'' {
                i += 3;
                continue;
            }
        }
        if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            texts.push(source[i + 1..j.min(bytes.len())].to_string());
            i = j + 1;
            continue;
        }
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    texts
}

/// Every name called like a function (`name(`) and every operator token
/// in clonesync's SQL: the Rust and SQL sources of the crates whose
/// sessions run it.
fn names_and_operators() -> (BTreeSet<String>, BTreeSet<String>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut todo: Vec<PathBuf> = ["shared/src", "local/src", "cli/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    let (mut names, mut operators) = (BTreeSet::new(), BTreeSet::new());
    while let Some(path) = todo.pop() {
        if path.is_dir() {
            todo.extend(
                std::fs::read_dir(&path)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path()),
            );
            continue;
        }
        if !path.extension().is_some_and(|e| e == "rs" || e == "sql") {
            continue;
        }
        for sql in sql_texts(&path) {
            let chars: Vec<char> = sql.chars().collect();
            let mut i = 0;
            while i < chars.len() {
                let c = chars[i];
                if c.is_ascii_alphabetic() || c == '_' {
                    let start = i;
                    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                    let word: String = chars[start..i].iter().collect::<String>().to_lowercase();
                    let mut k = i;
                    while k < chars.len() && chars[k].is_whitespace() {
                        k += 1;
                    }
                    if k < chars.len() && chars[k] == '(' {
                        names.insert(word);
                    }
                    continue;
                }
                if "+-*/<>=~!@#%^&|?".contains(c) {
                    let start = i;
                    while i < chars.len() && "+-*/<>=~!@#%^&|?".contains(chars[i]) {
                        i += 1;
                    }
                    let token: String = chars[start..i].iter().collect();
                    if !token.starts_with("--") && !token.contains("/*") {
                        operators.insert(token);
                    }
                    continue;
                }
                i += 1;
            }
        }
    }
    (names, operators)
}

/// Made on the server as the attacker: for every pg_catalog function and
/// operator of those names, shadows in `public` — the same signature, and
/// each argument in turn replaced by a common type that casts to it
/// implicitly (an exact match beats pg_catalog's cast, as
/// `public.setval(text, bigint, boolean)` did) or, for a variadic one,
/// one to four text arguments. Each shadow writes a warning to the server
/// log when it runs (which no rollback takes back) and tries to make the
/// attacker a superuser. Returns the signatures made.
const MAKE_SHADOWS: &str = r#"
CREATE FUNCTION pg_temp.make_shadows(p_names text[], p_ops text[]) RETURNS SETOF text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    common text[] := ARRAY['text', 'character varying', 'name', 'integer', 'bigint', 'numeric', 'oid',
                           'regclass', 'boolean', 'jsonb', 'bytea', 'double precision', 'smallint'];
    unusable text[] := ARRAY['internal', 'cstring', 'trigger', 'event_trigger', 'language_handler',
                             'fdw_handler', 'index_am_handler', 'tsm_handler', 'table_am_handler', '"any"',
                             'anyelement', 'anyarray', 'anynonarray', 'anyenum', 'anyrange', 'anymultirange',
                             'anycompatible', 'anycompatiblearray', 'anycompatiblenonarray', 'anycompatiblerange',
                             'anycompatiblemultirange', 'record', 'unknown', 'void', 'opaque', 'pg_ddl_command'];
    r record;
    v_args text[];
    v_variant text[];
    v_variants text[][];
    v_ret text;
    v_sig text;
    v_body text;
    v_n int := 0;
    i int;
    t text;
    k int;
BEGIN
    FOR r IN SELECT p.proname::text AS name, p.proretset AS retset, p.provariadic <> 0 AS variadic,
                    ARRAY(SELECT pg_catalog.format_type(a, NULL) FROM pg_catalog.unnest(p.proargtypes::oid[]) WITH ORDINALITY u(a, o) ORDER BY o) AS args,
                    pg_catalog.format_type(p.prorettype, NULL) AS ret
               FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = ANY (p_names)
                AND p.prokind IN ('f', 'a', 'w')
              ORDER BY 1 LOOP
        v_ret := CASE WHEN r.ret = ANY (unusable) OR r.ret = 'trigger' THEN 'text' ELSE r.ret END;
        v_ret := CASE WHEN r.ret = 'void' THEN 'void' WHEN r.ret = 'record' THEN 'record' ELSE v_ret END;
        CONTINUE WHEN r.ret IN ('trigger', 'event_trigger', 'internal', 'language_handler', 'fdw_handler',
                                'index_am_handler', 'tsm_handler', 'table_am_handler');
        FOREACH v_sig IN ARRAY ARRAY(
            SELECT DISTINCT pg_catalog.array_to_string(variant, ', ') FROM (
                -- the same signature
                SELECT r.args AS variant WHERE NOT (r.args && unusable)
                UNION ALL
                -- one argument replaced
                SELECT r.args[1:pos - 1] || ARRAY[c] || r.args[pos + 1:]
                  FROM pg_catalog.generate_subscripts(r.args, 1) pos, pg_catalog.unnest(common) c
                 WHERE c <> r.args[pos]
                   AND NOT ((r.args[1:pos - 1] || r.args[pos + 1:]) && unusable)
                   AND (r.args[pos] = ANY (unusable) AND r.args[pos] NOT IN ('internal', 'cstring', 'trigger', 'event_trigger', 'pg_ddl_command')
                        OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast k
                                    WHERE k.castsource = c::regtype AND k.casttarget = r.args[pos]::regtype AND k.castcontext = 'i'))
                UNION ALL
                -- a variadic one with one to four text arguments
                SELECT pg_catalog.array_fill('text'::text, ARRAY[n]) FROM pg_catalog.generate_series(1, 4) n WHERE r.variadic
            ) v) LOOP
            BEGIN
                v_body := pg_catalog.format(
                    $b$CREATE FUNCTION public.%I(%s) RETURNS %s%s LANGUAGE plpgsql AS $s$
BEGIN
    RAISE WARNING 'shadow called: %%', %L;
    BEGIN EXECUTE 'ALTER ROLE app_attacker SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
    RETURN%s;
END $s$$b$, r.name, v_sig, CASE WHEN r.retset THEN 'SETOF ' ELSE '' END, v_ret,
                    pg_catalog.format('public.%I(%s)', r.name, v_sig),
                    CASE WHEN r.retset OR v_ret = 'void' THEN '' ELSE ' NULL' END);
                EXECUTE v_body;
                RETURN NEXT pg_catalog.format('public.%I(%s)', r.name, v_sig);
            EXCEPTION WHEN duplicate_function OR invalid_function_definition OR datatype_mismatch
                      OR feature_not_supported OR invalid_parameter_value OR undefined_object OR syntax_error THEN
                NULL;
            END;
        END LOOP;
    END LOOP;
    -- Operators: each with a function of the same shape behind it.
    FOR r IN SELECT o.oprname::text AS name, pg_catalog.format_type(o.oprleft, NULL) AS l,
                    pg_catalog.format_type(o.oprright, NULL) AS rt, pg_catalog.format_type(o.oprresult, NULL) AS ret
               FROM pg_catalog.pg_operator o
              WHERE o.oprnamespace = 'pg_catalog'::regnamespace AND o.oprname = ANY (p_ops)
              ORDER BY 1 LOOP
        v_ret := CASE WHEN r.ret = ANY (unusable) THEN 'boolean' ELSE r.ret END;
        FOREACH v_sig IN ARRAY ARRAY(
            SELECT DISTINCT lt || '|' || rtt FROM (
                SELECT r.l AS lt, r.rt AS rtt WHERE NOT (ARRAY[r.l, r.rt] && unusable)
                UNION ALL
                SELECT c, r.rt FROM pg_catalog.unnest(common) c
                 WHERE r.l <> '-' AND c <> r.l AND NOT (ARRAY[r.rt] && unusable)
                   AND (r.l = ANY (unusable) OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast k
                         WHERE k.castsource = c::regtype AND k.casttarget = r.l::regtype AND k.castcontext = 'i'))
                UNION ALL
                SELECT r.l, c FROM pg_catalog.unnest(common) c
                 WHERE c <> r.rt AND (r.l = '-' OR NOT (ARRAY[r.l] && unusable))
                   AND (r.rt = ANY (unusable) OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast k
                         WHERE k.castsource = c::regtype AND k.casttarget = r.rt::regtype AND k.castcontext = 'i'))
            ) v) LOOP
            BEGIN
                v_n := v_n + 1;
                t := pg_catalog.split_part(v_sig, '|', 1);
                EXECUTE pg_catalog.format(
                    $b$CREATE FUNCTION public.shadow_operator_%s(%s) RETURNS %s LANGUAGE plpgsql AS $s$
BEGIN
    RAISE WARNING 'shadow called: operator %%', %L;
    BEGIN EXECUTE 'ALTER ROLE app_attacker SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
    RETURN NULL;
END $s$$b$, v_n,
                    CASE WHEN t = '-' THEN pg_catalog.split_part(v_sig, '|', 2) ELSE t || ', ' || pg_catalog.split_part(v_sig, '|', 2) END,
                    v_ret, r.name || ' ' || v_sig);
                EXECUTE pg_catalog.format('CREATE OPERATOR public.%s (%s RIGHTARG = %s, FUNCTION = public.shadow_operator_%s)',
                    r.name, CASE WHEN t = '-' THEN '' ELSE 'LEFTARG = ' || t || ',' END,
                    pg_catalog.split_part(v_sig, '|', 2), v_n);
                RETURN NEXT pg_catalog.format('operator public.%s(%s)', r.name, pg_catalog.replace(v_sig, '|', ', '));
            EXCEPTION WHEN duplicate_function OR duplicate_object OR invalid_function_definition OR datatype_mismatch
                      OR feature_not_supported OR invalid_parameter_value OR undefined_object OR syntax_error
                      OR invalid_object_definition THEN
                NULL;
            END;
        END LOOP;
    END LOOP;
END
$fn$;
"#;

/// The lines of every server log under `root` (the source's and the
/// clone's) that say a shadow ran.
fn shadow_calls(root: &Path) -> Vec<String> {
    files_holding(root, b"WARNING:  shadow called:")
        .iter()
        .flat_map(|f| {
            String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default())
                .lines()
                .filter(|l| l.contains("WARNING:  shadow called:"))
                .map(|l| format!("{}: {l}", f.display()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Attack 1: shadowing a built-in. As a role with CREATE on `public`,
/// shadow every function and operator signature clonesync's SQL calls,
/// then run every command clonesync has: none of the shadows runs, on the
/// source or on the copy, and the role stays what it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_of_every_function_and_operator_clonesync_calls_never_runs() {
    let server = TestServer::start().await;
    let admin = server.client().await;
    create_schema(&admin).await;
    create_attacker(&admin).await;
    let (names, operators) = names_and_operators();
    assert!(
        names.contains("setval") && names.contains("hashint8extended") && operators.contains("="),
        "the scan finds clonesync's SQL: {names:?}"
    );
    admin.batch_execute(MAKE_SHADOWS).await.unwrap();
    admin
        .batch_execute(&format!("SET ROLE {ATTACKER}"))
        .await
        .unwrap();
    let names: Vec<String> = names.into_iter().collect();
    let operators: Vec<String> = operators.into_iter().collect();
    let shadows: Vec<String> = admin
        .query(
            "SELECT s FROM pg_temp.make_shadows($1, $2) s",
            &[&names, &operators],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    admin
        .batch_execute("RESET ROLE; SET search_path = pg_catalog, pg_temp")
        .await
        .unwrap();
    println!("{} shadowed signatures:", shadows.len());
    for shadow in &shadows {
        println!("  {shadow}");
    }
    for wanted in [
        "public.setval(text, bigint, boolean)",
        "public.hashint8extended(bigint, integer)",
    ] {
        assert!(shadows.iter().any(|s| s == wanted), "{wanted} is shadowed");
    }
    assert!(shadows.iter().any(|s| s.starts_with("operator public.=(")));

    // Every command, as the operator runs them.
    let endpoint = server.endpoint();
    let password = endpoint.password.clone().unwrap();
    let work = server.root().join("work");
    let _guard = StopServersUnder(work.clone());
    let (up, printed) = local_up(&server, "shadowed", &work, &password);
    assert!(up, "{printed}");
    // A schema change the copy replays, and a write.
    admin
        .batch_execute(
            "CREATE TABLE public.after_setup (id bigserial PRIMARY KEY, v text); \
             INSERT INTO public.after_setup (v) VALUES ('x'); \
             UPDATE public.sync_marker SET token = 'shadowed' WHERE id = 1",
        )
        .await
        .unwrap();
    let mut outputs = Vec::new();
    let mut failed = Vec::new();
    for args in [
        &["local", "status"][..],
        &["drift"],
        &["local", "refresh"],
        &["verify"],
        &["sequences"],
        &["local", "pause"],
        &["local", "resume"],
        &["local", "switchover", "--source-stopped"],
    ] {
        let (mut code, mut printed) = run(args, &work, &password);
        // The new table's copy may still be finishing: status reports it
        // and verify says UNSETTLED until then.
        for _ in 0..20 {
            if code == Some(0)
                || !(printed.contains("UNSETTLED") || printed.contains("being copied"))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            (code, printed) = run(args, &work, &password);
        }
        if code != Some(0) {
            failed.push(args.join(" "));
        }
        outputs.push(format!(
            "$ clonesync {}: {code:?}\n{printed}",
            args.join(" ")
        ));
    }
    let clone = connect_to_clone(&work, &endpoint).await;
    clone
        .batch_execute("SET search_path = pg_catalog, pg_temp")
        .await
        .unwrap();
    let copy_super = is_superuser(&clone, ATTACKER).await;
    drop(clone);
    // (The clone's log goes with it at `down`: read it first.)
    let mut calls = shadow_calls(server.root());
    let (code, printed) = run(&["local", "down"], &work, &password);
    outputs.push(format!("$ clonesync local down: {code:?}\n{printed}"));
    let all = outputs.join("\n");
    calls.extend(shadow_calls(server.root()));
    assert!(
        calls.is_empty(),
        "shadows ran:\n{}\n{all}",
        calls.join("\n")
    );
    assert!(!is_superuser(&admin, ATTACKER).await, "{all}");
    assert!(!copy_super, "{all}");
    // The commands themselves worked with the shadows in place.
    assert!(failed.is_empty(), "{failed:?} failed:\n{all}");
    assert_eq!(code, Some(0), "{all}");
    let (slots, publications) = slots_and_publications(&admin).await;
    assert!(slots.is_empty() && publications.is_empty(), "{all}");
    assert_eq!(servers_under(&work), 0);
}

/// Attack 2: a database owner creates schema `clonesync` before setup (or
/// is granted CREATE in it), to replace the capture's functions later.
/// Setup refuses by name, before anything is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clonesync_schema_that_is_not_clonesyncs_is_refused_and_nothing_is_made() {
    let server = TestServer::start().await;
    let admin = server.client().await;
    create_schema(&admin).await;
    admin
        .batch_execute("CREATE ROLE db_owner LOGIN; ALTER DATABASE appdb OWNER TO db_owner")
        .await
        .unwrap();
    let endpoint = server.endpoint();
    let password = endpoint.password.clone().unwrap();
    for (case, attack) in [
        (
            "owned by the database owner",
            "SET ROLE db_owner; CREATE SCHEMA clonesync; RESET ROLE",
        ),
        (
            "CREATE granted to the database owner",
            "DROP SCHEMA IF EXISTS clonesync CASCADE; CREATE SCHEMA clonesync; \
             GRANT CREATE ON SCHEMA clonesync TO db_owner",
        ),
        (
            "a function in it owned by the database owner",
            "DROP SCHEMA IF EXISTS clonesync CASCADE; CREATE SCHEMA clonesync; \
             CREATE FUNCTION clonesync.ddl_record(text, text, text, text) RETURNS void LANGUAGE sql AS ''; \
             ALTER FUNCTION clonesync.ddl_record(text, text, text, text) OWNER TO db_owner",
        ),
    ] {
        admin.batch_execute(attack).await.unwrap();
        let work = server.root().join(format!("work-{}", case.len()));
        let _guard = StopServersUnder(work.clone());
        let (up, printed) = local_up(&server, "schema_attack", &work, &password);
        assert!(!up, "{case}: {printed}");
        assert!(
            printed.contains("Database.SchemaNotOurs") && printed.contains("db_owner"),
            "{case}: {printed}"
        );
        let (slots, publications) = slots_and_publications(&admin).await;
        assert!(
            slots.is_empty() && publications.is_empty(),
            "{case}: {slots:?} {publications:?}"
        );
        let triggers: i64 = admin
            .query_one("SELECT count(*) FROM pg_event_trigger", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(triggers, 0, "{case}: no capture installed");
        assert_eq!(servers_under(&work), 0, "{case}");
        let _ = run(&["local", "down"], &work, &password);
    }
}

/// Attack 3: a table owner's trigger made ENABLE ALWAYS — one before
/// setup (it reaches the clone physically), one after (the replay carries
/// it) — tries, when the copy applies a row, to make its owner superuser
/// and to read the subscription's connection string. It never runs as a
/// superuser and reads nothing. The same for a trigger the table's owner
/// makes ALWAYS or REPLICA on the copy itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_trigger_never_runs_as_superuser_on_the_copy() {
    let server = TestServer::start().await;
    let admin = server.client().await;
    create_schema(&admin).await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {ATTACKER} LOGIN; GRANT CREATE, USAGE ON SCHEMA public TO {ATTACKER}; \
             SET ROLE {ATTACKER}; \
             CREATE TABLE public.loot (id bigserial PRIMARY KEY, port text, seen_as text, was_super boolean, read_conninfo boolean); \
             CREATE FUNCTION public.steal() RETURNS trigger LANGUAGE plpgsql AS $$ \
             DECLARE v text; BEGIN \
               BEGIN EXECUTE 'ALTER ROLE {ATTACKER} SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END; \
               BEGIN SELECT string_agg(subconninfo, ';') INTO v FROM pg_catalog.pg_subscription; \
               EXCEPTION WHEN OTHERS THEN v := NULL; END; \
               INSERT INTO public.loot (port, seen_as, was_super, read_conninfo) VALUES (pg_catalog.current_setting('port'), current_user, \
                 (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), v IS NOT NULL); \
               RETURN NEW; END $$; \
             CREATE TABLE public.before_setup (id int PRIMARY KEY, v text); \
             CREATE TRIGGER steal_before AFTER INSERT ON public.before_setup FOR EACH ROW EXECUTE FUNCTION public.steal(); \
             ALTER TABLE public.before_setup ENABLE ALWAYS TRIGGER steal_before; \
             CREATE TABLE public.replica_only (id int PRIMARY KEY); \
             CREATE TRIGGER steal_replica AFTER INSERT ON public.replica_only FOR EACH ROW EXECUTE FUNCTION public.steal(); \
             ALTER TABLE public.replica_only ENABLE REPLICA TRIGGER steal_replica; \
             RESET ROLE"
        ))
        .await
        .unwrap();
    let major = clonesync_tests::fixture::server_major(&admin).await;
    let endpoint = server.endpoint();
    let password = endpoint.password.clone().unwrap();
    let work = server.root().join("work");
    let _guard = StopServersUnder(work.clone());
    let (up, printed) = local_up(&server, "triggers", &work, &password);
    assert!(up, "{printed}");
    admin
        .batch_execute(&format!(
            "SET ROLE {ATTACKER}; \
             CREATE TABLE public.after_setup (id int PRIMARY KEY, v text); \
             CREATE TRIGGER steal_after AFTER INSERT ON public.after_setup FOR EACH ROW EXECUTE FUNCTION public.steal(); \
             ALTER TABLE public.after_setup ENABLE ALWAYS TRIGGER steal_after; \
             RESET ROLE"
        ))
        .await
        .unwrap();
    // The new table joins the subscription with the next status (which
    // exits 1: the neutralized triggers are pending on 15).
    let (_, printed) = run(&["local", "status"], &work, &password);
    assert!(
        printed.contains("added \"public\".\"after_setup\""),
        "{printed}"
    );
    // As the tables' owner: the ALWAYS triggers fire on the source too,
    // as whoever writes.
    admin
        .batch_execute(&format!(
            "SET ROLE {ATTACKER}; \
             INSERT INTO public.before_setup VALUES (1, 'a'); INSERT INTO public.replica_only VALUES (1); \
             INSERT INTO public.after_setup VALUES (1, 'a'); RESET ROLE; \
             UPDATE public.sync_marker SET token = 'triggers' WHERE id = 1"
        ))
        .await
        .unwrap();
    let clone = connect_to_clone(&work, &endpoint).await;
    let status = wait_for_rows(&clone, 3, &work, &password).await;
    // The owner, logged in to the copy, makes its triggers fire during
    // apply there; a row more in each table.
    clone
        .batch_execute(&format!(
            "SET ROLE {ATTACKER}; \
             ALTER TABLE public.before_setup ENABLE ALWAYS TRIGGER steal_before; \
             ALTER TABLE public.replica_only ENABLE REPLICA TRIGGER steal_replica; \
             RESET ROLE"
        ))
        .await
        .unwrap();
    admin
        .batch_execute(&format!(
            "SET ROLE {ATTACKER}; \
             INSERT INTO public.before_setup VALUES (2, 'b'); INSERT INTO public.replica_only VALUES (2); \
             RESET ROLE"
        ))
        .await
        .unwrap();
    wait_for_rows(&clone, 5, &work, &password).await;
    let loot: Vec<(String, bool, bool)> = clone
        // What the triggers did on the copy itself (the source's own rows
        // replicate too).
        .query(
            "SELECT seen_as, was_super, read_conninfo FROM public.loot WHERE port = current_setting('port')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    println!("PostgreSQL {major}: the triggers ran on the copy as {loot:?}");
    assert!(
        loot.iter()
            .all(|(_, was_super, read_conninfo)| !was_super && !read_conninfo),
        "a user's trigger ran as superuser or read the connection string: {loot:?}"
    );
    assert!(!is_superuser(&clone, ATTACKER).await, "{loot:?}");
    if major >= 16 {
        // run_as_owner = false: the triggers run, as their owner: once
        // per row applied (three, then two after the owner's change on
        // the copy).
        assert!(
            loot.iter().all(|(who, _, _)| who == ATTACKER) && loot.len() == 5,
            "{loot:?}"
        );
    } else {
        // 15: neutralized, the owner's change on the copy set back at
        // once, and status says so.
        assert!(loot.is_empty(), "{loot:?}");
        let modes: Vec<String> = clone
            .query(
                "SELECT tgname || ' ' || tgenabled::text FROM pg_trigger WHERE tgname LIKE 'steal%' ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            modes,
            ["steal_after O", "steal_before O", "steal_replica D"],
            "{status}"
        );
        assert!(
            status.contains("steal_before")
                && status.contains("steal_replica")
                && status.contains("steal_after"),
            "{status}"
        );
    }
    drop(clone);
    let (code, printed) = run(&["local", "down"], &work, &password);
    assert_eq!(code, Some(0), "{printed}");
}

/// Wait until the copy holds `expected` rows in the three trigger tables
/// (running `status`, which refreshes new tables into the subscription);
/// returns the last status.
async fn wait_for_rows(clone: &Client, expected: i64, work: &Path, password: &Secret) -> String {
    for _ in 0..120 {
        let n: i64 = clone
            .query_one(
                "SELECT (SELECT count(*) FROM public.before_setup) + (SELECT count(*) FROM public.replica_only) \
                      + (SELECT count(*) FROM public.after_setup)",
                &[],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        if n == expected {
            return run(&["local", "status"], work, password).1;
        }
        let _ = run(&["local", "status"], work, password);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, status) = run(&["local", "status"], work, password);
    panic!("{expected} rows did not reach the copy:\n{status}");
}

/// Attack 4: forged queue rows and terminal escapes. Outside an event
/// trigger, the capture's functions refuse to run for anyone; a table
/// named with escape sequences is printed escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_rows_cannot_be_forged_and_names_print_escaped() {
    let server = TestServer::start().await;
    let admin = server.client().await;
    create_schema(&admin).await;
    create_attacker(&admin).await;
    let endpoint = server.endpoint();
    let password = endpoint.password.clone().unwrap();
    let work = server.root().join("work");
    let _guard = StopServersUnder(work.clone());
    let (up, printed) = local_up(&server, "forged", &work, &password);
    assert!(up, "{printed}");
    let queued = || async {
        admin
            .query_one("SELECT count(*) FROM clonesync.ddl_queue", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    // Of everything the capture installs, the role may execute only the
    // two functions the event trigger calls as it.
    let executable: Vec<String> = admin
        .query(
            "SELECT p.proname::text FROM pg_catalog.pg_proc p \
             WHERE p.pronamespace = 'clonesync'::regnamespace \
               AND has_function_privilege($1, p.oid, 'EXECUTE') ORDER BY 1",
            &[&ATTACKER],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(executable, ["ddl_record", "ddl_record_failure"]);
    let before = queued().await;
    for forged in [
        "SELECT clonesync.ddl_record_failure('ddl_command_end', 'CREATE TABLE', 'x', 'forged')",
        "SELECT clonesync.ddl_record('ddl_command_end', 'CREATE TABLE', 'app_attacker', 'public')",
        "SELECT clonesync.ddl_record('sql_drop', 'DROP TABLE', 'app_attacker', 'public')",
        // During a real DDL command, from the role's own function.
        "CREATE FUNCTION public.forge() RETURNS int LANGUAGE plpgsql AS $$ BEGIN \
           PERFORM clonesync.ddl_record_failure('ddl_command_end', 'CREATE TABLE', 'x', 'forged'); RETURN 1; END $$; \
         CREATE TABLE public.forging AS SELECT public.forge() AS x",
    ] {
        let result = admin
            .batch_execute(&format!("SET ROLE {ATTACKER}; {forged}"))
            .await;
        let _ = admin.batch_execute("ROLLBACK; RESET ROLE").await;
        assert!(result.is_err(), "{forged} was accepted");
    }
    // The attacker's real DDL is still captured, and a name with escape
    // sequences travels, but is printed escaped.
    let hostile = "evil\u{1b}[2J\u{1b}]0;pwned\u{7}\nok Streaming";
    admin
        .batch_execute(&format!(
            "SET ROLE {ATTACKER}; CREATE TABLE public.{} (id int PRIMARY KEY); \
             COMMENT ON TABLE public.{} IS 'x'; RESET ROLE",
            clonesync::pg::quote::ident(hostile),
            clonesync::pg::quote::ident(hostile)
        ))
        .await
        .unwrap();
    assert_eq!(queued().await, before + 2, "real DDL is still captured");
    let mut printed = String::new();
    for _ in 0..20 {
        let output = clonesync(
            &["local", "status", "--work-dir", work.to_str().unwrap()],
            Some(&password),
        );
        printed = text(&output);
        assert!(
            !output.stdout.contains(&0x1b)
                && !output.stderr.contains(&0x1b)
                && !output.stdout.contains(&0x07),
            "a raw escape reached the terminal: {printed:?}"
        );
        if printed.contains("evil") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(printed.contains("evil\\u{1b}[2J"), "{printed}");
    assert!(
        !printed.lines().any(|l| l.trim() == "ok Streaming"),
        "a name made a line of its own: {printed}"
    );
    let (code, printed) = run(&["local", "down"], &work, &password);
    assert_eq!(code, Some(0), "{printed}");
}

/// Attack 5: a second setup of a live pipeline's id, from another work
/// directory, with the same source login. It is refused by name before it
/// makes anything; its `status` claims nothing of the live pipeline's; its
/// `down` leaves the live slot and publication; the live copy keeps every
/// row written meanwhile, compared by content. The live pipeline's own
/// `local up` run again still finds its objects its own. A database owner
/// who copies the live mark onto a publication of its own claims nothing
/// and keeps nothing of clonesync's installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_setup_of_the_same_id_takes_nothing_of_the_live_pipeline() {
    let server = TestServer::start().await;
    let admin = server.client().await;
    create_schema(&admin).await;
    let endpoint = server.endpoint();
    let password = endpoint.password.clone().unwrap();
    let live = server.root().join("live");
    let duplicate = server.root().join("duplicate");
    let _guards = (
        StopServersUnder(live.clone()),
        StopServersUnder(duplicate.clone()),
    );
    // The database's owner, with a table of its own (both before the
    // clone: a role made after it is not on the copy).
    admin
        .batch_execute(
            "CREATE ROLE db_owner LOGIN; ALTER DATABASE appdb OWNER TO db_owner; \
             CREATE TABLE public.owner_table (id int PRIMARY KEY); \
             ALTER TABLE public.owner_table OWNER TO db_owner",
        )
        .await
        .unwrap();
    let (up, printed) = local_up(&server, "orders", &live, &password);
    assert!(up, "{printed}");
    let marks: Vec<String> = admin
        .query(
            "SELECT obj_description(oid, 'pg_publication') FROM pg_catalog.pg_publication",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        marks.len() == 1 && marks[0].starts_with("clonesync pipeline orders setup "),
        "the live publication carries its setup's mark: {marks:?}"
    );
    let (slots_before, publications_before) = slots_and_publications(&admin).await;

    let load = clonesync_tests::Workload::start(endpoint.clone(), 2, 5, Duration::from_millis(5));
    load.wait_for_more(50).await;
    let (up, printed) = local_up(&server, "orders", &duplicate, &password);
    assert!(!up, "a second setup of a live id must fail: {printed}");
    assert!(
        printed.contains("pipeline_id") && printed.contains("in use by another setup"),
        "refused by name: {printed}"
    );
    assert_eq!(
        slots_and_publications(&admin).await,
        (slots_before.clone(), publications_before.clone()),
        "the refused setup made nothing"
    );
    let (code, status) = run(&["local", "status"], &duplicate, &password);
    assert_ne!(code, Some(0), "{status}");
    assert!(status.contains("NOT THIS SETUP'S"), "{status}");
    let own = status
        .split("this pipeline's objects on the source")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_default()
        .to_string();
    assert!(
        own.contains("none"),
        "the failed run's record owns nothing: {status}"
    );
    let (code, down) = run(&["local", "down"], &duplicate, &password);
    assert_eq!(code, Some(0), "{down}");
    assert_eq!(
        slots_and_publications(&admin).await,
        (slots_before.clone(), publications_before.clone()),
        "the duplicate's down left the live slot and publication: {down}"
    );
    load.wait_for_more(50).await;
    load.stop().await;

    let (code, status) = run(&["local", "status"], &live, &password);
    assert_eq!(code, Some(0), "the live pipeline is healthy: {status}");
    let clone = connect_to_clone(&live, &endpoint).await;
    clonesync_tests::compare::wait_for_marker(&admin, &clone, Duration::from_secs(60))
        .await
        .unwrap();
    let tables = clonesync_tests::compare::tables_in(&admin, &["public"]).await;
    let (_, differing) = clonesync_tests::compare::compare_tables(&admin, &clone, &tables).await;
    assert!(differing.is_empty(), "{differing:?}");

    // The live pipeline's own setup run again finds its objects its own.
    let (up, printed) = local_up(&server, "orders", &live, &password);
    assert!(up, "{printed}");
    assert_eq!(
        slots_and_publications(&admin).await,
        (slots_before, publications_before)
    );
    // The owner copies the live mark onto a publication of its own: it
    // claims nothing, and keeps no capture installed at teardown.
    admin
        .batch_execute(&format!(
            "SET ROLE db_owner; CREATE PUBLICATION forged FOR TABLE public.owner_table; \
             COMMENT ON PUBLICATION forged IS '{}'; RESET ROLE",
            marks[0]
        ))
        .await
        .unwrap();
    let (_, status) = run(&["local", "status"], &live, &password);
    assert!(!status.contains("publication forged"), "{status}");
    let (code, down) = run(&["local", "down"], &live, &password);
    assert_eq!(code, Some(0), "{down}");
    let (slots, publications) = slots_and_publications(&admin).await;
    assert!(slots.is_empty() && publications == ["forged"], "{down}");
    let triggers: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_event_trigger WHERE evtname LIKE 'clonesync%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(triggers, 0, "a forged mark kept the capture: {down}");
}
