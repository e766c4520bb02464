-- Schema change apply, installed on the target by `pg::ddl::install_apply`
-- in one transaction, after ddl_queue.sql; every statement is safe to run
-- again. The target is a clone, so clonesync.ddl_queue is usually there
-- already.
CREATE SCHEMA IF NOT EXISTS clonesync;
REVOKE ALL ON SCHEMA clonesync FROM PUBLIC;


-- What the target did with each queue row. Only on the target: the queue
-- rows themselves stay equal to the source's.
CREATE TABLE IF NOT EXISTS clonesync.ddl_applied (
    id bigint PRIMARY KEY,
    status text NOT NULL CHECK (status IN ('applied', 'pending', 'out_of_scope')),
    how text NOT NULL,
    detail text,
    command_tag text NOT NULL,
    -- The statement of the client string that was replayed (1-based), so
    -- no statement is replayed twice within one source transaction.
    txid xid8,
    stmt_ts timestamptz,
    statement_no int,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
ALTER TABLE clonesync.ddl_applied ADD COLUMN IF NOT EXISTS stmt_ts timestamptz;
-- A pending command's text (its start), kept here: the source prunes its
-- queue once every slot has the rows, and the deletes reach this queue too.
ALTER TABLE clonesync.ddl_applied ADD COLUMN IF NOT EXISTS command_text text;
REVOKE ALL ON clonesync.ddl_applied FROM PUBLIC;

-- Tables the refresh made from the source's definition as of a queue row
-- (`pg::ddl::create_table_from_definition`): older commands on them are
-- already in that definition.
CREATE TABLE IF NOT EXISTS clonesync.ddl_rebuilt (
    identity text PRIMARY KEY,
    as_of bigint NOT NULL
);
REVOKE ALL ON clonesync.ddl_rebuilt FROM PUBLIC;

-- Is one command (an entry of ddl_queue.commands) inside the scope (the
-- pipeline's scope, as JSON)? Objects that are not tables or indexes are in
-- a table-list scope when they live in one of its tables' schemas, so the
-- enum or sequence a listed table uses follows it.
CREATE OR REPLACE FUNCTION clonesync.ddl_in_scope(p_scope jsonb, p_command jsonb) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
DECLARE
    v_def jsonb := p_command -> 'definition';
    v_type text := p_command ->> 'object_type';
    v_schema text := coalesce(p_command ->> 'schema', v_def ->> 'schema',
                              CASE WHEN v_type = 'schema' THEN coalesce(p_command ->> 'name', v_def ->> 'name') END);
    v_table_schema text;
    v_table_name text;
BEGIN
    -- An extension serves the whole database: the types and functions of
    -- any scope's tables may come from it. A command the source could not
    -- record may have been anywhere: reported.
    IF v_type IN ('extension', 'capture failure') THEN
        RETURN true;
    END IF;
    -- A command that names no schema (GRANT, ALTER DEFAULT PRIVILEGES):
    -- in a whole-database scope only.
    IF v_schema IS NULL THEN
        RETURN p_scope ->> 'kind' = 'all_tables';
    END IF;
    IF v_schema IN ('pg_catalog', 'information_schema', 'clonesync', 'pg_toast')
       OR v_schema LIKE 'pg\_temp%' OR v_schema LIKE 'pg\_toast\_temp%' THEN
        RETURN false;
    END IF;
    CASE p_scope ->> 'kind'
    WHEN 'all_tables' THEN
        RETURN true;
    WHEN 'schemas' THEN
        RETURN p_scope -> 'schemas' ? v_schema;
    WHEN 'tables' THEN
        IF v_def ->> 'kind' = 'index' THEN
            v_table_schema := v_def ->> 'table_schema';
            v_table_name := v_def ->> 'table_name';
        ELSIF v_type IN ('table', 'foreign table') OR v_def ->> 'kind' IN ('table', 'table_child') THEN
            v_table_schema := v_schema;
            v_table_name := coalesce(v_def ->> 'name', p_command ->> 'name');
        ELSIF v_type = 'index' THEN
            -- A dropped index: its table, as the target still has it.
            SELECT tn.nspname, tc.relname INTO v_table_schema, v_table_name
              FROM pg_index x JOIN pg_class tc ON tc.oid = x.indrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
             WHERE x.indexrelid = to_regclass(p_command ->> 'identity');
            IF NOT FOUND THEN
                RETURN false;
            END IF;
        ELSE
            RETURN EXISTS (SELECT 1 FROM jsonb_array_elements(p_scope -> 'tables') t WHERE t ->> 'schema' = v_schema);
        END IF;
        RETURN EXISTS (SELECT 1 FROM jsonb_array_elements(p_scope -> 'tables') t
                        WHERE t ->> 'schema' = v_table_schema AND t ->> 'name' = v_table_name);
    ELSE
        RETURN false;
    END CASE;
END
$fn$;

-- Run one statement as a role with a search_path, through a SECURITY
-- DEFINER function owned by that role: the statement has exactly that
-- role's privileges, and cannot SET ROLE back to the apply's own
-- (PostgreSQL refuses SET ROLE inside such a function). The function lives
-- only inside this call: made, handed to the role, called and dropped in
-- the apply's own transaction, which no other session sees. A function
-- the role kept would be its to ALTER (SECURITY INVOKER, another body),
-- and the next replay would run the role's code as the apply's superuser.
-- A role the apply may not hand a function to fails here: pending. A
-- statement that waits for a lock longer than 30 s fails too (pending),
-- rather than hold the whole stream behind a session of the copy.
CREATE OR REPLACE FUNCTION clonesync.ddl_execute(p_statement text, p_role text, p_search_path text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
DECLARE
    -- Unique per call: a statement that replays a function of its own
    -- (nothing should, but the name must not be guessable to reuse).
    v_name text := 'ddl_exec_' || pg_catalog.md5(p_role || pg_catalog.clock_timestamp()::text || pg_catalog.random()::text);
BEGIN
    EXECUTE pg_catalog.format($f$CREATE FUNCTION clonesync.%I(p_statement text, p_search_path text) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET lock_timeout = '30s'
        SET application_name = 'clonesync replay' AS $b$
        BEGIN
            -- The apply worker arms no statement_timeout (only a client
            -- session's statements start that timer), so the monitor
            -- cancels a replay that has run too long; this name, restored
            -- when the function returns, tells it one runs and since when.
            PERFORM pg_catalog.set_config('application_name',
                'clonesync replay since ' || pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()))::bigint, false);
            PERFORM pg_catalog.set_config('search_path', p_search_path, true);
            EXECUTE p_statement;
        END $b$$f$, v_name);
    EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION clonesync.%I(text, text) FROM PUBLIC', v_name);
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION clonesync.%I(text, text) TO %I', v_name, current_user);
    EXECUTE pg_catalog.format('ALTER FUNCTION clonesync.%I(text, text) OWNER TO %I', v_name, p_role);
    EXECUTE pg_catalog.format('SELECT clonesync.%I($1, $2)', v_name) USING p_statement, p_search_path;
    EXECUTE pg_catalog.format('DROP FUNCTION clonesync.%I(text, text)', v_name);
END
$fn$;

-- The per-role functions an earlier version kept (owned by each role, so
-- each role could change its own): gone.
DO $do$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'clonesync'::regnamespace AND p.proname ~ '^ddl_as_[0-9a-f]{32}$' LOOP
        EXECUTE pg_catalog.format('DROP FUNCTION %s', f);
    END LOOP;
END
$do$;

-- Roles are global, not replicated: one made on the source after the
-- clone is missing here, and nothing it runs could be replayed as it. It
-- is made here NOLOGIN, with no attribute or membership, and marked by its
-- comment; returns the problem to report (pending), or nothing when the
-- role exists.
CREATE OR REPLACE FUNCTION clonesync.ddl_ensure_role(p_role text) RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = p_role) THEN
        RETURN '{}';
    END IF;
    EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', p_role);
    EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', p_role,
        'clonesync: made on this copy, NOLOGIN, because the source made it after the clone');
    RETURN ARRAY[pg_catalog.format('!role %s did not exist on the copy (made on the source after the clone; roles are not replicated): created here NOLOGIN; create it as on the source (attributes, memberships, grants)', p_role)];
END
$fn$;

-- A role ddl_ensure_role made has none of the source's grants, but the
-- source shows it may use and create in the schema of a table it made or
-- changes there: that one right is mirrored (USAGE, CREATE on that schema)
-- so its command runs as itself, not as the apply. Nothing for any other
-- role. Returns what it granted.
CREATE OR REPLACE FUNCTION clonesync.ddl_mirror_schema_rights(p_role text, p_identity text) RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_schema text := (pg_catalog.parse_ident(p_identity))[1];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                    WHERE r.rolname = p_role AND NOT r.rolcanlogin
                      AND pg_catalog.shobj_description(r.oid, 'pg_authid') LIKE 'clonesync: made on this copy%')
       -- (Two calls: with a list, has_schema_privilege answers for any.)
       OR (pg_catalog.has_schema_privilege(p_role, v_schema, 'USAGE')
           AND pg_catalog.has_schema_privilege(p_role, v_schema, 'CREATE')) THEN
        RETURN '{}';
    END IF;
    EXECUTE pg_catalog.format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', v_schema, p_role);
    RETURN ARRAY[pg_catalog.format('!granted %s USAGE and CREATE on schema %s, as its command on the source shows it has', p_role, v_schema)];
END
$fn$;

-- Bring one table to the definition the source had at the end of the
-- command: create it, or add, rename, retype and drop columns and
-- constraints until they match. Returns what it did; an entry starting
-- with '!' is a problem (the change was made, but may differ from the
-- source's).
CREATE OR REPLACE FUNCTION clonesync.ddl_reconcile_table(p_identity text, p_def jsonb, p_role text) RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
DECLARE
    v_rel regclass := to_regclass(p_identity);
    v_col jsonb;
    v_con jsonb;
    v_cols text;
    v_done text[] := '{}';
    v_target record;
    v_same_num record;
    v_source_names text[] := ARRAY(SELECT x ->> 'name' FROM jsonb_array_elements(p_def -> 'columns') x);
    v_expr text;
    v_partition boolean := p_def ->> 'parent' IS NOT NULL AND p_def ->> 'bound' IS NOT NULL;
    v_path text := 'pg_catalog, pg_temp';
    v_create text;
BEGIN
    -- A role made on the source after the clone is made here, with the
    -- schema right the source shows it has.
    IF v_rel IS NULL THEN
        v_done := v_done || clonesync.ddl_ensure_role(p_role);
    END IF;
    v_done := v_done || clonesync.ddl_mirror_schema_rights(p_role, p_identity);
    IF v_rel IS NULL THEN
        IF v_partition THEN
            v_create := format('CREATE TABLE %s PARTITION OF %s %s%s', p_identity, p_def ->> 'parent',
                p_def ->> 'bound', CASE WHEN p_def ->> 'partkey' IS NOT NULL THEN ' PARTITION BY ' || (p_def ->> 'partkey') ELSE '' END);
        ELSE
            -- An inheritance child lists only its own columns.
            SELECT string_agg(clonesync.ddl_column_clause(x), ', ' ORDER BY (x ->> 'attnum')::int)
              INTO v_cols FROM jsonb_array_elements(p_def -> 'columns') x
             WHERE p_def ->> 'parent' IS NULL OR (x ->> 'local')::boolean;
            v_create := format('CREATE TABLE %s (%s)%s%s', p_identity, coalesce(v_cols, ''),
                CASE WHEN p_def ->> 'parent' IS NOT NULL THEN format(' INHERITS (%s)', p_def ->> 'parent') ELSE '' END,
                CASE WHEN p_def ->> 'partkey' IS NOT NULL THEN ' PARTITION BY ' || (p_def ->> 'partkey') ELSE '' END);
        END IF;
        PERFORM clonesync.ddl_execute(v_create, p_role, v_path);
        v_rel := to_regclass(p_identity);
        v_done := v_done || 'created'::text;
    END IF;
    -- Columns; a partition's come from its parent, and so do the inherited
    -- ones of an inheritance child.
    IF NOT v_partition THEN
        FOR v_col IN SELECT x FROM jsonb_array_elements(p_def -> 'columns') x
                      WHERE p_def ->> 'parent' IS NULL OR (x ->> 'local')::boolean
                      ORDER BY (x ->> 'attnum')::int LOOP
            SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
                   CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, 0) ELSE pg_get_expr(d.adbin, d.adrelid) END AS expr, a.attgenerated::text AS generated
              INTO v_target FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = v_rel AND a.attname = v_col ->> 'name' AND a.attnum > 0 AND NOT a.attisdropped;
            IF NOT FOUND THEN
                -- Renamed: the column at the same position carries a name
                -- the source no longer has.
                SELECT a.attname::text AS name INTO v_same_num FROM pg_attribute a
                 WHERE a.attrelid = v_rel AND a.attnum = (v_col ->> 'attnum')::int AND NOT a.attisdropped
                   AND a.attname <> ALL (v_source_names);
                IF FOUND THEN
                    PERFORM clonesync.ddl_execute(format('ALTER TABLE %s RENAME COLUMN %I TO %I', p_identity, v_same_num.name, v_col ->> 'name'),
                        p_role, v_path);
                    v_done := v_done || format('renamed %s to %s', v_same_num.name, v_col ->> 'name');
                ELSE
                    PERFORM clonesync.ddl_execute(format('ALTER TABLE %s ADD COLUMN %s', p_identity, clonesync.ddl_column_clause(v_col)),
                        p_role, v_path);
                    v_done := v_done || format('added %s', v_col ->> 'name');
                    CONTINUE;
                END IF;
                SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
                       CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, 0) ELSE pg_get_expr(d.adbin, d.adrelid) END AS expr, a.attgenerated::text AS generated
                  INTO v_target FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE a.attrelid = v_rel AND a.attname = v_col ->> 'name' AND a.attnum > 0 AND NOT a.attisdropped;
            END IF;
            IF v_target.type IS DISTINCT FROM v_col ->> 'type' THEN
                PERFORM clonesync.ddl_execute(format('ALTER TABLE %s ALTER COLUMN %I TYPE %s USING %I::%s', p_identity,
                    v_col ->> 'name', v_col ->> 'type', v_col ->> 'name', v_col ->> 'type'), p_role, v_path);
                -- The source's USING expression is not in the definition.
                v_done := v_done || format('!column %s of %s retyped to %s with a plain cast: the source''s USING expression, if it had one, is unknown here; compare the values',
                    v_col ->> 'name', p_identity, v_col ->> 'type');
            END IF;
            v_expr := CASE WHEN v_target.generated = '' THEN v_target.expr END;
            IF v_col ->> 'generated' IS NULL AND v_expr IS DISTINCT FROM v_col ->> 'default' THEN
                PERFORM clonesync.ddl_execute(CASE WHEN v_col ->> 'default' IS NULL
                    THEN format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', p_identity, v_col ->> 'name')
                    ELSE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', p_identity, v_col ->> 'name', v_col ->> 'default') END,
                    p_role, v_path);
                v_done := v_done || format('default of %s', v_col ->> 'name');
            END IF;
            IF v_target.notnull IS DISTINCT FROM (v_col ->> 'notnull')::boolean AND coalesce(v_col ->> 'identity', '') = '' THEN
                PERFORM clonesync.ddl_execute(format('ALTER TABLE %s ALTER COLUMN %I %s NOT NULL', p_identity, v_col ->> 'name',
                    CASE WHEN (v_col ->> 'notnull')::boolean THEN 'SET' ELSE 'DROP' END), p_role, v_path);
                v_done := v_done || format('not null of %s', v_col ->> 'name');
            END IF;
        END LOOP;
        FOR v_target IN SELECT a.attname::text AS name FROM pg_attribute a
                         WHERE a.attrelid = v_rel AND a.attnum > 0 AND NOT a.attisdropped AND a.attislocal
                           AND a.attname <> ALL (v_source_names) ORDER BY a.attnum LOOP
            PERFORM clonesync.ddl_execute(format('ALTER TABLE %s DROP COLUMN %I', p_identity, v_target.name), p_role, v_path);
            v_done := v_done || format('dropped %s', v_target.name);
        END LOOP;
    END IF;
    -- Constraints made on the table itself (inherited ones follow the parent).
    FOR v_target IN SELECT k.conname::text AS name, pg_get_constraintdef(k.oid) AS def FROM pg_constraint k
                     WHERE k.conrelid = v_rel AND k.contype IN ('p', 'u', 'c', 'f', 'x') AND k.conislocal LOOP
        IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_def -> 'constraints') x
                        WHERE x ->> 'name' = v_target.name AND x ->> 'def' = v_target.def AND (x ->> 'local')::boolean) THEN
            PERFORM clonesync.ddl_execute(format('ALTER TABLE %s DROP CONSTRAINT %I', p_identity, v_target.name), p_role, v_path);
            v_done := v_done || format('dropped constraint %s', v_target.name);
        END IF;
    END LOOP;
    FOR v_con IN SELECT x FROM jsonb_array_elements(p_def -> 'constraints') x WHERE (x ->> 'local')::boolean LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = v_rel AND k.conname = v_con ->> 'name') THEN
            PERFORM clonesync.ddl_execute(format('ALTER TABLE %s ADD CONSTRAINT %I %s', p_identity, v_con ->> 'name', v_con ->> 'def'),
                p_role, v_path);
            v_done := v_done || format('added constraint %s', v_con ->> 'name');
        END IF;
    END LOOP;
    RETURN v_done;
END
$fn$;

-- One column as CREATE TABLE and ADD COLUMN write it.
CREATE OR REPLACE FUNCTION clonesync.ddl_column_clause(p_col jsonb) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
SELECT format('%I %s', p_col ->> 'name', p_col ->> 'type')
    || CASE WHEN p_col ->> 'collation' IS NOT NULL THEN ' COLLATE ' || (p_col ->> 'collation') ELSE '' END
    || CASE WHEN p_col ->> 'generated' IS NOT NULL THEN format(' GENERATED ALWAYS AS (%s) %s', p_col ->> 'generated',
              CASE WHEN p_col ->> 'generated_kind' = 'v' THEN 'VIRTUAL' ELSE 'STORED' END) ELSE '' END
    || CASE WHEN p_col ->> 'default' IS NOT NULL THEN ' DEFAULT ' || (p_col ->> 'default') ELSE '' END
    || CASE WHEN p_col ->> 'identity' = 'a' THEN ' GENERATED ALWAYS AS IDENTITY'
            WHEN p_col ->> 'identity' = 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
    || CASE WHEN (p_col ->> 'notnull')::boolean THEN ' NOT NULL' ELSE '' END
$fn$;

-- The table a command's definition describes (a command on a column names
-- the column), as a qualified name; NULL for other objects.
CREATE OR REPLACE FUNCTION clonesync.ddl_table_identity(p_command jsonb) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
SELECT CASE WHEN p_command -> 'definition' ->> 'kind' = 'table'
            THEN quote_ident(p_command -> 'definition' ->> 'schema') || '.' || quote_ident(p_command -> 'definition' ->> 'name') END
$fn$;

-- After a command added columns to an existing table: the rows that
-- predate it must read what they read on the source. A default evaluated
-- once (now(), current_user) gave the source's moment's value there and the
-- target's here, so those rows get the source's value; a value computed per
-- row (a volatile default, an identity) cannot be known here: reported.
CREATE OR REPLACE FUNCTION clonesync.ddl_align_added(p_identity text, p_def jsonb, p_before text[], p_role text) RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
DECLARE
    v_rel regclass := to_regclass(p_identity);
    v_col jsonb;
    v_here text;
    v_rows boolean;
    v_problems text[] := '{}';
BEGIN
    IF v_rel IS NULL OR p_before IS NULL OR p_def ->> 'parent' IS NOT NULL OR (p_def ->> 'partitioned')::boolean THEN
        RETURN v_problems;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', p_identity) INTO v_rows;
    IF NOT v_rows THEN
        RETURN v_problems;
    END IF;
    FOR v_col IN SELECT x FROM jsonb_array_elements(p_def -> 'columns') x
                  WHERE NOT (x ->> 'name' = ANY (p_before)) AND x ->> 'generated' IS NULL LOOP
        SELECT CASE WHEN a.atthasmissing THEN a.attmissingval::text END INTO v_here
          FROM pg_attribute a WHERE a.attrelid = v_rel AND a.attname = v_col ->> 'name' AND NOT a.attisdropped;
        IF v_col ->> 'missing' IS NOT NULL THEN
            IF v_here IS DISTINCT FROM v_col ->> 'missing' THEN
                PERFORM clonesync.ddl_execute(format('UPDATE %s SET %I = (%L::%s[])[1]', p_identity, v_col ->> 'name',
                    v_col ->> 'missing', v_col ->> 'type'), p_role, 'pg_catalog, pg_temp');
            END IF;
        ELSIF v_col ->> 'default' IS NOT NULL OR coalesce(v_col ->> 'identity', '') <> '' THEN
            v_problems := v_problems || format(
                'column %s of %s was added with a value computed row by row on each side (a volatile default or an identity): the rows that predate it differ from the source''s; copy them from the source',
                v_col ->> 'name', p_identity);
        END IF;
    END LOOP;
    RETURN v_problems;
END
$fn$;

-- Bring the object of one command to its definition on the source. NULL
-- when this kind of object is not rebuilt from its definition (only a
-- replay of the text applies it).
CREATE OR REPLACE FUNCTION clonesync.ddl_reconcile(p_command jsonb, p_role text, p_event text, p_replayed boolean) RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
DECLARE
    v_def jsonb := p_command -> 'definition';
    -- A command on a column names the column; the object is its table.
    v_identity text := CASE WHEN v_def ->> 'kind' = 'index' THEN quote_ident(v_def ->> 'table_schema') || '.' || quote_ident(v_def ->> 'name')
                            WHEN v_def ? 'schema' AND v_def ? 'name' AND v_def ->> 'kind' <> 'schema'
                            THEN quote_ident(v_def ->> 'schema') || '.' || quote_ident(v_def ->> 'name')
                            ELSE p_command ->> 'identity' END;
    v_label text;
    v_prev text;
    v_done text[] := '{}';
    v_next text;
    v_tag text := p_command ->> 'tag';
BEGIN
    -- Only commands whose whole effect is in the definition are rebuilt
    -- from it; the others (COMMENT, GRANT, ALTER ... OWNER, triggers, ...)
    -- only a replay applies. After a replay every command is checked.
    IF NOT p_replayed AND p_event <> 'sql_drop' AND v_tag NOT IN (
        'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'CREATE INDEX', 'REINDEX',
        'CREATE SEQUENCE', 'ALTER SEQUENCE', 'CREATE TYPE', 'ALTER TYPE', 'CREATE SCHEMA',
        'CREATE VIEW', 'CREATE FUNCTION', 'CREATE PROCEDURE') THEN
        RETURN NULL;
    END IF;
    IF p_event = 'sql_drop' THEN
        IF p_command ->> 'object_type' IN ('table', 'index', 'sequence', 'view', 'materialized view', 'type', 'schema',
                                           'function', 'procedure', 'foreign table') THEN
            PERFORM clonesync.ddl_execute(format('DROP %s IF EXISTS %s', upper(p_command ->> 'object_type'), v_identity),
                p_role, 'pg_catalog, pg_temp');
            RETURN ARRAY['dropped'];
        END IF;
        RETURN NULL;
    END IF;
    CASE v_def ->> 'kind'
    WHEN 'table' THEN
        -- A table only CREATE makes: an ALTER of a table the target does
        -- not have (renamed, moved to another schema) is not guessed at.
        IF to_regclass(v_identity) IS NULL AND v_tag NOT IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO') THEN
            RAISE EXCEPTION 'table % is not on the target (renamed or moved by this command?)', v_identity;
        END IF;
        RETURN clonesync.ddl_reconcile_table(v_identity, v_def, p_role);
    WHEN 'index' THEN
        IF (v_def ->> 'constraint')::boolean THEN
            RETURN '{}';
        END IF;
        IF to_regclass(v_identity) IS NULL THEN
            PERFORM clonesync.ddl_execute(v_def ->> 'def', p_role, 'pg_catalog, pg_temp');
            RETURN ARRAY['created'];
        END IF;
        RETURN '{}';
    WHEN 'identity_sequence' THEN
        RETURN '{}';
    WHEN 'sequence' THEN
        IF to_regclass(v_identity) IS NULL THEN
            PERFORM clonesync.ddl_execute(format('CREATE SEQUENCE %s AS %s INCREMENT %s MINVALUE %s MAXVALUE %s START %s CACHE %s %s',
                v_identity, v_def ->> 'type', v_def ->> 'increment', v_def ->> 'min', v_def ->> 'max', v_def ->> 'start',
                v_def ->> 'cache', CASE WHEN (v_def ->> 'cycle')::boolean THEN 'CYCLE' ELSE 'NO CYCLE' END),
                p_role, 'pg_catalog, pg_temp');
            v_done := v_done || 'created'::text;
        END IF;
        -- OWNED BY once the table is there (CREATE TABLE with a serial
        -- column makes the sequence first, and says OWNED BY after).
        IF v_def ->> 'owned_by' IS NOT NULL
           AND to_regclass(regexp_replace(v_def ->> 'owned_by', '\.[^.]+$', '')) IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM pg_depend dp WHERE dp.classid = 'pg_class'::regclass AND dp.objid = to_regclass(v_identity)
               AND dp.deptype = 'a' AND dp.refclassid = 'pg_class'::regclass) THEN
            PERFORM clonesync.ddl_execute(format('ALTER SEQUENCE %s OWNED BY %s', v_identity, v_def ->> 'owned_by'),
                p_role, 'pg_catalog, pg_temp');
            v_done := v_done || 'owned'::text;
        END IF;
        RETURN v_done;
    WHEN 'enum' THEN
        IF to_regtype(v_identity) IS NULL THEN
            PERFORM clonesync.ddl_execute(format('CREATE TYPE %s AS ENUM (%s)', v_identity,
                (SELECT string_agg(quote_literal(l), ', ' ORDER BY o) FROM jsonb_array_elements_text(v_def -> 'labels') WITH ORDINALITY AS e(l, o))),
                p_role, 'pg_catalog, pg_temp');
            RETURN ARRAY['created'];
        END IF;
        FOR v_label IN SELECT l FROM jsonb_array_elements_text(v_def -> 'labels') WITH ORDINALITY AS e(l, o) ORDER BY o LOOP
            IF NOT EXISTS (SELECT 1 FROM pg_enum WHERE enumtypid = to_regtype(v_identity) AND enumlabel = v_label) THEN
                -- Placed as on the source: after the label before it, or
                -- before the first label after it.
                SELECT l INTO v_next FROM jsonb_array_elements_text(v_def -> 'labels') WITH ORDINALITY AS e(l, o)
                 WHERE o > (SELECT o2 FROM jsonb_array_elements_text(v_def -> 'labels') WITH ORDINALITY AS e2(l2, o2) WHERE l2 = v_label LIMIT 1)
                   AND EXISTS (SELECT 1 FROM pg_enum WHERE enumtypid = to_regtype(v_identity) AND enumlabel = l)
                 ORDER BY o LIMIT 1;
                PERFORM clonesync.ddl_execute(format('ALTER TYPE %s ADD VALUE %L%s', v_identity, v_label,
                    CASE WHEN v_prev IS NOT NULL THEN format(' AFTER %L', v_prev)
                         WHEN v_next IS NOT NULL THEN format(' BEFORE %L', v_next) ELSE '' END), p_role, 'pg_catalog, pg_temp');
                v_done := v_done || ('added ' || v_label);
            END IF;
            v_prev := v_label;
        END LOOP;
        RETURN v_done;
    WHEN 'view' THEN
        PERFORM clonesync.ddl_execute(format('CREATE OR REPLACE VIEW %s AS %s', v_identity, v_def ->> 'def'), p_role, 'pg_catalog, pg_temp');
        RETURN ARRAY['rebuilt'];
    WHEN 'function' THEN
        PERFORM clonesync.ddl_execute(v_def ->> 'def', p_role, 'pg_catalog, pg_temp');
        RETURN ARRAY['rebuilt'];
    WHEN 'schema' THEN
        IF to_regnamespace(v_identity) IS NULL THEN
            PERFORM clonesync.ddl_execute(format('CREATE SCHEMA %s', v_identity), p_role, 'pg_catalog, pg_temp');
            RETURN ARRAY['created'];
        END IF;
        RETURN '{}';
    ELSE
        RETURN NULL;
    END CASE;
END
$fn$;

-- PostgreSQL 15 runs a table's triggers during apply as the subscription's
-- owner, a superuser: a trigger its table's owner made ENABLE ALWAYS (or
-- ENABLE REPLICA) would run that owner's code with superuser rights on
-- the copy and could read the source password from pg_subscription. On 15
-- no trigger but clonesync's own may fire during apply: an ALWAYS one is
-- set back to ENABLE (it still fires for the copy's own sessions), a
-- REPLICA one is disabled (it fired for nothing else). Each change is
-- recorded as pending under a negative id (minus the trigger's oid), so
-- status shows it. From 16 the subscription has run_as_owner = false:
-- triggers run as their table's owner, and nothing is changed. Rules need
-- nothing: the apply does not go through the rewriter.
CREATE OR REPLACE FUNCTION clonesync.ddl_neutralize_replica_triggers() RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    r record;
    v_done text[] := '{}';
    v_what text;
BEGIN
    IF pg_catalog.current_setting('server_version_num')::int >= 160000 THEN
        RETURN v_done;
    END IF;
    FOR r IN SELECT t.oid, t.tgname, t.tgenabled, t.tgrelid::regclass::text AS rel
               FROM pg_catalog.pg_trigger t
              WHERE t.tgenabled IN ('A', 'R') AND NOT t.tgisinternal
                AND NOT (t.tgname = 'clonesync_ddl_apply' AND t.tgrelid = 'clonesync.ddl_queue'::regclass)
              ORDER BY t.oid LOOP
        EXECUTE pg_catalog.format(CASE WHEN r.tgenabled = 'A' THEN 'ALTER TABLE %s ENABLE TRIGGER %I'
                                       ELSE 'ALTER TABLE %s DISABLE TRIGGER %I' END, r.rel, r.tgname);
        v_what := pg_catalog.format('trigger %I on %s was ENABLE %s; on PostgreSQL 15 replication would run it as the subscription''s superuser, so it is now %s on the copy',
            r.tgname, r.rel, CASE WHEN r.tgenabled = 'A' THEN 'ALWAYS' ELSE 'REPLICA' END,
            CASE WHEN r.tgenabled = 'A' THEN 'ENABLE (it fires for the copy''s own sessions only)' ELSE 'disabled' END);
        INSERT INTO clonesync.ddl_applied (id, status, how, detail, command_tag)
        VALUES (-r.oid::bigint, 'pending', 'neutralized', v_what, 'ALTER TABLE')
        ON CONFLICT (id) DO UPDATE SET detail = excluded.detail, status = 'pending', applied_at = pg_catalog.clock_timestamp();
        v_done := v_done || v_what;
    END LOOP;
    RETURN v_done;
END
$fn$;

-- On 15, the copy's own roles must not make a trigger fire during apply
-- either: a table owner who logs in to the copy and runs ENABLE ALWAYS
-- there has it set back at the end of that very command (this event
-- trigger runs as its owner, the apply's superuser). The apply itself runs
-- with session_replication_role = replica, which this trigger does not
-- fire for; ddl_apply_row calls the check itself.
CREATE OR REPLACE FUNCTION clonesync.ddl_replica_trigger_guard() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM clonesync.ddl_neutralize_replica_triggers();
END
$fn$;
DO $do$
BEGIN
    IF pg_catalog.current_setting('server_version_num')::int < 160000 THEN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'clonesync_replica_trigger_guard') THEN
            CREATE EVENT TRIGGER clonesync_replica_trigger_guard ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
                EXECUTE FUNCTION clonesync.ddl_replica_trigger_guard();
        END IF;
        ALTER EVENT TRIGGER clonesync_replica_trigger_guard ENABLE;
    ELSE
        DROP EVENT TRIGGER IF EXISTS clonesync_replica_trigger_guard;
    END IF;
END
$do$;

-- One queue row: applied while the apply worker inserts it, inside
-- the replicated transaction, before the rows that follow the command.
-- It never raises: a command it cannot apply is recorded as pending, so
-- the rest of the stream keeps flowing. TG_ARGV[0] is the pipeline's scope.
CREATE OR REPLACE FUNCTION clonesync.ddl_apply_row(q clonesync.ddl_queue, p_scope jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
DECLARE
    v_scope jsonb := p_scope;
    v_commands jsonb;
    v_command jsonb;
    v_statement text;
    v_replayed boolean := false;
    v_replay_failed boolean := false;
    v_result text[];
    v_effect boolean := false;
    v_problems text[] := '{}';
    v_notes text[] := '{}';
    v_how text := 'reconciled';
    v_statement_no int;
    v_before jsonb;
BEGIN
    IF EXISTS (SELECT 1 FROM clonesync.ddl_applied WHERE id = q.id) THEN
        RETURN;
    END IF;
    SELECT coalesce(jsonb_agg(x ORDER BY o), '[]'::jsonb) INTO v_commands
      FROM jsonb_array_elements(q.commands) WITH ORDINALITY AS e(x, o)
     WHERE clonesync.ddl_in_scope(v_scope, x);
    IF v_commands = '[]'::jsonb THEN
        INSERT INTO clonesync.ddl_applied (id, status, how, command_tag) VALUES (q.id, 'out_of_scope', 'skipped', q.command_tag);
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(v_commands) x
                    WHERE NOT EXISTS (SELECT 1 FROM clonesync.ddl_rebuilt r
                                       WHERE r.identity = clonesync.ddl_table_identity(x) AND r.as_of >= q.id)) THEN
        INSERT INTO clonesync.ddl_applied (id, status, how, command_tag, txid)
        VALUES (q.id, 'applied', 'in the definition the table was made from', q.command_tag, q.txid);
        RETURN;
    END IF;
    -- Replay the command's own statement (the source tells which, if it
    -- can) when every object of it is in scope, unless this transaction
    -- already replayed that statement (a function run by another statement
    -- can issue a command of the same kind). CREATE TABLE AS would fill
    -- the table from the target's own rows: rebuilt empty instead.
    -- The columns each table had before the command, to tell the ones it
    -- adds.
    SELECT coalesce(jsonb_object_agg(t.identity, (SELECT to_jsonb(array_agg(a.attname::text))
               FROM pg_attribute a WHERE a.attrelid = t.rel AND a.attnum > 0 AND NOT a.attisdropped)),
               '{}'::jsonb)
      INTO v_before
      FROM (SELECT clonesync.ddl_table_identity(x) AS identity, to_regclass(clonesync.ddl_table_identity(x)) AS rel
              FROM jsonb_array_elements(v_commands) x WHERE clonesync.ddl_table_identity(x) IS NOT NULL) t
     WHERE t.rel IS NOT NULL;
    IF q.statement_no IS NOT NULL
       AND jsonb_array_length(v_commands) = jsonb_array_length(q.commands)
       AND q.command_tag NOT IN ('CREATE TABLE AS', 'SELECT INTO', 'REINDEX')
       AND NOT (q.event = 'sql_drop' AND q.command_tag NOT LIKE 'DROP%')
       AND NOT EXISTS (SELECT 1 FROM clonesync.ddl_applied
                        WHERE txid = q.txid AND stmt_ts = q.stmt_ts AND statement_no = q.statement_no) THEN
        v_statement_no := q.statement_no;
    END IF;
    -- A role made after the clone: made here (NOLOGIN, no rights) before
    -- anything is run as it, and reported.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = q.role_name) THEN
        BEGIN
            v_problems := v_problems || ARRAY(SELECT substr(x, 2) FROM unnest(clonesync.ddl_ensure_role(q.role_name)) x);
        EXCEPTION WHEN OTHERS OR assert_failure THEN
            v_problems := v_problems || format('role %s does not exist on the copy and could not be made: %s', q.role_name, SQLERRM);
        END;
    END IF;
    BEGIN
        v_notes := v_notes || ARRAY(
            SELECT substr(g, 2) FROM jsonb_array_elements(v_commands) x,
                   unnest(clonesync.ddl_mirror_schema_rights(q.role_name, clonesync.ddl_table_identity(x))) g
             WHERE clonesync.ddl_table_identity(x) IS NOT NULL);
    EXCEPTION WHEN OTHERS OR assert_failure THEN
        v_problems := v_problems || format('could not give role %s its schema rights: %s', q.role_name, SQLERRM);
    END;
    IF v_statement_no IS NOT NULL THEN
        v_statement := q.command_text;
        -- Not in a transaction block, so the equivalent form that is.
        IF q.command_tag IN ('CREATE INDEX', 'DROP INDEX') THEN
            v_statement := regexp_replace(v_statement, '^(\s*(CREATE\s+(UNIQUE\s+)?|DROP\s+)INDEX)\s+CONCURRENTLY\M', '\1', 'i');
        ELSIF q.command_tag = 'ALTER TABLE' THEN
            v_statement := regexp_replace(v_statement, '(\mDETACH\s+PARTITION\s+.*)\s+(CONCURRENTLY|FINALIZE)\s*$', '\1', 'i');
        END IF;
        BEGIN
            PERFORM clonesync.ddl_execute(v_statement, q.role_name, q.search_path);
            v_replayed := true;
            v_how := CASE WHEN q.statement_count = 1 THEN 'replayed'
                          ELSE format('replayed statement %s of %s', v_statement_no, q.statement_count) END;
        EXCEPTION WHEN OTHERS OR assert_failure THEN
            -- Whatever the rebuild below repairs, a command whose own text
            -- failed here is not known to be applied: pending.
            v_problems := v_problems || format('replay of %L failed: %s', left(v_statement, 200), SQLERRM);
            v_replay_failed := true;
            v_statement_no := NULL;
        END;
    END IF;
    -- Then make each object match the source's definition: a no-op after a
    -- replay, the whole work otherwise.
    FOR v_command IN SELECT x FROM jsonb_array_elements(v_commands) x LOOP
        CONTINUE WHEN v_replayed AND q.event = 'sql_drop';
        -- An extension's objects come and go with the extension.
        CONTINUE WHEN coalesce((v_command ->> 'in_extension')::boolean, false);
        BEGIN
            v_result := clonesync.ddl_reconcile(v_command, q.role_name, q.event, v_replayed);
            IF v_command ->> 'object_type' = 'capture failure' THEN
                v_problems := v_problems || format('%s: the source could not record it (%s); compare with the drift report',
                    v_command ->> 'tag', v_command ->> 'error');
            ELSIF v_result IS NULL AND NOT v_replayed THEN
                v_problems := v_problems || format('%s %s: not applied (%s)', v_command ->> 'tag',
                    coalesce(v_command ->> 'identity', v_command ->> 'object_type'),
                    CASE WHEN q.statement_count > 1
                         THEN 'its statement cannot be told apart in a client string of several statements'
                         ELSE 'it ran inside another statement (a function or DO block), and only its text could apply it' END);
            ELSIF coalesce(array_length(v_result, 1), 0) > 0 THEN
                v_effect := true;
                v_problems := v_problems || ARRAY(SELECT substr(r, 2) FROM unnest(v_result) r WHERE r LIKE '!%');
                v_notes := v_notes || ARRAY(SELECT format('%s: %s', v_command ->> 'identity', r) FROM unnest(v_result) r WHERE r NOT LIKE '!%');
                IF v_replayed THEN
                    v_how := 'replayed and reconciled';
                END IF;
            END IF;
        EXCEPTION WHEN OTHERS OR assert_failure THEN
            v_problems := v_problems || format('%s %s: %s', v_command ->> 'tag', v_command ->> 'identity', SQLERRM);
        END;
        IF v_before ? clonesync.ddl_table_identity(v_command) THEN
            BEGIN
                v_problems := v_problems || clonesync.ddl_align_added(clonesync.ddl_table_identity(v_command),
                    v_command -> 'definition',
                    ARRAY(SELECT jsonb_array_elements_text(v_before -> clonesync.ddl_table_identity(v_command))),
                    q.role_name);
            EXCEPTION WHEN OTHERS OR assert_failure THEN
                v_problems := v_problems || format('%s %s: aligning added columns: %s', v_command ->> 'tag', v_command ->> 'identity', SQLERRM);
            END;
        END IF;
    END LOOP;
    -- Rebuilt from the definition without any change to make: what the
    -- command did is outside what a definition shows (a partition
    -- attached, a replica identity set): not known to be applied.
    IF NOT v_replayed AND NOT v_replay_failed AND NOT v_effect AND v_problems = '{}' THEN
        v_problems := v_problems || format('%s: its statement was not replayed and rebuilding from the definition changed nothing, so its effect is not known to be on the target',
            q.command_tag);
    END IF;
    -- Whatever route the command took (its text, a rebuild, a function it
    -- ran), no trigger of a user's may now fire as superuser during apply.
    v_problems := v_problems || clonesync.ddl_neutralize_replica_triggers();
    INSERT INTO clonesync.ddl_applied (id, status, how, detail, command_tag, txid, stmt_ts, statement_no, command_text)
    VALUES (q.id, CASE WHEN v_problems = '{}' THEN 'applied' ELSE 'pending' END, v_how,
            nullif(array_to_string(v_problems || v_notes, '; '), ''), q.command_tag,
            q.txid, q.stmt_ts, CASE WHEN v_replayed THEN v_statement_no END,
            CASE WHEN v_problems <> '{}' THEN left(q.command_text, 200) END);
END
$fn$;

-- The trigger itself: whatever goes wrong in applying one row (a bug, a
-- catalog it does not expect) is recorded as pending, never raised, so the
-- apply worker does not stop on it.
CREATE OR REPLACE FUNCTION clonesync.ddl_apply() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
BEGIN
    BEGIN
        PERFORM clonesync.ddl_apply_row(NEW, TG_ARGV[0]::jsonb);
    -- OTHERS leaves out two conditions, and neither may stop apply:
    -- query_canceled (the monitor's cancel of a replay that ran too long)
    -- and assert_failure (an ASSERT in a user's function a replay runs).
    EXCEPTION WHEN OTHERS OR assert_failure OR query_canceled THEN
        INSERT INTO clonesync.ddl_applied (id, status, how, detail, command_tag, txid, command_text)
        VALUES (NEW.id, 'pending', 'failed', format('could not apply: %s', SQLERRM), NEW.command_tag, NEW.txid,
                left(NEW.command_text, 200))
        ON CONFLICT (id) DO NOTHING;
    END;
    RETURN NEW;
END
$fn$;

-- Nothing here is for PUBLIC: the apply and clonesync's own sessions call
-- it as the schema's owner or a superuser. (The capture's two functions
-- the event trigger calls keep their grant; on a copy their event triggers
-- are disabled, and the schema is not usable by PUBLIC here.)
DO $do$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'clonesync'::regnamespace
                AND p.proname NOT IN ('ddl_record', 'ddl_record_failure') LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$do$;
