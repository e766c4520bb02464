#!/usr/bin/env python3
"""Checks clonesync.ddl_statements against the server's own parse.

Starts a scratch PostgreSQL server per major (15 always, 18 when its
binaries are installed) with debug_print_parse on and its log in a file,
installs shared/src/pg/ddl_queue.sql and ddl_capture.sql, and runs random
multi-statement strings, each as ONE simple-query message (psql -X -c), that
mix what the splitter must get right: quotes with '' and backslashes
(standard_conforming_strings on and off), E'' escapes, continued strings,
dollar quotes, quoted identifiers, -- and nested /* */ comments, comments
inside operators, CREATE RULE actions in parentheses, BEGIN ATOMIC bodies
with CASE ... END and END as a label, U&'', B'', X'', N'' and non-ASCII
names. Every statement must run; the generator is at fault otherwise.

The server's split is read from the log: each top-level statement's parse
tree ends with its :stmt_location and :stmt_len (bytes; len 0: to the end).
It is compared with clonesync.ddl_statements(string, setting in effect when
the string arrived), both sides without leading comments and whitespace.
A NULL split counts as refused; a refusal must be one the splitter's rules
name (a backslash in a plain literal: with the setting off, in a string of
more than one statement, or in one statement that backslash escapes would
split otherwise), and any non-NULL split must be the server's. The strings
also run in a second database whose capture is enabled: the queued rows
must name the server's statement (statement_no, command_text), or none
(statement_count 0) when refused, and no capture may fail.

Usage: tools/splitter-oracle.py [--count N] [--seed S] [--major 15 --major 18] [--verbose]
Exit status 0 when every major passes. Stdlib only; needs psql.
"""
import argparse
import csv
import io
import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUEUE_SQL = os.path.join(REPO, "shared", "src", "pg", "ddl_queue.sql")
CAPTURE_SQL = os.path.join(REPO, "shared", "src", "pg", "ddl_capture.sql")
TOOLS = os.environ.get("CLONESYNC_TOOLS", "/var/cache/clonesync-tools")
BINDIRS = {
    "15": "/usr/lib/postgresql/15/bin",
    "16": os.path.join(TOOLS, "postgresql", "16", "bin"),
    "17": os.path.join(TOOLS, "postgresql", "17", "bin"),
    "18": os.path.join(TOOLS, "postgresql", "18", "bin"),
}


# --------------------------------------------------------------------------
# Lexical helpers on the Python side (only for normalizing texts for the
# comparison: leading comments and whitespace go, as PostgreSQL 18 leaves
# them out of stmt_location and 15 keeps them).

WS = " \t\n\r\f\v"


def strip_leading_comments(text):
    i = 0
    n = len(text)
    while i < n:
        if text[i] in WS:
            i += 1
        elif text.startswith("--", i):
            while i < n and text[i] not in "\n\r":
                i += 1
        elif text.startswith("/*", i):
            depth = 1
            i += 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth += 1
                    i += 2
                elif text.startswith("*/", i):
                    depth -= 1
                    i += 2
                else:
                    i += 1
        else:
            break
    return text[i:]


def normalize(text):
    return strip_leading_comments(text).rstrip(WS)


def only_separators(text):
    """Whether text is nothing but ';', whitespace and comments."""
    rest = strip_leading_comments(text)
    while rest.startswith(";"):
        rest = strip_leading_comments(rest[1:])
    return rest == ""


# --------------------------------------------------------------------------
# The generator. Every statement it writes must run without error on a
# fresh database holding the tables of SETUP_SQL; object names are unique
# over the run (both databases run the same strings in the same order).

SETUP_SQL = """
CREATE TABLE log_t (a int, b text);
CREATE TABLE kw ("end" int, "case" int, begin int, atomic int);
INSERT INTO kw VALUES (1, 1, 1, 1);
"""


class Gen:
    def __init__(self, rng):
        self.rng = rng
        self.serial = 0

    def name(self, prefix):
        self.serial += 1
        return f"{prefix}{self.serial}"

    def chance(self, p):
        return self.rng.random() < p

    def pick(self, items):
        return self.rng.choice(items)

    # Separators between tokens: whitespace, or comments holding what would
    # end a statement or open a quote if they were not comments.
    def sep(self):
        r = self.rng.random()
        if r < 0.75:
            return " "
        return self.pick([
            "\n", "\t", "\r\n", "  ",
            " -- a; 'b \"c $$ END; /* \n",
            " --c\r",
            " /* x; 'y \"z $$ -- */ ",
            " /* outer /* inner; ' */ still; \" */ ",
            "\n-- END; CASE\n",
            " /*;*/",
        ])

    def case(self, word):
        r = self.rng.random()
        if r < 0.5:
            return word.upper()
        if r < 0.8:
            return word.lower()
        return "".join(c.upper() if self.chance(0.5) else c.lower() for c in word)

    # ---- literals. Each returns (sql, plain_backslash).

    def plain_literal(self, prefix=""):
        pieces = ["abc", ";", "''", '"', "$$", "--", "/*", "*/", "é€", "\n", " ", "END", "BEGIN ATOMIC", "$a$", "E''"]
        out = []
        backslash = False
        for _ in range(self.rng.randint(0, 6)):
            if self.chance(0.03):
                backslash = True
                if self.lex_standard:
                    # Plain data; a quote after it must still be doubled.
                    out.append(self.pick(["\\", "\\''", "a\\b"]))
                else:
                    out.append(self.pick(["\\\\", "\\'", "\\n", "\\';"]))
            else:
                out.append(self.pick(pieces))
        return prefix + "'" + "".join(out) + "'", backslash

    def e_literal(self):
        pieces = ["abc", ";", "''", "\\'", "\\\\", "\\n", "\\x41", "\\u00e9", '"', "$$", "--", "é", "\\';", "/*"]
        body = "".join(self.pick(pieces) for _ in range(self.rng.randint(0, 6)))
        return self.pick(["E", "e"]) + "'" + body + "'", False

    def dollar_literal(self):
        tag = self.pick(["", "", "a", "tag_1", "é", "_x", "Q9"])
        delim = "$" + tag + "$"
        pieces = ["abc", ";", "'", "''", '"', "--", "/*", "$", "$b$", "é", "\\", "\n", "$1", "END;", "$other$ ; $other$"]
        if tag:
            pieces.append("$$")
        while True:
            body = "".join(self.pick(pieces) for _ in range(self.rng.randint(0, 6)))
            # The first occurrence of the delimiter must be the closing one.
            if (body + delim).find(delim) == len(body):
                return delim + body + delim, False

    def continued_literal(self):
        """A string continued over a newline: the continuation keeps the
        first part's kind (E'..' goes on taking escapes)."""
        gap = self.pick(["\n", " \n  ", " -- c; 'x\n", "\r", "\n-- END;\n\t"])
        kind = self.rng.randint(0, 3)
        if kind == 0:
            return "E'a\\''" + gap + "'\\';'", False
        if kind == 1:
            first, b1 = self.plain_literal()
            second, b2 = self.plain_literal()
            return first + gap + second, b1 or b2
        if kind == 2:
            return "B'10'" + gap + "'01'", False
        return "X'1f'" + gap + "'2E'", False

    def text_literal(self, sconst=False):
        """A text literal; sconst: one the grammar takes where it wants a
        string constant (COMMENT ... IS), so no N''."""
        r = self.rng.random()
        if r < 0.3:
            return self.plain_literal()
        if r < 0.5:
            return self.e_literal()
        if r < 0.75:
            return self.dollar_literal()
        if r < 0.82 and not sconst:
            return self.plain_literal(prefix=self.pick(["N", "n"]))
        if r < 0.9 and self.lex_standard:
            # U&'' is refused by the server's scanner with the setting off.
            return self.pick(["U&'\\0041;\\00e9'", "u&'!0041;' UESCAPE '!'", "U&'a'';b'"]), False
        lit, b = self.continued_literal()
        if lit.startswith(("B", "X")):
            return self.plain_literal()
        return lit, b

    def any_literal(self):
        r = self.rng.random()
        if r < 0.15:
            return self.pick(["B'1010'", "b'1'", "X'1F'", "x'ab'"]), False
        if r < 0.3:
            return self.continued_literal()
        return self.text_literal()

    def table_name(self):
        base = self.name("t")
        style = self.rng.randint(0, 3)
        if style == 0:
            return base
        if style == 1:
            return '"' + base + ';x""y"'
        if style == 2:
            return "tä€_" + base
        if self.lex_standard:
            return 'U&"\\00e4' + base + '"'
        return base

    # ---- statements. Each returns (list of statements, plain_backslash).

    def st_create_table(self):
        t = self.table_name()
        lit, b = self.text_literal()
        s = self.sep
        stmts = [f"{self.case('create')}{s()}TABLE{s()}{t}{s()}(a int,{s()}b text DEFAULT {lit})"]
        if self.chance(0.5):
            lit2, b2 = self.text_literal()
            b = b or b2
            stmts.append(f"ALTER TABLE {t}{s()}ADD COLUMN c{self.serial} text DEFAULT {lit2}")
        if self.chance(0.3):
            lit3, b3 = self.text_literal(sconst=True)
            b = b or b3
            stmts.append(f"COMMENT ON TABLE {t} IS {lit3}")
        return stmts, b

    def st_select(self):
        s = self.sep
        cols = []
        b = False
        for _ in range(self.rng.randint(1, 3)):
            lit, lb = self.any_literal()
            b = b or lb
            cols.append(lit + self.pick(["", " AS x", ' AS "y;""z"', " AS end", " AS a$b$", " AS ü€$$", " AS €$1"]))
        cols.append(self.pick([
            "1 +-- c;\n 2", "3 */* ; */ 2", "5 -/* ; */- 3", "1 <>-- c'\n 2", "@-- c\n -5",
            "$q$;$q$ AS q", "1 AS end", "(SELECT 1)", "2 end",
        ]))
        return [f"SELECT{s()}" + f",{s()}".join(cols)], b

    def st_insert(self):
        lit, b = self.text_literal()
        return [f"INSERT INTO log_t VALUES (1,{self.sep()}{lit})"], b

    def st_rule(self):
        t = self.name("r")
        lit, b = self.text_literal()
        s = self.sep
        actions = [f"INSERT INTO log_t VALUES (1, {lit})", "INSERT INTO log_t VALUES (2, ';')"]
        if self.chance(0.3):
            actions.append("")  # an empty action after a ';'
        body = f";{s()}".join(actions)
        stmts = [
            f"CREATE TABLE {t} (a int)",
            f"CREATE RULE {t}_rule AS ON INSERT TO {t} DO {self.pick(['INSTEAD', 'ALSO'])}{s()}({s()}{body}{s()})",
        ]
        if self.chance(0.5):
            stmts.append(f"INSERT INTO {t} VALUES (1)")
        return stmts, b

    def atomic_statements(self):
        s = self.sep
        b = False
        out = []
        for _ in range(self.rng.randint(0, 4)):
            lit, lb = self.text_literal()
            b = b or lb
            out.append(self.pick([
                f"SELECT CASE WHEN a > 0 THEN 1 ELSE 2 {self.case('end')} AS {self.case('end')}",
                f"INSERT INTO log_t VALUES (a, {lit})",
                f"SELECT kw.{self.case('end')} FROM kw WHERE kw.begin = a",
                f"SELECT {self.case('case')} a WHEN 1 THEN ({self.case('case')} WHEN a > 1 THEN 3 END) ELSE $1 {self.case('end')}",
                f"UPDATE log_t SET b = {lit} WHERE a = $1",
                'SELECT a AS "end;"',
                f"DELETE FROM log_t WHERE b = {lit}",
                "SELECT 1 end",
                f"SELECT (SELECT {self.case('case')} WHEN true THEN 1 END){s()}AS x",
                "",  # an empty statement: ';;'
            ]))
        return out, b

    def st_atomic_function(self):
        f = self.name("fa")
        s = self.sep
        body, b = self.atomic_statements()
        body.append(self.pick([
            f"SELECT {self.case('case')} WHEN a IS NULL THEN 0 ELSE a {self.case('end')}",
            "SELECT a + 1 end",
            "SELECT kw.end FROM kw LIMIT 1",
        ]))
        inner = "".join(st + f";{s()}" for st in body)
        head = self.pick(["CREATE", "create or replace", "CREATE OR\nREPLACE"])
        begin = self.pick(["BEGIN ATOMIC", "begin atomic", "Begin /* ; */ Atomic", "BEGIN\n-- END;\nATOMIC"])
        return [f"{head}{s()}FUNCTION {f}(a int) RETURNS int LANGUAGE sql{s()}{begin}{s()}{inner}{self.case('end')}"], b

    def st_atomic_procedure(self):
        p = self.name("pa")
        s = self.sep
        lit, b = self.text_literal()
        body = self.pick(["", f"INSERT INTO log_t VALUES (1, {lit});{s()}", f";{s()}INSERT INTO log_t VALUES (2, {lit});;"])
        head = self.pick(["CREATE", "CREATE OR REPLACE"])
        return [f"{head} PROCEDURE {p}(){s()}LANGUAGE sql BEGIN ATOMIC{s()}{body}END"], b

    def st_keyword_params(self):
        f = self.name("fk")
        s = self.sep
        return [f"CREATE FUNCTION {f}(begin int, atomic int) RETURNS int LANGUAGE sql{s()}"
                f"BEGIN ATOMIC SELECT begin + atomic;{s()}END"], False

    def st_return_function(self):
        f = self.name("fr")
        return [f"CREATE FUNCTION {f}(a int) RETURNS int LANGUAGE sql{self.sep()}"
                f"RETURN CASE WHEN a > 0 THEN a {self.case('end')}"], False

    def st_plpgsql(self):
        f = self.name("fp")
        tag = self.pick(["$$", "$body$", "$é$", "$_1$"])
        inner = self.pick(["BEGIN RETURN 1; END", "DECLARE x text := ';'; BEGIN RETURN 1; END",
                           "BEGIN /* $x$ ; */ RETURN length('a;'''); END"])
        if tag == "$$":
            pass
        else:
            inner = inner.replace("/* $x$", "/* $$")
        return [f"CREATE OR REPLACE FUNCTION {f}() RETURNS int LANGUAGE plpgsql AS {tag} {inner} {tag}"], False

    def st_view(self):
        v = self.name("v")
        lit, b = self.text_literal()
        return [f"CREATE VIEW {v} AS SELECT {lit}::text AS x,{self.sep()}1 AS end"], b

    def string(self):
        """One client string: (text, setting when it arrives, plain_backslash)."""
        self.lex_standard = self.chance(0.7)
        statements = []
        backslash = False
        if self.chance(0.35):
            statements.append(f"SET standard_conforming_strings = {self.pick(['on', 'off'])}")
        makers = [
            (self.st_create_table, 3), (self.st_select, 3), (self.st_insert, 1), (self.st_rule, 2),
            (self.st_atomic_function, 3), (self.st_atomic_procedure, 1), (self.st_keyword_params, 1),
            (self.st_return_function, 1), (self.st_plpgsql, 1), (self.st_view, 1),
        ]
        weights = [w for _, w in makers]
        # At least two statements besides a SET.
        while len(statements) < 2 or (len(statements) == 2 and statements[0].startswith("SET")) or self.chance(0.4):
            maker = self.rng.choices([m for m, _ in makers], weights)[0]
            sts, b = maker()
            statements.extend(sts)
            backslash = backslash or b
        if self.chance(0.1):
            statements.insert(self.rng.randint(0, len(statements)), f"SET standard_conforming_strings = {self.pick(['on', 'off'])}")
        parts = []
        if self.chance(0.3):
            parts.append(self.pick(["-- leading; 'x\n", "/* lead /* nested; */ */\n", "\n\n", ";"]))
        for k, st in enumerate(statements):
            parts.append(st)
            if k < len(statements) - 1:
                parts.append(self.pick([";", ";", "; ", ";\n", ";;", "; /* only a comment; */ ;", ";\n-- x;\n"]))
        if self.chance(0.5):
            parts.append(self.pick([";", "; -- trailing;", ";\n", "; /* end */", ";;"]))
        return "".join(parts), self.lex_standard, backslash


# Hand-written strings for cases random ones might miss: (text, setting,
# plain backslash).
FIXED = [
    ("SELECT E'a'\n'\\''; SELECT 2", True, False),
    ("SELECT 'a'\n'b;'; SELECT 2", True, False),
    ("SELECT 'x' -- c;\n 'y'; SELECT 2", True, False),
    ("SELECT B'10'\n'01'; SELECT 1", True, False),
    ("SELECT 1 AS €$$; SELECT $$;$$", True, False),
    ("SELECT $a$ $b$ ; $b$ $a$; SELECT $é$;$é$", True, False),
    ("CREATE FUNCTION fx1() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; END", True, False),
    ("CREATE FUNCTION fx2(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a > 0 THEN 1 END end; "
     "SELECT 1 AS end; SELECT kw.end FROM kw; END; SELECT 1", True, False),
    ("CREATE FUNCTION fx3(begin int, atomic int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT begin; END; SELECT 2", True, False),
    ("CREATE PROCEDURE px1() LANGUAGE sql BEGIN ATOMIC END; CREATE FUNCTION fx4() RETURNS void LANGUAGE sql BEGIN ATOMIC ; ; END", True, False),
    ("SELECT 3 */* ; */ 2; SELECT 1 +-- ;\n 2; SELECT @-- c\n -5", True, False),
    ("SELECT 1 --c\r; SELECT 2", True, False),
    ("SELECT 'a\\'; SELECT 1'; SELECT 2", False, True),
    ("SELECT 'a\\'; SELECT 2", True, True),
    ("SET standard_conforming_strings = off; SELECT 'a\\'; SELECT 2", True, True),
    ("SELECT U&'!0041;' UESCAPE '!', U&'\\0041;' AS U&\"a\\0041;\", N'x;y', X'1F'", True, False),
    ("SELECT 1 AS \"a\"\"b;c\"; SELECT 1; /* only a comment */; -- and another\n;", True, False),
    ("/* a /* nested; */ ; */ SELECT 1; SELECT $$a;b$$", True, False),
    ("CREATE TABLE tä€_fixed (a int); SELECT 1 AS a$b$; SELECT 1 AS x$$; SELECT $$;$$", True, False),
    ("CREATE TABLE rx1 (a int); CREATE RULE rx1_r AS ON INSERT TO rx1 DO INSTEAD (INSERT INTO log_t VALUES (1, ';'); "
     "INSERT INTO log_t VALUES (2, ')');); INSERT INTO rx1 VALUES (1)", True, False),
    ("SELECT E'\\\\'; SELECT e'x\\';'; SELECT 1", False, False),
    # One statement with the setting on, a backslash in a plain literal:
    # taken when backslash escapes could not have lexed it (unterminated
    # then), refused when they make two statements of it.
    ("COMMENT ON TABLE log_t IS 'a\\'; -- x", True, True),
    ("SELECT set_config('standard_conforming_strings', 'on', false), '\\'';CREATE TABLE never_x();--'", True, True),
]


# --------------------------------------------------------------------------
# The server.

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, bindir, major):
        self.bindir = bindir
        self.major = major
        self.tmp = tempfile.mkdtemp(prefix=f"splitter-oracle-{major}-")
        self.data = os.path.join(self.tmp, "data")
        self.log = os.path.join(self.tmp, "server.log")
        self.port = free_port()
        self.started = False
        # initdb and postgres refuse to run as root.
        self.as_user = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"] if shutil.which("runuser") else None
        self.psql = os.path.join(bindir, "psql")
        if not os.path.exists(self.psql):
            self.psql = shutil.which("psql")

    def run_as(self, args):
        if self.as_user is None:
            cmd = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(shlex_quote(a) for a in args)]
        else:
            cmd = self.as_user + args
        return subprocess.run(cmd, capture_output=True, text=True)

    def start(self, parse_log=True):
        r = self.run_as([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres", "-A", "trust",
                         "-E", "UTF8", "--locale=C", "--no-sync"])
        if r.returncode:
            raise RuntimeError(f"initdb failed: {r.stderr}")
        options = " ".join([
            f"-p {self.port}", f"-k {self.tmp}", "-c listen_addresses=''",
            "-c debug_print_parse=on" if parse_log else "", "-c debug_pretty_print=off",
            "-c log_line_prefix='%m [%p] %a| '", "-c fsync=off",
        ])
        r = self.run_as([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", self.log, "-o", options, "-w", "start"])
        self.started = True
        if r.returncode:
            raise RuntimeError(f"pg_ctl start failed: {r.stderr}{r.stdout}")

    def stop(self):
        if self.started:
            self.run_as([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop"])
            self.started = False

    def cleanup(self, keep):
        self.stop()
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def psql_run(self, db, args, app="splitter-oracle", options="", stdin=None):
        env = dict(os.environ, PGAPPNAME=app, PGCLIENTENCODING="UTF8", PGOPTIONS=options)
        env.pop("PGSERVICE", None)
        cmd = [self.psql, "-X", "-q", "-h", self.tmp, "-p", str(self.port), "-U", "postgres", "-d", db] + args
        return subprocess.run(cmd, capture_output=True, env=env, input=stdin)

    def sql(self, db, text, **kw):
        r = self.psql_run(db, ["-v", "ON_ERROR_STOP=1", "-At"], stdin=text.encode(), **kw)
        if r.returncode:
            raise RuntimeError(f"psql failed on {db}: {r.stderr.decode(errors='replace')}")
        return r.stdout.decode()


def shlex_quote(s):
    return "'" + s.replace("'", "'\"'\"'") + "'"


# --------------------------------------------------------------------------
# Reading the server's split from its log.

ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[(\d+)\] (.*?)\| ([A-Z]+):  (.*)$")


def parse_trees(logfile):
    """app name -> [(stmt_location, stmt_len)] of its top-level parse trees,
    in log order."""
    trees = {}
    pending = {}  # pid -> app, after "parse tree:" until its DETAIL
    current = None  # (app, [lines]) of a DETAIL being read

    def finish():
        if current is None:
            return
        app, lines = current
        text = " ".join(lines)
        found = re.findall(r":stmt_location (-?\d+) :stmt_len (\d+)", text)
        # The top-level Query's fields come last; subqueries' before. A
        # statement analysed inside another (a BEGIN ATOMIC body's) has no
        # location.
        if found and int(found[-1][0]) >= 0:
            loc, ln = found[-1]
            trees.setdefault(app, []).append((int(loc), int(ln)))

    with open(logfile, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith("\t") and current is not None:
                current[1].append(line[1:])
                continue
            m = ENTRY.match(line)
            if not m:
                continue
            finish()
            current = None
            pid, app, level, msg = m.groups()
            if level == "LOG" and msg == "parse tree:":
                pending[pid] = app
            elif level == "DETAIL" and pid in pending:
                current = (pending.pop(pid), [msg])
    finish()
    return trees


# --------------------------------------------------------------------------

def run_major(major, bindir, args):
    print(f"== PostgreSQL {major} ({bindir})", flush=True)
    server = Server(bindir, major)
    failures = []
    try:
        server.start()
        version = server.sql("postgres", "SHOW server_version").strip()
        print(f"   server {version}, port {server.port}, log {server.log}", flush=True)
        for db in ("oracle", "capture"):
            server.sql("postgres", f"CREATE DATABASE {db}")
            with open(QUEUE_SQL) as q, open(CAPTURE_SQL) as c:
                server.sql(db, q.read() + "\n" + c.read(), options="-c debug_print_parse=off")
            server.sql(db, SETUP_SQL, options="-c debug_print_parse=off")
        # The capture's own queries would log parse trees of their own into
        # the oracle database's log: there it is off.
        server.sql("oracle", "ALTER EVENT TRIGGER clonesync_ddl_command_end DISABLE;"
                             "ALTER EVENT TRIGGER clonesync_sql_drop DISABLE;", options="-c debug_print_parse=off")

        gen = Gen(random.Random(args.seed))
        cases = [(t, s, b, "fixed") for t, s, b in FIXED]
        # The fixed strings name objects of their own: one run of them only.
        while len(cases) < args.count + len(FIXED):
            t, s, b = gen.string()
            cases.append((t, s, b, "random"))

        errors = 0
        queue_rows = {}
        # The setup's own rows are no string's.
        last_id = int(server.sql("capture", "SELECT coalesce(max(id), 0) FROM clonesync.ddl_queue",
                                 options="-c debug_print_parse=off").strip())
        started = time.time()
        for k, (text, standard, _, _) in enumerate(cases):
            setting = "on" if standard else "off"
            app = f"oracle{k}"
            r = server.psql_run("oracle", ["-c", text], app=app,
                                options=f"-c standard_conforming_strings={setting}")
            if r.returncode or b"ERROR" in r.stderr:
                errors += 1
                failures.append(f"string {k} failed on the server (generator bug): "
                                f"{r.stderr.decode(errors='replace').strip()[:300]}\n      {text!r}")
                continue
            r = server.psql_run("capture", ["-At", "-v", "ON_ERROR_STOP=1", "-c", text, "-c",
                                            "SELECT '@@rows ' || coalesce(json_agg(json_build_object("
                                            "'id', id, 'tag', command_tag, 'count', statement_count, 'no', statement_no, "
                                            "'text', command_text, 'kind', commands->0->>'object_type', 'error', commands->0->>'error') ORDER BY id), '[]') "
                                            f"FROM clonesync.ddl_queue WHERE id > {last_id}"],
                                app=f"capture{k}",
                                options=f"-c standard_conforming_strings={setting} -c debug_print_parse=off")
            out = r.stdout.decode(errors="replace")
            if r.returncode or "@@rows " not in out or b"ERROR" in r.stderr:
                errors += 1
                failures.append(f"string {k} failed in the capture database: {r.stderr.decode(errors='replace')[:300]}")
                continue
            queue_rows[k] = json.loads(out.split("@@rows ", 1)[1].splitlines()[0])
            last_id = max([last_id] + [row["id"] for row in queue_rows[k]])
        elapsed = time.time() - started

        # Our split, for all strings in one session.
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
        for k, (text, standard, _, _) in enumerate(cases):
            w.writerow([k, text, "t" if standard else "f"])
        splits_json = server.sql(
            "capture",
            "CREATE TEMP TABLE cases (k int, s text, std boolean);\n"
            "COPY cases FROM STDIN WITH (FORMAT csv);\n" + buf.getvalue() + "\\.\n"
            "SELECT json_object_agg(k, json_build_object('split', clonesync.ddl_statements(s, std), "
            "'off', clonesync.ddl_statements(s, false))) FROM cases;\n",
            options="-c debug_print_parse=off")
        splits = json.loads(splits_json.strip().splitlines()[-1])

        trees = parse_trees(server.log)
        counts = dict(strings=0, statements=0, refused=0, refused_single=0, agreed=0, mismatches=0,
                      unjustified=0, capture_rows=0, capture_picked=0, capture_refused=0, capture_unpicked=0)
        for k, (text, standard, backslash, origin) in enumerate(cases):
            if k not in queue_rows:
                continue
            raw = text.encode("utf-8")
            locs = trees.get(f"oracle{k}", [])
            server_split = []
            ok = True
            prev_end = 0
            for loc, ln in locs:
                end = len(raw) if ln == 0 else loc + ln
                if loc < prev_end or end > len(raw) or not only_separators(raw[prev_end:loc].decode("utf-8")):
                    ok = False
                server_split.append(normalize(raw[loc:end].decode("utf-8")))
                prev_end = end
            if not ok or not only_separators(raw[prev_end:].decode("utf-8")):
                failures.append(f"string {k}: the log's statements do not tile the string ({locs}); oracle unreliable\n      {text!r}")
                continue
            counts["strings"] += 1
            counts["statements"] += len(server_split)
            ours = splits[str(k)]["split"]
            if ours is None:
                counts["refused"] += 1
                if args.verbose:
                    print(f"   (string {k} refused, setting {'on' if standard else 'off'})\n      {text!r}")
                # Rule (a): a backslash in a plain literal, with the setting
                # off or more than one statement; or one statement that the
                # other setting lexes otherwise.
                if not backslash:
                    counts["unjustified"] += 1
                    failures.append(f"string {k} refused without a backslash in a plain literal\n      {text!r}")
                elif standard and len(server_split) == 1:
                    counts["refused_single"] += 1
            else:
                mine = [normalize(s) for s in ours]
                if mine != server_split:
                    counts["mismatches"] += 1
                    failures.append(f"string {k} ({origin}) split differs\n      text:   {text!r}\n"
                                    f"      server: {server_split!r}\n      ours:   {mine!r}")
                else:
                    counts["agreed"] += 1
            # The capture: the queued rows name the server's statement, or
            # none when the capture refused the string.
            for row in queue_rows[k]:
                counts["capture_rows"] += 1
                if row["kind"] == "capture failure":
                    failures.append(f"string {k}: capture failure {row}\n      {text!r}")
                    continue
                if row["count"] == 0:
                    counts["capture_refused"] += 1
                    if row["no"] is not None or row["text"] != "" or not backslash:
                        failures.append(f"string {k}: capture refused unexpectedly {row}\n      {text!r}")
                    continue
                if row["count"] != len(server_split):
                    failures.append(f"string {k}: capture counted {row['count']} statements, server "
                                    f"{len(server_split)}\n      {text!r}")
                    continue
                if row["no"] is None:
                    counts["capture_unpicked"] += 1
                    if args.verbose:
                        print(f"   (string {k}: no statement of kind {row['tag']} picked)\n      {text!r}")
                    continue
                counts["capture_picked"] += 1
                if normalize(row["text"]) != server_split[row["no"] - 1]:
                    failures.append(f"string {k}: capture picked {row['text']!r}, server statement "
                                    f"{row['no']} is {server_split[row['no'] - 1]!r}")
        counts["server_errors"] = errors
        print(f"   strings tried {counts['strings']} ({len(FIXED)} fixed), statements {counts['statements']}, "
              f"ran in {elapsed:.0f}s", flush=True)
        print(f"   agreed {counts['agreed']}, refused {counts['refused']} (of which one statement lexing "
              f"otherwise with escapes: {counts['refused_single']}), unjustified refusals {counts['unjustified']}, "
              f"mismatches {counts['mismatches']}", flush=True)
        print(f"   capture rows {counts['capture_rows']}: statement picked "
              f"{counts['capture_picked']}, refused (statement_count 0) {counts['capture_refused']}, "
              f"none of the command's kind {counts['capture_unpicked']}", flush=True)
        if counts["strings"] < min(args.count, 1000) or errors:
            failures.append(f"only {counts['strings']} strings checked, {errors} server errors")
    finally:
        server.cleanup(args.keep)
    for f in failures[:args.show]:
        print("   FAIL " + f)
    if len(failures) > args.show:
        print(f"   ... and {len(failures) - args.show} more failures")
    print(f"   {'FAILED' if failures else 'passed'}", flush=True)
    return not failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1200, help="random strings per major (default 1200)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--major", action="append", help="15, 16, 17 or 18; default 15 and 18 when installed")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directories")
    parser.add_argument("--show", type=int, default=20, help="failures to print")
    parser.add_argument("--verbose", action="store_true", help="print each refusal and each command no statement was picked for")
    args = parser.parse_args()

    # A SIGTERM still stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    majors = args.major or [m for m in ("15", "18") if m == "15" or os.path.exists(os.path.join(BINDIRS[m], "postgres"))]
    if len(majors) > 1:
        # One process per major, at the same time (each is one psql after
        # another against its own server: a core each); their reports are
        # printed in order when both are done.
        passed = ["--count", str(args.count), "--seed", str(args.seed), "--show", str(args.show)]
        passed += ["--keep"] if args.keep else []
        passed += ["--verbose"] if args.verbose else []
        children = [
            subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), *passed, "--major", m],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for m in majors
        ]
        ok = True
        for child in children:
            out, _ = child.communicate()
            sys.stdout.write(out)
            ok = child.returncode == 0 and ok
        sys.exit(0 if ok else 1)
    ok = True
    for major in majors:
        bindir = BINDIRS[major]
        if not os.path.exists(os.path.join(bindir, "postgres")):
            print(f"== PostgreSQL {major}: no binaries in {bindir}")
            ok = False
            continue
        ok = run_major(major, bindir, args) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
