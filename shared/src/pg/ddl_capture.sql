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

-- Earlier installs had a splitter that took no setting, and its helper.
DROP FUNCTION IF EXISTS clonesync.ddl_statements(text);
DROP FUNCTION IF EXISTS clonesync.ddl_identifier_char(text);

-- The top-level statements of a client string as the server's scanner
-- (scan.l) and grammar cut it, lexed with standard_conforming_strings as
-- given, comments kept, empty ones left out; statements NULL when a quote,
-- a comment, a dollar quote, a parenthesis or a BEGIN ATOMIC body is left
-- open (the server ran no such string). plain_backslash: a plain '...'
-- literal holds a backslash, the one thing that setting changes.
--
-- Bytes, not characters: get_byte on a variable is O(1) where indexing a
-- text or a text[] is O(i), and every server encoding is ASCII-safe (each
-- byte of a multibyte character has the high bit set, which the scanner,
-- byte-wise itself, takes for a letter). Inside a quote or a comment it
-- jumps with position() over windows that double: linear however long the
-- run, and cheap for a short one.
CREATE OR REPLACE FUNCTION clonesync.ddl_scan(p_text text, p_standard_strings boolean,
                                              OUT statements text[], OUT plain_backslash boolean)
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
DECLARE
    v_encoding name := pg_catalog.getdatabaseencoding();
    v bytea := pg_catalog.convert_to(p_text, v_encoding);
    n int := pg_catalog.octet_length(v);
    i int := 0;
    j int;
    b int;
    c int;
    -- 0 between tokens; in a string: 1 a plain one that takes no escapes,
    -- 2 one that takes backslash escapes (E'', or plain with the setting
    -- off), 3 B'' or X'' (no '' either), 4 U&''; 5 a quoted identifier, 6
    -- a dollar quote, 7 a /* */ comment, 8 a -- comment.
    v_state int := 0;
    v_plain boolean;
    v_comment_depth int;
    v_tag bytea;
    v_newline boolean;
    -- Where the first v_find1 or v_find2 at or after i is (v_first: which).
    v_find1 bytea;
    v_find2 bytea;
    v_window int;
    v_chunk bytea;
    k1 int;
    k2 int;
    v_at int;
    v_first boolean;
    v_start int := 0;
    v_content boolean := false;
    v_depth int := 0;
    v_atomic int := 0;
    -- The statement read (at the level of the innermost body): 0 at its
    -- start, 1 after CREATE, 2 after CREATE OR, 3 after CREATE OR
    -- REPLACE, 4 a CREATE FUNCTION or PROCEDURE whose body may follow, 5
    -- anything else.
    v_fn int := 0;
    -- The previous token is the word BEGIN in state 4 outside parentheses.
    v_begin boolean := false;
    v_word text;
    v_count int := 0;
    v_result text[] := '{}';
    c_quote constant bytea := pg_catalog.decode('27', 'hex');
    c_backslash constant bytea := pg_catalog.decode('5c', 'hex');
    c_dquote constant bytea := pg_catalog.decode('22', 'hex');
    c_lf constant bytea := pg_catalog.decode('0a', 'hex');
    c_cr constant bytea := pg_catalog.decode('0d', 'hex');
    c_open constant bytea := pg_catalog.decode('2f2a', 'hex');
    c_close constant bytea := pg_catalog.decode('2a2f', 'hex');
BEGIN
    plain_backslash := false;
    WHILE i < n LOOP
        IF v_state = 0 THEN
            b := pg_catalog.get_byte(v, i);
            -- Space, \t, \n, \v, \f, \r (\v: since PostgreSQL 16; before,
            -- a syntax error outside a quote).
            IF b = 32 OR (b >= 9 AND b <= 13) THEN
                i := i + 1;
                CONTINUE;
            END IF;
            c := CASE WHEN i + 1 < n THEN pg_catalog.get_byte(v, i + 1) ELSE -1 END;
            -- A comment starts at -- or /* even inside an operator: the
            -- scanner cuts the operator there.
            IF b = 45 AND c = 45 THEN
                v_state := 8;
                v_find1 := c_lf;
                v_find2 := c_cr;
                i := i + 2;
                CONTINUE;
            ELSIF b = 47 AND c = 42 THEN
                v_state := 7;
                v_comment_depth := 1;
                v_find1 := c_close;
                v_find2 := c_open;
                i := i + 2;
                CONTINUE;
            ELSIF b = 59 AND v_depth = 0 AND v_atomic = 0 THEN
                IF v_content THEN
                    v_count := v_count + 1;
                    v_result[v_count] := pg_catalog.btrim(pg_catalog.convert_from(
                        pg_catalog.substring(v, v_start + 1, i - v_start), v_encoding), E' \t\r\n');
                END IF;
                i := i + 1;
                v_start := i;
                v_content := false;
                v_fn := 0;
                v_begin := false;
                CONTINUE;
            END IF;
            v_content := true;
            IF (b >= 97 AND b <= 122) OR (b >= 65 AND b <= 90) OR b = 95 OR b >= 128 THEN
                j := i + 1;
                WHILE j < n LOOP
                    c := pg_catalog.get_byte(v, j);
                    EXIT WHEN NOT ((c >= 97 AND c <= 122) OR (c >= 65 AND c <= 90) OR (c >= 48 AND c <= 57)
                                   OR c = 95 OR c = 36 OR c >= 128);
                    j := j + 1;
                END LOOP;
                -- A one-letter word before a quote is the quote's prefix
                -- (the scanner takes the longest match): E'', B'', X'',
                -- N'' (a plain string after NCHAR), U&'' and U&"".
                IF j = i + 1 AND j < n THEN
                    c := pg_catalog.get_byte(v, j);
                    IF c = 39 AND b IN (69, 101) THEN
                        v_state := 2;
                        v_plain := false;
                    ELSIF c = 39 AND b IN (66, 98, 88, 120) THEN
                        v_state := 3;
                    ELSIF c = 39 AND b IN (78, 110) THEN
                        v_state := CASE WHEN p_standard_strings THEN 1 ELSE 2 END;
                        v_plain := true;
                    ELSIF c = 38 AND b IN (85, 117) AND j + 1 < n AND pg_catalog.get_byte(v, j + 1) IN (34, 39) THEN
                        v_state := CASE WHEN pg_catalog.get_byte(v, j + 1) = 39 THEN 4 ELSE 5 END;
                        j := j + 1;
                    END IF;
                END IF;
                IF v_state = 0 THEN
                    -- A word. Only keywords can open or close a BEGIN
                    -- ATOMIC body, and they are ASCII.
                    IF v_fn < 5 AND j - i BETWEEN 2 AND 9 THEN
                        v_word := pg_catalog.lower(pg_catalog.encode(pg_catalog.substring(v, i + 1, j - i), 'escape'));
                    ELSE
                        v_word := '';
                    END IF;
                    IF v_fn = 0 AND v_atomic > 0 AND v_word = 'end' THEN
                        -- The body's END: the grammar has it right after
                        -- ATOMIC or after a ';' between the body's
                        -- statements, where no statement starts with END
                        -- (in a body END is no COMMIT), and a CASE's END
                        -- never follows a ';'. So no CASE counting, and
                        -- "AS end" or "t.end" are not mistaken for it.
                        v_atomic := v_atomic - 1;
                        v_fn := 5;
                        v_begin := false;
                    ELSIF v_fn = 4 THEN
                        IF v_begin AND v_word = 'atomic' THEN
                            -- BEGIN ATOMIC outside parentheses in a CREATE
                            -- FUNCTION or PROCEDURE is its body: neither
                            -- word can be followed by the other anywhere
                            -- else there.
                            v_atomic := v_atomic + 1;
                            v_fn := 0;
                            v_begin := false;
                        ELSE
                            v_begin := v_depth = 0 AND v_word = 'begin';
                        END IF;
                    ELSE
                        v_fn := CASE
                            WHEN v_fn = 0 AND v_word = 'create' THEN 1
                            WHEN v_fn = 1 AND v_word = 'or' THEN 2
                            WHEN v_fn = 2 AND v_word = 'replace' THEN 3
                            WHEN v_fn IN (1, 3) AND v_word IN ('function', 'procedure') THEN 4
                            ELSE 5 END;
                        v_begin := false;
                    END IF;
                    i := j;
                    CONTINUE;
                END IF;
                i := j + 1;
            ELSIF b = 39 THEN
                v_state := CASE WHEN p_standard_strings THEN 1 ELSE 2 END;
                v_plain := true;
                i := i + 1;
            ELSIF b = 34 THEN
                v_state := 5;
                i := i + 1;
            ELSIF b = 36 THEN
                IF c >= 48 AND c <= 57 THEN
                    -- $1, a parameter.
                    i := i + 2;
                    WHILE i < n AND pg_catalog.get_byte(v, i) BETWEEN 48 AND 57 LOOP
                        i := i + 1;
                    END LOOP;
                ELSE
                    -- $tag$ (tag: no digit first, no $); else a lone $,
                    -- and what follows is read again.
                    j := i + 1;
                    IF (c >= 97 AND c <= 122) OR (c >= 65 AND c <= 90) OR c = 95 OR c >= 128 THEN
                        j := i + 2;
                        WHILE j < n LOOP
                            c := pg_catalog.get_byte(v, j);
                            EXIT WHEN NOT ((c >= 97 AND c <= 122) OR (c >= 65 AND c <= 90) OR (c >= 48 AND c <= 57)
                                           OR c = 95 OR c >= 128);
                            j := j + 1;
                        END LOOP;
                    END IF;
                    IF j < n AND pg_catalog.get_byte(v, j) = 36 THEN
                        v_state := 6;
                        v_tag := pg_catalog.substring(v, i + 1, j - i + 1);
                        i := j + 1;
                    ELSE
                        i := i + 1;
                    END IF;
                END IF;
            ELSIF b >= 48 AND b <= 57 THEN
                -- A number, with whatever the scanner rejects when glued to
                -- one (1abc): a $ after it starts a token.
                i := i + 1;
                WHILE i < n LOOP
                    c := pg_catalog.get_byte(v, i);
                    EXIT WHEN NOT ((c >= 48 AND c <= 57) OR (c >= 97 AND c <= 122) OR (c >= 65 AND c <= 90)
                                   OR c = 95 OR c = 46 OR c >= 128);
                    i := i + 1;
                END LOOP;
            ELSIF b = 40 THEN
                v_depth := v_depth + 1;
                i := i + 1;
            ELSIF b = 41 THEN
                v_depth := v_depth - 1;
                i := i + 1;
            ELSIF b = 59 AND v_depth = 0 THEN
                -- Between two statements of a body: one may start here,
                -- or the body's END.
                v_fn := 0;
                v_begin := false;
                i := i + 1;
                CONTINUE;
            ELSE
                i := i + 1;
            END IF;
            -- Any token but a word.
            v_begin := false;
            IF v_fn < 4 THEN
                v_fn := 5;
            END IF;
            -- What a string, a quoted identifier or a dollar quote looks for.
            IF v_state IN (1, 2) THEN
                v_find1 := c_quote;
                v_find2 := CASE WHEN v_state = 2 OR (v_plain AND NOT plain_backslash) THEN c_backslash END;
            ELSIF v_state IN (3, 4) THEN
                v_find1 := c_quote;
                v_find2 := NULL;
            ELSIF v_state = 5 THEN
                v_find1 := c_dquote;
                v_find2 := NULL;
            ELSIF v_state = 6 THEN
                v_find1 := v_tag;
                v_find2 := NULL;
            END IF;
            CONTINUE;
        END IF;

        -- In a string, a quoted identifier, a dollar quote or a comment.
        v_window := 64 + 2 * pg_catalog.octet_length(v_find1);
        LOOP
            v_chunk := pg_catalog.substring(v, i + 1, v_window);
            k1 := pg_catalog.position(v_chunk, v_find1);
            k2 := CASE WHEN v_find2 IS NULL THEN 0 ELSE pg_catalog.position(v_chunk, v_find2) END;
            EXIT WHEN k1 > 0 OR k2 > 0 OR i + v_window >= n;
            -- (Both needles have the same length: overlap by it less one.)
            i := i + v_window - pg_catalog.octet_length(v_find1) + 1;
            v_window := v_window * 2;
        END LOOP;
        IF k1 = 0 AND k2 = 0 THEN
            IF v_state = 8 THEN
                -- A -- comment may end the string.
                v_state := 0;
                i := n;
                CONTINUE;
            END IF;
            RETURN;
        END IF;
        v_first := k2 = 0 OR (k1 > 0 AND k1 < k2);
        v_at := i - 1 + CASE WHEN v_first THEN k1 ELSE k2 END;
        IF v_state = 8 THEN
            v_state := 0;
            i := v_at + 1;
        ELSIF v_state = 7 THEN
            -- Nested: whichever of */ and /* comes first.
            v_comment_depth := v_comment_depth + CASE WHEN v_first THEN -1 ELSE 1 END;
            IF v_comment_depth = 0 THEN
                v_state := 0;
            END IF;
            i := v_at + 2;
        ELSIF v_state = 6 THEN
            v_state := 0;
            i := v_at + pg_catalog.octet_length(v_tag);
        ELSIF v_state = 5 THEN
            IF v_at + 1 < n AND pg_catalog.get_byte(v, v_at + 1) = 34 THEN
                i := v_at + 2;
            ELSE
                v_state := 0;
                i := v_at + 1;
            END IF;
        ELSIF NOT v_first THEN
            -- A backslash: it escapes the next byte in state 2; once one is
            -- seen in a plain string, the rest need no looking at.
            IF v_plain THEN
                plain_backslash := true;
            END IF;
            IF v_state = 2 THEN
                i := v_at + 2;
            ELSE
                i := v_at + 1;
                v_find2 := NULL;
            END IF;
        ELSIF v_state <> 3 AND v_at + 1 < n AND pg_catalog.get_byte(v, v_at + 1) = 39 THEN
            i := v_at + 2;
        ELSE
            -- The closing quote, unless whitespace holding a newline (and
            -- -- comments) and a quote follow: then the same string goes on,
            -- in the same state (E'a'<newline>'\'' is one E string).
            i := v_at + 1;
            j := i;
            v_newline := false;
            WHILE j < n LOOP
                c := pg_catalog.get_byte(v, j);
                IF c = 10 OR c = 13 THEN
                    v_newline := true;
                ELSIF c = 45 AND j + 1 < n AND pg_catalog.get_byte(v, j + 1) = 45 THEN
                    j := j + 2;
                    WHILE j < n AND pg_catalog.get_byte(v, j) NOT IN (10, 13) LOOP
                        j := j + 1;
                    END LOOP;
                    CONTINUE;
                ELSIF NOT (c = 32 OR c = 9 OR c = 11 OR c = 12) THEN
                    EXIT;
                END IF;
                j := j + 1;
            END LOOP;
            IF v_newline AND j < n AND pg_catalog.get_byte(v, j) = 39 THEN
                i := j + 1;
            ELSE
                v_state := 0;
            END IF;
        END IF;
    END LOOP;
    IF v_state NOT IN (0, 8) OR v_depth <> 0 OR v_atomic <> 0 THEN
        RETURN;
    END IF;
    IF v_content THEN
        v_count := v_count + 1;
        v_result[v_count] := pg_catalog.btrim(pg_catalog.convert_from(
            pg_catalog.substring(v, v_start + 1, n - v_start), v_encoding), E' \t\r\n');
    END IF;
    statements := v_result;
END
$fn$;

-- The top-level statements of a client string (current_query()), comments
-- kept, empty ones left out; p_standard_strings: standard_conforming_strings
-- as the capture sees it. NULL when the split is not certain:
-- * a quote, comment, dollar quote, parenthesis or BEGIN ATOMIC body left
--   open (the server did not run the string);
-- * a plain '...' literal holding a backslash, with the setting off, or in
--   a string of more than one statement: a backslash before a quote ends
--   the literal under one setting and not under the other, and the server
--   lexed the whole string with the setting as it was when the string
--   came, which an earlier statement of it may have changed since. One
--   statement with the setting on is taken unless backslash escapes make
--   another split of it (a function's SET may have turned the setting on
--   since): a split that fails with escapes was not the server's, which
--   ran the string.
-- The body's END needs no refusal: see ddl_scan.
CREATE OR REPLACE FUNCTION clonesync.ddl_statements(p_text text, p_standard_strings boolean) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_statements text[];
    v_backslash boolean;
    v_escaped text[];
BEGIN
    SELECT s.statements, s.plain_backslash INTO v_statements, v_backslash
      FROM clonesync.ddl_scan(p_text, p_standard_strings) s;
    IF v_backslash AND v_statements IS NOT NULL THEN
        IF NOT p_standard_strings OR pg_catalog.cardinality(v_statements) > 1 THEN
            RETURN NULL;
        END IF;
        SELECT s.statements INTO v_escaped FROM clonesync.ddl_scan(p_text, false) s;
        IF v_escaped IS NOT NULL AND v_escaped IS DISTINCT FROM v_statements THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN v_statements;
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

-- The split of the client message being run, per backend: a script of
-- many commands sent as one string is split once, not once per command,
-- and each command then reads only its own statement (one row by index),
-- so a migration of n statements costs the capture O(n), not O(n^2). A
-- message is told by its backend and statement_timestamp(), which is set
-- anew for every client message. Only the capture writes these tables (no
-- role but the owner may), so nobody can make the capture queue a text
-- the source did not run. Unlogged: not published, not kept across a
-- crash. (ddl_split, an earlier version's one-row-per-message form, goes.)
DROP TABLE IF EXISTS clonesync.ddl_split;
CREATE UNLOGGED TABLE IF NOT EXISTS clonesync.ddl_message (
    pid int PRIMARY KEY,
    stmt_ts timestamptz NOT NULL,
    statement_count int NOT NULL
);
REVOKE ALL ON clonesync.ddl_message FROM PUBLIC;
CREATE UNLOGGED TABLE IF NOT EXISTS clonesync.ddl_message_statement (
    pid int NOT NULL,
    no int NOT NULL,
    statement text NOT NULL,
    PRIMARY KEY (pid, no)
);
REVOKE ALL ON clonesync.ddl_message_statement FROM PUBLIC;
-- Each statement under every command tag it could be (the first one to
-- four words of its clonesync.ddl_statement_prefix: "CREATE", "CREATE
-- TABLE", "CREATE TABLE PUBLIC.T", ...), so a command finds the next
-- statement of its kind by one index probe, however many statements of
-- other kinds lie between. ("C": the tags are compared byte for byte.)
CREATE UNLOGGED TABLE IF NOT EXISTS clonesync.ddl_message_kind (
    pid int NOT NULL,
    kind text COLLATE "C" NOT NULL,
    no int NOT NULL,
    PRIMARY KEY (pid, kind, no)
);
REVOKE ALL ON clonesync.ddl_message_kind FROM PUBLIC;

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

-- Whether the function that read p_stack (its PG_CONTEXT) was called by
-- the capture's event trigger function itself, directly: the call stack
-- is that function's frame, then the PERFORM of clonesync.ddl_capture().
-- A role's own function calling ours (from a DDL command's expression, or
-- anywhere else) is a frame of its own and fails this. Frames name their
-- function schema-qualified unless it was visible when compiled; an
-- unqualified ddl_capture() counts only while no other schema has one.
CREATE OR REPLACE FUNCTION clonesync.ddl_called_by_capture(p_stack text, p_callee text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET standard_conforming_strings = on AS $fn$
-- (coalesce: a stack of one frame, a direct call, has no frames[2].)
SELECT coalesce(frames[2] = pg_catalog.format('SQL statement "SELECT clonesync.%s(TG_EVENT, TG_TAG, current_user::pg_catalog.text, %s)"',
                                     p_callee, CASE p_callee WHEN 'ddl_record' THEN 'pg_catalog.current_setting(''search_path'')' ELSE 'SQLERRM' END)
       AND (frames[3] ~ '^PL/pgSQL function clonesync\.ddl_capture\(\) line [0-9]+ at PERFORM$'
            OR (frames[3] ~ '^PL/pgSQL function ddl_capture\(\) line [0-9]+ at PERFORM$'
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                                 WHERE p.proname = 'ddl_capture' AND p.pronargs = 0
                                   AND p.pronamespace <> 'clonesync'::pg_catalog.regnamespace))), false)
  FROM (SELECT pg_catalog.string_to_array(p_stack, E'\n') AS frames) f
$fn$;
REVOKE ALL ON FUNCTION clonesync.ddl_called_by_capture(text, text) FROM PUBLIC;

-- Tables clonesync gave REPLICA IDENTITY FULL (clonesync.ddl_keep_writable),
-- so teardown can give them back DEFAULT. Unlogged: not published (the
-- copy has no such table to apply rows into); after a crash of the source
-- it is empty and those tables keep FULL, which costs WAL, not writes.
CREATE UNLOGGED TABLE IF NOT EXISTS clonesync.ddl_identity_full (
    relid oid PRIMARY KEY,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    set_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
REVOKE ALL ON clonesync.ddl_identity_full FROM PUBLIC;

-- Whether a clonesync publication (its comment carries the pipeline's
-- mark) publishes updates or deletes of the table: FOR ALL TABLES, its
-- schema (or an ancestor's, for a partition) in TABLES IN SCHEMA, or it
-- or an ancestor listed.
CREATE OR REPLACE FUNCTION clonesync.ddl_published_for_changes(p_relid oid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
SELECT EXISTS (
    SELECT 1 FROM pg_catalog.pg_publication p
     WHERE (p.pubupdate OR p.pubdelete)
       AND pg_catalog.starts_with(coalesce(pg_catalog.obj_description(p.oid, 'pg_publication'), ''), 'clonesync pipeline ')
       AND (p.puballtables
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel pr
                        WHERE pr.prpubid = p.oid
                          AND pr.prrelid IN (SELECT a.relid FROM pg_catalog.pg_partition_ancestors(p_relid) a))
            OR EXISTS (SELECT 1 FROM pg_catalog.pg_publication_namespace pn
                         JOIN pg_catalog.pg_class c ON c.relnamespace = pn.pnnspid
                        WHERE pn.pnpubid = p.oid
                          AND c.oid IN (SELECT a.relid FROM pg_catalog.pg_partition_ancestors(p_relid) a))))
$fn$;

-- The first generated column among those that identify a row of the
-- table (its primary key, its identity index, or every column for FULL and
-- for a table without a key, which the guard below gives FULL); NULL before
-- PostgreSQL 18. 18 refuses UPDATE and DELETE on a published table whose
-- identity holds a generated column the publication does not publish, and
-- clonesync's publish none (the copy's columns are generated too), so no
-- identity clonesync can give such a table keeps it writable.
CREATE OR REPLACE FUNCTION clonesync.ddl_generated_in_identity(p_relid oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
SELECT CASE WHEN pg_catalog.current_setting('server_version_num')::int >= 180000 THEN
       (SELECT a.attname::text
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
         WHERE c.oid = p_relid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated <> ''
           AND (c.relreplident = 'f'
                OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index k WHERE k.indrelid = c.oid AND k.indisprimary))
                OR EXISTS (SELECT 1 FROM pg_catalog.pg_index k
                            WHERE k.indrelid = c.oid
                              AND ((c.relreplident = 'd' AND k.indisprimary) OR (c.relreplident = 'i' AND k.indisreplident))
                              AND a.attnum = ANY (k.indkey::pg_catalog.int2[])))
         ORDER BY a.attnum LIMIT 1)
       END
$fn$;
REVOKE ALL ON FUNCTION clonesync.ddl_generated_in_identity(oid) FROM PUBLIC;

-- Keep the source writable: a table a clonesync publication publishes
-- with no key to identify its rows (no primary key, no replica identity
-- index) makes every UPDATE and DELETE on it fail on the source ("does not
-- have a replica identity and publishes updates"), and an INSERT ... ON
-- CONFLICT DO UPDATE too on recent minor releases. A migration that
-- worked without clonesync would fail with it. So a table this command
-- made or changed into that shape gets REPLICA IDENTITY FULL (the whole
-- old row identifies it), in the command's own transaction, recorded in
-- clonesync.ddl_identity_full; one of those that has a primary key again
-- goes back to DEFAULT. Tables the user set FULL or NOTHING are theirs.
-- On 18, a table whose identity holds a generated column cannot be kept
-- writable by any identity clonesync may give: the command goes through
-- as it would without clonesync, with a WARNING that names the table and
-- the way out, and the monitor and status name it until it is fixed.
CREATE OR REPLACE FUNCTION clonesync.ddl_keep_writable() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    r record;
    v_generated text;
BEGIN
    FOR r IN SELECT DISTINCT c.oid, n.nspname, c.relname, c.relreplident,
                    EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_key,
                    EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisreplident) AS has_identity_index
               FROM pg_catalog.pg_event_trigger_ddl_commands() d
               JOIN pg_catalog.pg_class c ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = d.objid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND n.nspname <> 'clonesync'
    LOOP
        v_generated := clonesync.ddl_generated_in_identity(r.oid);
        IF v_generated IS NOT NULL AND clonesync.ddl_published_for_changes(r.oid) THEN
            RAISE WARNING 'clonesync: UPDATE and DELETE on table %.% fail on this source while clonesync publishes it: the columns that identify its rows include generated column %, which PostgreSQL 18 does not allow in a published table''s replica identity', r.nspname, r.relname, v_generated
                USING HINT = 'give it a primary key over ordinary columns, or leave it out of the pipeline''s scope';
        ELSIF ((r.relreplident = 'd' AND NOT r.has_key) OR (r.relreplident = 'i' AND NOT r.has_identity_index))
           AND clonesync.ddl_published_for_changes(r.oid) THEN
            EXECUTE pg_catalog.format('ALTER TABLE %I.%I REPLICA IDENTITY FULL', r.nspname, r.relname);
            INSERT INTO clonesync.ddl_identity_full (relid, schema_name, table_name)
            VALUES (r.oid, r.nspname, r.relname)
            ON CONFLICT (relid) DO UPDATE SET schema_name = EXCLUDED.schema_name, table_name = EXCLUDED.table_name;
        ELSIF r.relreplident = 'f' AND r.has_key
              AND EXISTS (SELECT 1 FROM clonesync.ddl_identity_full f WHERE f.relid = r.oid) THEN
            EXECUTE pg_catalog.format('ALTER TABLE %I.%I REPLICA IDENTITY DEFAULT', r.nspname, r.relname);
            DELETE FROM clonesync.ddl_identity_full f WHERE f.relid = r.oid;
        END IF;
    END LOOP;
END
$fn$;

-- The next queue id, taken without a sequence: nextval (the identity
-- column's default too) makes the user's lastval() return the queue's id
-- afterwards, or fail with "permission denied for sequence" for a role
-- without rights on it, so the capture would leave a trace in the session.
-- The id is the transaction's own id (xid8, which only grows) times 2^20,
-- plus the rows it queued before: unique, and in the order transactions
-- began, as the sequence's were. A transaction of more than 2^20 captured
-- commands runs into its successor's range; an id taken is skipped, so
-- none is ever refused. bigint lasts until xid8 reaches 2^43 (2,048
-- wraparounds of the 32-bit xid).
CREATE OR REPLACE FUNCTION clonesync.ddl_next_id() RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_id bigint;
BEGIN
    SELECT greatest(max(q.id) + 1, (pg_current_xact_id()::text::bigint) * 1048576)
      INTO v_id
      FROM clonesync.ddl_queue q
     WHERE q.txid = pg_current_xact_id();
    WHILE EXISTS (SELECT 1 FROM clonesync.ddl_queue q WHERE q.id = v_id) LOOP
        v_id := v_id + 1;
    END LOOP;
    RETURN v_id;
END
$fn$;
REVOKE ALL ON FUNCTION clonesync.ddl_next_id() FROM PUBLIC;

-- Records the current event. SECURITY DEFINER so that any role's DDL can
-- write the queue; it takes nothing from its caller but the role and the
-- search_path (read by the invoker below), and the event trigger functions
-- it calls refuse to run outside an event trigger, so it cannot be used to
-- forge a queue row. No SET standard_conforming_strings: the splitter needs
-- the session's (so no literal below may hold a backslash outside E'').
CREATE OR REPLACE FUNCTION clonesync.ddl_record(p_event text, p_tag text, p_role text, p_search_path text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- Planned for the tables as they are at each call: a migration fills the
-- queue and the statement cache within one transaction, and a plan made
-- while they were nearly empty (a sequential scan) would make each of its
-- commands cost as much as all the ones before it.
SET plan_cache_mode = force_custom_plan AS $fn$
DECLARE
    v_commands jsonb;
    v_query text;
    v_standard boolean := pg_catalog.current_setting('standard_conforming_strings') = 'on';
    v_statements text[];
    v_count int;
    v_no int;
    v_text text;
    v_last int;
    v_single boolean := false;
    v_tag_known boolean;
    v_stack text;
BEGIN
    -- Callable by PUBLIC only so the event trigger can call it as the
    -- role that ran the DDL: anyone else's call is refused, so a queue row
    -- comes only from a real command.
    GET DIAGNOSTICS v_stack = PG_CONTEXT;
    IF NOT clonesync.ddl_called_by_capture(v_stack, 'ddl_record') THEN
        RAISE EXCEPTION 'clonesync.ddl_record runs only from clonesync''s event trigger' USING ERRCODE = '42501';
    END IF;
    -- The guard's own ALTER TABLE ... REPLICA IDENTITY is nobody's change
    -- to the copy (a subscriber needs no identity of its own for a table
    -- the source publishes with FULL): not queued. Only the guard's
    -- EXECUTE puts this frame on the stack.
    IF pg_catalog.strpos(v_stack, E'\nPL/pgSQL function clonesync.ddl_keep_writable() line ') > 0 THEN
        RETURN;
    END IF;
    IF p_event = 'ddl_command_end' THEN
        -- Never at the cost of the user's command.
        BEGIN
            PERFORM clonesync.ddl_keep_writable();
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'clonesync could not give a keyless published table REPLICA IDENTITY FULL: %', SQLERRM
                USING HINT = 'UPDATE and DELETE on it fail while a clonesync publication publishes it; give it a primary key or REPLICA IDENTITY FULL';
        END;
    END IF;
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
           AND NOT pg_catalog.starts_with(coalesce(c.schema_name, ''), 'pg_temp')
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
    -- The command's statement: the first statement of its kind after the
    -- one the last command of that kind in this message took (top-level
    -- statements run in order; the queue's index finds that one at once).
    -- A DO block, a function call or CREATE EXTENSION running the command
    -- is of another kind: none then.
    SELECT qq.statement_no INTO v_last FROM clonesync.ddl_queue qq
     WHERE qq.txid = pg_catalog.pg_current_xact_id() AND qq.stmt_ts = pg_catalog.statement_timestamp()
       AND qq.command_tag = p_tag COLLATE "C" AND qq.event = p_event COLLATE "C" AND qq.statement_no IS NOT NULL
     ORDER BY qq.statement_no DESC LIMIT 1;
    -- The message's statements. A string of several is split on its first
    -- command and cached; the others read their one statement by index
    -- (current_query(), the whole string, is not even read again). A
    -- string without an inner ';' is one statement; but with the setting
    -- off, one holding a backslash goes to the splitter like any other, to
    -- be refused alike when the backslash is in a plain literal. A string
    -- the splitter cannot split for sure has no statements
    -- (statement_count 0): the target treats its commands as pending.
    SELECT m.statement_count INTO v_count FROM clonesync.ddl_message m
     WHERE m.pid = pg_catalog.pg_backend_pid() AND m.stmt_ts = pg_catalog.statement_timestamp();
    IF NOT FOUND THEN
        v_query := coalesce(pg_catalog.current_query(), '');
        IF strpos(rtrim(v_query, E' \t\r\n;'), ';') = 0 AND (v_standard OR strpos(v_query, E'\\') = 0) THEN
            v_single := true;
            v_count := 1;
            v_text := btrim(v_query, E' \t\r\n;');
            IF v_last IS NULL AND v_tag_known AND clonesync.ddl_statement_tag_matches(v_text, p_tag) THEN
                v_no := 1;
            ELSE
                v_text := NULL;
            END IF;
        ELSE
            v_statements := coalesce(clonesync.ddl_statements(v_query, v_standard), '{}');
            v_count := coalesce(array_length(v_statements, 1), 0);
            DELETE FROM clonesync.ddl_message_statement WHERE pid = pg_catalog.pg_backend_pid();
            DELETE FROM clonesync.ddl_message_kind WHERE pid = pg_catalog.pg_backend_pid();
            INSERT INTO clonesync.ddl_message AS m (pid, stmt_ts, statement_count)
            VALUES (pg_catalog.pg_backend_pid(), pg_catalog.statement_timestamp(), v_count)
            ON CONFLICT (pid) DO UPDATE SET stmt_ts = excluded.stmt_ts, statement_count = excluded.statement_count;
            INSERT INTO clonesync.ddl_message_statement (pid, no, statement)
            SELECT pg_catalog.pg_backend_pid(), u.o, u.st FROM unnest(v_statements) WITH ORDINALITY AS u(st, o);
            -- (The prefix ends in a space: ddl_statement_tag_matches is
            -- "prefix LIKE tag || ' %'", so a tag matches exactly the
            -- prefix's first words.)
            INSERT INTO clonesync.ddl_message_kind (pid, kind, no)
            SELECT DISTINCT pg_catalog.pg_backend_pid(),
                   pg_catalog.array_to_string((pg_catalog.string_to_array(pg_catalog.rtrim(p.prefix, ' '), ' '))[1:w], ' '), p.o
              FROM (SELECT u.o, clonesync.ddl_statement_prefix(u.st) AS prefix
                      FROM unnest(v_statements) WITH ORDINALITY AS u(st, o)) p,
                   pg_catalog.generate_series(1, 4) w
             WHERE pg_catalog.rtrim(p.prefix, ' ') <> ''
               AND w <= pg_catalog.array_length(pg_catalog.string_to_array(pg_catalog.rtrim(p.prefix, ' '), ' '), 1);
        END IF;
    END IF;
    IF NOT v_single AND v_tag_known THEN
        SELECT k.no INTO v_no FROM clonesync.ddl_message_kind k
         WHERE k.pid = pg_catalog.pg_backend_pid() AND k.kind = p_tag COLLATE "C" AND k.no > coalesce(v_last, 0)
         ORDER BY k.no LIMIT 1;
        SELECT st.statement INTO v_text FROM clonesync.ddl_message_statement st
         WHERE st.pid = pg_catalog.pg_backend_pid() AND st.no = v_no;
    END IF;
    INSERT INTO clonesync.ddl_queue (id, event, command_tag, role_name, search_path, command_text,
                                     statement_count, statement_no, commands)
    VALUES (clonesync.ddl_next_id(), p_event, p_tag, p_role, p_search_path, coalesce(v_text, ''),
            v_count, v_no, v_commands);
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
DECLARE
    v_stack text;
BEGIN
    -- As for ddl_record: a failure row comes only from a real failure.
    GET DIAGNOSTICS v_stack = PG_CONTEXT;
    IF NOT clonesync.ddl_called_by_capture(v_stack, 'ddl_record_failure') THEN
        RAISE EXCEPTION 'clonesync.ddl_record_failure runs only from clonesync''s event trigger' USING ERRCODE = '42501';
    END IF;
    INSERT INTO clonesync.ddl_queue (id, event, command_tag, role_name, search_path, command_text, statement_count, commands)
    VALUES (clonesync.ddl_next_id(), p_event, p_tag, session_user, '', '', 0,
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
        -- Every name qualified: this function has no search_path of its
        -- own (it reads the caller's), and runs in every role's DDL. The
        -- two statements are spelt exactly as ddl_called_by_capture
        -- expects them.
        PERFORM clonesync.ddl_record(TG_EVENT, TG_TAG, current_user::pg_catalog.text, pg_catalog.current_setting('search_path'));
    EXCEPTION WHEN OTHERS THEN
        -- (OTHERS leaves a cancel or a termination to end the command.)
        PERFORM clonesync.ddl_record_failure(TG_EVENT, TG_TAG, current_user::pg_catalog.text, SQLERRM);
    END;
END
$fn$;

-- Keeping the queue small. A row may go once every logical slot of this
-- database has confirmed past its commit, but a row does not know its
-- commit's WAL position. A watermark does: the oldest transaction still
-- running when it was taken (every older one had ended, so had written
-- its commit) and the WAL insert position read after that. Once every
-- slot has confirmed past a watermark's position, every row of a
-- transaction older than its xmin has reached every subscriber. Unlogged:
-- a FOR ALL TABLES publication leaves it out (it has no key to publish
-- deletes by, and no copy needs it); a crash only empties it, which makes
-- pruning wait for the next watermark.
CREATE UNLOGGED TABLE IF NOT EXISTS clonesync.ddl_queue_watermark (
    taken_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    older_than xid8 NOT NULL,
    lsn pg_lsn NOT NULL
);
REVOKE ALL ON clonesync.ddl_queue_watermark FROM PUBLIC;

-- Remove the queue rows every slot of this database has confirmed (all
-- of them when the database has no logical slot: nothing reads them, and
-- a later pipeline's clone has their effect already), never the newest
-- row (its id is where the queue continues, and what a rebuilt table's
-- as_of is compared with); then take a new watermark. Every logical slot
-- counts, clonesync's or not: one that cannot be told apart may read the
-- queue. Run by the lag monitor as the setup login; executable by no one
-- else. A run that finds another running skips the pruning.
CREATE OR REPLACE FUNCTION clonesync.ddl_queue_prune(OUT pruned bigint, OUT rows_left bigint, OUT bytes bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_slots bigint;
    v_unconfirmed boolean;
    v_confirmed pg_lsn;
    v_older_than xid8;
    v_newest bigint;
BEGIN
    pruned := 0;
    BEGIN
        LOCK TABLE clonesync.ddl_queue_watermark IN SHARE ROW EXCLUSIVE MODE NOWAIT;
    EXCEPTION WHEN lock_not_available THEN
        SELECT count(*), pg_total_relation_size('clonesync.ddl_queue') INTO rows_left, bytes FROM clonesync.ddl_queue;
        RETURN;
    END;
    -- A watermark from another server's history (this database was made
    -- from a clone) says nothing here.
    DELETE FROM clonesync.ddl_queue_watermark WHERE lsn > pg_current_wal_insert_lsn();
    SELECT count(*), coalesce(bool_or(s.confirmed_flush_lsn IS NULL), false), min(s.confirmed_flush_lsn)
      INTO v_slots, v_unconfirmed, v_confirmed
      FROM pg_replication_slots s
     WHERE s.slot_type = 'logical' AND s.database = current_database();
    IF NOT v_unconfirmed THEN
        SELECT w.older_than INTO v_older_than FROM clonesync.ddl_queue_watermark w
         WHERE v_slots = 0 OR w.lsn <= v_confirmed
         ORDER BY w.lsn DESC LIMIT 1;
        IF v_older_than IS NOT NULL THEN
            SELECT max(q.id) INTO v_newest FROM clonesync.ddl_queue q;
            WITH gone AS (
                DELETE FROM clonesync.ddl_queue q
                 WHERE q.txid < v_older_than AND q.id < v_newest
                RETURNING 1)
            SELECT count(*) INTO pruned FROM gone;
            DELETE FROM clonesync.ddl_queue_watermark w WHERE w.older_than <= v_older_than;
        END IF;
    END IF;
    -- At most 100 waiting: a slot far behind makes pruning wait for it,
    -- not the table grow.
    IF (SELECT count(*) FROM clonesync.ddl_queue_watermark) < 100 THEN
        INSERT INTO clonesync.ddl_queue_watermark (older_than, lsn)
        VALUES (pg_snapshot_xmin(pg_current_snapshot()), pg_current_wal_insert_lsn());
    END IF;
    SELECT count(*), pg_total_relation_size('clonesync.ddl_queue') INTO rows_left, bytes FROM clonesync.ddl_queue;
END
$fn$;

-- EXECUTE for PUBLIC only on the two functions the event trigger function
-- calls as the role that ran the DDL (granted above; each refuses any
-- other caller). The event trigger function itself needs no grant: the
-- server invokes it without checking one.
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
