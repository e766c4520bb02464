-- Schema change capture, installed on the source (one per database, shared
-- by every pipeline of that database). Run in one transaction by
-- `pg::ddl::install_capture`; every statement is safe to run again.
--
-- Why a queue table: native logical replication carries no DDL, but it does
-- carry rows in commit order. A row written into clonesync.ddl_queue at the
-- end of each DDL command reaches the subscriber inside the same
-- transaction, after the rows written before the command and before the
-- rows written after it; a trigger there applies it at that very point.
CREATE SCHEMA IF NOT EXISTS clonesync;
COMMENT ON SCHEMA clonesync IS 'clonesync: schema change capture and apply; removed when the last pipeline of this database is torn down';
-- Nobody but the owner needs the queue itself; the capture function below
-- must still be callable from any role's DDL.
REVOKE ALL ON SCHEMA clonesync FROM PUBLIC;
GRANT USAGE ON SCHEMA clonesync TO PUBLIC;

-- A database that was a copy (its queue rows came with explicit ids) and
-- now captures itself continues after the last id.
SELECT setval(pg_get_serial_sequence('clonesync.ddl_queue', 'id'),
              coalesce((SELECT max(id) FROM clonesync.ddl_queue), 0) + 1, false);

-- A character that continues an identifier for PostgreSQL's scanner:
-- letters, digits, _, $ and every non-ASCII character.
CREATE OR REPLACE FUNCTION clonesync.ddl_identifier_char(p_char text) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
SELECT p_char ~ '^[A-Za-z0-9_$]$' OR ascii(p_char) > 127
$fn$;

-- The top-level statements of a client string, comments kept, empty ones
-- left out. Knows quotes, E'' strings, quoted identifiers, dollar quotes
-- and nested comments: enough to tell one statement from several.
CREATE OR REPLACE FUNCTION clonesync.ddl_statements(p_text text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
DECLARE
    -- ('' would split into one empty element.)
    c text[] := CASE WHEN p_text = '' THEN '{}'::text[] ELSE regexp_split_to_array(p_text, '') END;
    n int := coalesce(array_length(c, 1), 0);
    i int := 1;
    j int;
    k int;
    depth int;
    tag text;
    start int := 1;
    content boolean := false;
    escapes boolean;
    result text[] := '{}';
BEGIN
    WHILE i <= n LOOP
        IF c[i] = '''' THEN
            -- E'...' takes backslash escapes; '' is a quote in either.
            escapes := i > 1 AND lower(c[i - 1]) = 'e' AND (i = 2 OR NOT clonesync.ddl_identifier_char(c[i - 2]));
            i := i + 1;
            WHILE i <= n LOOP
                IF escapes AND c[i] = '\' THEN
                    i := i + 2;
                ELSIF c[i] = '''' AND i < n AND c[i + 1] = '''' THEN
                    i := i + 2;
                ELSIF c[i] = '''' THEN
                    EXIT;
                ELSE
                    i := i + 1;
                END IF;
            END LOOP;
            i := i + 1;
            content := true;
        ELSIF c[i] = '"' THEN
            i := i + 1;
            WHILE i <= n AND c[i] <> '"' LOOP
                i := i + 1;
            END LOOP;
            i := i + 1;
            content := true;
        ELSIF c[i] = '-' AND i < n AND c[i + 1] = '-' THEN
            WHILE i <= n AND c[i] <> E'\n' AND c[i] <> E'\r' LOOP
                i := i + 1;
            END LOOP;
        ELSIF c[i] = '/' AND i < n AND c[i + 1] = '*' THEN
            depth := 1;
            i := i + 2;
            WHILE i <= n AND depth > 0 LOOP
                IF c[i] = '/' AND i < n AND c[i + 1] = '*' THEN
                    depth := depth + 1;
                    i := i + 2;
                ELSIF c[i] = '*' AND i < n AND c[i + 1] = '/' THEN
                    depth := depth - 1;
                    i := i + 2;
                ELSE
                    i := i + 1;
                END IF;
            END LOOP;
        ELSIF c[i] = '$' AND (i = 1 OR NOT clonesync.ddl_identifier_char(c[i - 1])) AND (i = n OR c[i + 1] !~ '[0-9]') THEN
            j := i + 1;
            WHILE j <= n AND clonesync.ddl_identifier_char(c[j]) AND c[j] <> '$' LOOP
                j := j + 1;
            END LOOP;
            IF j <= n AND c[j] = '$' THEN
                tag := array_to_string(c[i:j], '');
                k := strpos(array_to_string(c[j + 1:n], ''), tag);
                i := CASE WHEN k = 0 THEN n + 1 ELSE j + k + length(tag) END;
            ELSE
                i := j;
            END IF;
            content := true;
        ELSIF c[i] = ';' THEN
            IF content THEN
                result := result || btrim(array_to_string(c[start:i - 1], ''), E' \t\r\n');
            END IF;
            start := i + 1;
            content := false;
            i := i + 1;
        ELSE
            IF c[i] !~ '\s' THEN
                content := true;
            END IF;
            i := i + 1;
        END IF;
    END LOOP;
    IF content THEN
        result := result || btrim(array_to_string(c[start:n], ''), E' \t\r\n');
    END IF;
    RETURN result;
END
$fn$;

-- The leading keywords of a statement in the form of a command tag:
-- upper case, single spaces, without the words a tag leaves out
-- ("CREATE UNIQUE INDEX CONCURRENTLY" is a "CREATE INDEX").
CREATE OR REPLACE FUNCTION clonesync.ddl_statement_prefix(p_statement text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
SELECT regexp_replace(
           regexp_replace(
             upper(regexp_replace(left(regexp_replace(p_statement, '^(\s+|--[^\n\r]*([\n\r]|$)|/\*([^*]|\*+[^*/])*\*+/)*', ''), 200), '\s+', ' ', 'g')),
             '\m(OR REPLACE|UNIQUE|GLOBAL|LOCAL|TEMPORARY|TEMP|UNLOGGED|TRUSTED|PROCEDURAL|RECURSIVE|CONSTRAINT|DEFAULT) ', '', 'g'),
           '^(CREATE INDEX|DROP INDEX) CONCURRENTLY\M', '\1') || ' '
$fn$;

CREATE OR REPLACE FUNCTION clonesync.ddl_statement_tag_matches(p_statement text, p_tag text) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
SELECT clonesync.ddl_statement_prefix(p_statement) LIKE (p_tag || ' %')
$fn$;

-- The split of the client string being run, per backend: a script of
-- many commands sent as one string is split once, not once per command.
-- Only the capture writes it (no role but the owner may), so nobody can
-- make the capture queue a text the source did not run. Unlogged: not
-- published, not kept across a crash.
CREATE UNLOGGED TABLE IF NOT EXISTS clonesync.ddl_split (
    pid int PRIMARY KEY,
    stmt_ts timestamptz NOT NULL,
    query_md5 text NOT NULL,
    statements text[] NOT NULL,
    prefixes text[] NOT NULL
);
REVOKE ALL ON clonesync.ddl_split FROM PUBLIC;

-- The definition of one object as of now, in terms the target can rebuild
-- it from: every name schema-qualified (search_path is pg_catalog here).
CREATE OR REPLACE FUNCTION clonesync.ddl_definition(p_classid oid, p_objid oid)
RETURNS jsonb LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
DECLARE
    v_definition jsonb;
BEGIN
    -- EXECUTE: planned for this object, with its oid, each time.
    EXECUTE $q$
SELECT CASE
  WHEN $1 = 'pg_class'::regclass THEN (
    SELECT CASE
      WHEN c.relkind IN ('r', 'p') THEN jsonb_build_object(
        'kind', 'table',
        'schema', n.nspname, 'name', c.relname,
        'partitioned', c.relkind = 'p',
        'columns', (
          SELECT coalesce(jsonb_agg(jsonb_build_object(
              'attnum', a.attnum, 'name', a.attname,
              'type', format_type(a.atttypid, a.atttypmod),
              'collation', CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0 THEN
                  (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
                     FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                    WHERE co.oid = a.attcollation) END,
              'notnull', a.attnotnull,
              -- A default has no column references: relid 0 spares
              -- pg_get_expr a deparse context of the whole table per column.
              'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, 0) END,
              'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
              'generated_kind', a.attgenerated::text,
              'identity', a.attidentity::text,
              -- The value rows that predate the column read (a default
              -- evaluated once when it was added: now() is that moment's).
              'missing', CASE WHEN a.atthasmissing THEN a.attmissingval::text END,
              'local', a.attislocal) ORDER BY a.attnum), '[]'::jsonb)
            FROM pg_attribute a
            JOIN pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
        'constraints', (
          SELECT coalesce(jsonb_agg(jsonb_build_object(
              'name', k.conname, 'type', k.contype::text,
              'def', pg_get_constraintdef(k.oid), 'local', k.conislocal) ORDER BY k.conname), '[]'::jsonb)
            FROM pg_constraint k
           WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u', 'c', 'f', 'x')),
        'parent', (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid LIMIT 1),
        'bound', pg_get_expr(c.relpartbound, c.oid),
        'partkey', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END)
      WHEN c.relkind IN ('i', 'I') THEN (
        SELECT jsonb_build_object(
          'kind', 'index',
          'def', pg_get_indexdef(c.oid),
          'name', c.relname,
          'table_schema', tn.nspname, 'table_name', tc.relname,
          -- A constraint's index comes and goes with the constraint.
          'constraint', EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid AND k.contype IN ('p', 'u', 'x')))
          FROM pg_index x JOIN pg_class tc ON tc.oid = x.indrelid
          JOIN pg_namespace tn ON tn.oid = tc.relnamespace
         WHERE x.indexrelid = c.oid)
      WHEN c.relkind = 'S' THEN (
        SELECT jsonb_build_object(
          'kind', CASE WHEN EXISTS (SELECT 1 FROM pg_depend dp WHERE dp.classid = 'pg_class'::regclass
                                       AND dp.objid = c.oid AND dp.deptype = 'i')
                       THEN 'identity_sequence' ELSE 'sequence' END,
          'schema', n.nspname, 'name', c.relname,
          'type', format_type(s.seqtypid, NULL), 'start', s.seqstart, 'increment', s.seqincrement,
          'min', s.seqmin, 'max', s.seqmax, 'cache', s.seqcache, 'cycle', s.seqcycle,
          'owned_by', (SELECT dp.refobjid::regclass::text || '.' || quote_ident(a.attname)
                         FROM pg_depend dp JOIN pg_attribute a ON a.attrelid = dp.refobjid AND a.attnum = dp.refobjsubid
                        WHERE dp.classid = 'pg_class'::regclass AND dp.objid = c.oid AND dp.deptype = 'a'
                          AND dp.refclassid = 'pg_class'::regclass LIMIT 1))
          FROM pg_sequence s WHERE s.seqrelid = c.oid)
      WHEN c.relkind IN ('v', 'm') THEN jsonb_build_object(
        'kind', CASE WHEN c.relkind = 'v' THEN 'view' ELSE 'materialized_view' END,
        'schema', n.nspname, 'name', c.relname, 'def', pg_get_viewdef(c.oid))
      ELSE jsonb_build_object('kind', 'relation', 'relkind', c.relkind::text, 'schema', n.nspname, 'name', c.relname)
    END
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $2)
  WHEN $1 = 'pg_type'::regclass THEN (
    SELECT jsonb_build_object(
      'kind', CASE WHEN t.typtype = 'e' THEN 'enum' ELSE 'type' END,
      'schema', n.nspname, 'name', t.typname,
      'labels', (SELECT jsonb_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $2)
  WHEN $1 = 'pg_namespace'::regclass THEN (
    SELECT jsonb_build_object('kind', 'schema', 'schema', n.nspname, 'name', n.nspname)
      FROM pg_namespace n WHERE n.oid = $2)
  -- Objects of a table: scoped by their table.
  WHEN $1 IN ('pg_trigger'::regclass, 'pg_policy'::regclass, 'pg_rewrite'::regclass) THEN (
    SELECT jsonb_build_object('kind', 'table_child', 'schema', n.nspname, 'name', c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = CASE $1
                     WHEN 'pg_trigger'::regclass THEN (SELECT t.tgrelid FROM pg_trigger t WHERE t.oid = $2)
                     WHEN 'pg_policy'::regclass THEN (SELECT p.polrelid FROM pg_policy p WHERE p.oid = $2)
                     ELSE (SELECT r.ev_class FROM pg_rewrite r WHERE r.oid = $2) END)
  WHEN $1 = 'pg_proc'::regclass THEN (
    SELECT jsonb_build_object('kind', 'function', 'def', pg_get_functiondef(p.oid))
      FROM pg_proc p WHERE p.oid = $2 AND p.prokind IN ('f', 'p'))
  ELSE NULL
END$q$ INTO v_definition USING p_classid, p_objid;
    RETURN v_definition;
END
$fn$;

-- Records the current event. SECURITY DEFINER so that any role's DDL can
-- write the queue; it takes nothing from its caller but the role and the
-- search_path (read by the invoker below), and the event trigger functions
-- it calls refuse to run outside an event trigger, so it cannot be used to
-- forge a queue row.
CREATE OR REPLACE FUNCTION clonesync.ddl_record(p_event text, p_tag text, p_role text, p_search_path text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
DECLARE
    v_commands jsonb;
    v_query text := coalesce(current_query(), '');
    v_statements text[];
    v_prefixes text[];
    v_no int;
    v_earlier bigint;
    v_tag_known boolean;
BEGIN
    IF p_event = 'sql_drop' THEN
        -- Only whole objects dropped by a DROP command: a column or a
        -- constraint dropped by ALTER TABLE travels with that ALTER's
        -- ddl_command_end, as the table's new definition.
        IF p_tag NOT LIKE 'DROP%' THEN
            PERFORM 1 FROM pg_event_trigger_dropped_objects();
            RETURN;
        END IF;
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'object_type', d.object_type, 'schema', d.schema_name,
                   'name', d.object_name, 'identity', d.object_identity,
                   'tag', p_tag) ORDER BY d.ord), '[]'::jsonb)
          INTO v_commands
          FROM pg_event_trigger_dropped_objects() WITH ORDINALITY AS d(classid, objid, objsubid, original, normal,
                 is_temporary, object_type, schema_name, object_name, object_identity, address_names, address_args, ord)
         WHERE d.original AND NOT d.is_temporary
           AND coalesce(d.schema_name, '') <> 'clonesync'
           AND NOT (d.object_type = 'schema' AND d.object_identity = 'clonesync')
           AND d.object_type NOT IN ('publication', 'publication relation', 'publication namespace', 'subscription',
                                     'event trigger', 'user mapping', 'table column', 'table constraint', 'default value');
    ELSE
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'object_type', c.object_type, 'schema', c.schema_name,
                   'identity', c.object_identity, 'tag', c.command_tag,
                   'in_extension', c.in_extension,
                   'definition', clonesync.ddl_definition(c.classid, c.objid)) ORDER BY c.ord), '[]'::jsonb)
          INTO v_commands
          FROM pg_event_trigger_ddl_commands() WITH ORDINALITY AS c(classid, objid, objsubid, command_tag, object_type,
                 schema_name, object_identity, in_extension, command, ord)
         WHERE coalesce(c.schema_name, '') <> 'clonesync'
           -- An extension's script: CREATE EXTENSION itself is the command.
           AND NOT c.in_extension
           AND coalesce(c.schema_name, '') NOT LIKE 'pg\_temp%'
           AND NOT (c.object_type = 'schema' AND c.object_identity = 'clonesync')
           -- Replication objects are each side's own; a user mapping's
           -- text may hold a password, which must not travel.
           AND coalesce(c.object_type, '') NOT IN ('publication', 'publication relation', 'publication namespace',
                                                   'subscription', 'event trigger', 'user mapping');
    END IF;
    IF v_commands = '[]'::jsonb THEN
        RETURN;
    END IF;
    -- A tag that is none of the event's commands (a forged call) picks no
    -- statement: the target then rebuilds from the definitions only.
    v_tag_known := p_event = 'sql_drop'
        OR EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() c WHERE c.command_tag = p_tag);
    -- This function is callable by anyone while an event trigger runs, and
    -- the target runs the command as the role it names: a role the session
    -- cannot act as (a forged one, or a SECURITY DEFINER function's owner)
    -- becomes the session's own.
    IF NOT pg_has_role(session_user, p_role, 'MEMBER') THEN
        p_role := session_user;
    END IF;
    -- A string without an inner ';' is one statement; any other is split
    -- once per client message.
    IF strpos(rtrim(v_query, E' \t\r\n;'), ';') = 0 THEN
        v_statements := ARRAY[btrim(v_query, E' \t\r\n;')];
        v_prefixes := ARRAY[clonesync.ddl_statement_prefix(v_statements[1])];
    ELSE
        SELECT s.statements, s.prefixes INTO v_statements, v_prefixes FROM clonesync.ddl_split s
         WHERE s.pid = pg_backend_pid() AND s.stmt_ts = statement_timestamp() AND s.query_md5 = md5(v_query);
        IF NOT FOUND THEN
            v_statements := clonesync.ddl_statements(v_query);
            v_prefixes := ARRAY(SELECT clonesync.ddl_statement_prefix(st) FROM unnest(v_statements) WITH ORDINALITY u(st, o) ORDER BY o);
            INSERT INTO clonesync.ddl_split AS s (pid, stmt_ts, query_md5, statements, prefixes)
            VALUES (pg_backend_pid(), statement_timestamp(), md5(v_query), v_statements, v_prefixes)
            ON CONFLICT (pid) DO UPDATE SET stmt_ts = excluded.stmt_ts, query_md5 = excluded.query_md5,
                statements = excluded.statements, prefixes = excluded.prefixes;
        END IF;
    END IF;
    -- The command's statement: of the statements of its kind in the string,
    -- the one after those that earlier commands of that kind in this
    -- message took (top-level statements run in order). A DO block, a
    -- function call or CREATE EXTENSION running the command is of another
    -- kind: none then.
    SELECT count(*) INTO v_earlier FROM clonesync.ddl_queue qq
     WHERE qq.txid = pg_current_xact_id() AND qq.stmt_ts = statement_timestamp()
       AND qq.command_tag = p_tag AND qq.event = p_event;
    SELECT o INTO v_no
      FROM unnest(v_prefixes) WITH ORDINALITY AS u(pre, o)
     WHERE pre LIKE (p_tag || ' %') AND v_tag_known
     ORDER BY o OFFSET v_earlier LIMIT 1;
    INSERT INTO clonesync.ddl_queue (event, command_tag, role_name, search_path, command_text,
                                     statement_count, statement_no, commands)
    VALUES (p_event, p_tag, p_role, p_search_path, coalesce(v_statements[v_no], ''),
            coalesce(array_length(v_statements, 1), 0), v_no, v_commands);
END
$fn$;
REVOKE ALL ON FUNCTION clonesync.ddl_record(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION clonesync.ddl_record(text, text, text, text) TO PUBLIC;

-- The event trigger function: runs as the role that ran the DDL, so it can
-- read that role and its search_path.
-- When recording fails (a catalog it does not expect, a bug), the user's
-- DDL must still succeed on production: a row saying so is queued instead,
-- and the target reports the command as pending.
CREATE OR REPLACE FUNCTION clonesync.ddl_record_failure(p_event text, p_tag text, p_role text, p_error text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    INSERT INTO clonesync.ddl_queue (event, command_tag, role_name, search_path, command_text, statement_count, commands)
    VALUES (p_event, p_tag, session_user, '', '', 0,
            jsonb_build_array(jsonb_build_object('object_type', 'capture failure', 'tag', p_tag,
                'identity', NULL, 'error', left(p_error, 500))));
END
$fn$;
REVOKE ALL ON FUNCTION clonesync.ddl_record_failure(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION clonesync.ddl_record_failure(text, text, text, text) TO PUBLIC;

CREATE OR REPLACE FUNCTION clonesync.ddl_capture() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    BEGIN
        PERFORM clonesync.ddl_record(TG_EVENT, TG_TAG, current_user::text, pg_catalog.current_setting('search_path'));
    EXCEPTION WHEN OTHERS THEN
        -- (OTHERS leaves a cancel or a termination to end the command.)
        PERFORM clonesync.ddl_record_failure(TG_EVENT, TG_TAG, current_user::text, SQLERRM);
    END;
END
$fn$;

DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'clonesync_ddl_command_end') THEN
        CREATE EVENT TRIGGER clonesync_ddl_command_end ON ddl_command_end EXECUTE FUNCTION clonesync.ddl_capture();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'clonesync_sql_drop') THEN
        CREATE EVENT TRIGGER clonesync_sql_drop ON sql_drop EXECUTE FUNCTION clonesync.ddl_capture();
    END IF;
    -- A source that is itself a clonesync copy has them disabled.
    ALTER EVENT TRIGGER clonesync_ddl_command_end ENABLE;
    ALTER EVENT TRIGGER clonesync_sql_drop ENABLE;
END
$do$;
