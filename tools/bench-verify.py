"""Helpers of tools/bench-verify, run with the bench venv's python (psycopg2).

  sample OUT PID...          every 150 ms, the summed RssAnon of every child
                             of the given postmasters; on SIGTERM writes
                             "peak_kb first_kb samples" to OUT
  hash SRC_PORT DST_PORT DB  the demo's comparison (local/src/compare.rs):
                             per table, on the source then on the target,
                             count(*) and md5 of string_agg(t::text) in key
                             order (no key: in t::text order), one
                             connection per side; exit 0 when every table is
                             equal, 1 otherwise
  keys PORT DB               "schema.table<TAB>key,columns" per table of public
                             (empty key column list for a keyless table)
"""

import os
import signal
import sys
import time

INTERVAL = 0.15

TABLES = (
    "SELECT n.nspname::text, c.relname::text FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 1, 2"
)
KEYS = (
    "SELECT a.attname::text FROM pg_index i "
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
    "WHERE i.indrelid = %s::regclass AND i.indisprimary "
    "ORDER BY array_position(i.indkey::int2[], a.attnum)"
)


def children(parents):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid in parents:
            found.append(entry)
    return found


def rss_anon_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def sample(out, pids):
    parents = {int(p) for p in pids}
    state = {"peak": 0, "first": None, "samples": 0}

    def stop(*_):
        with open(out, "w") as f:
            f.write(f"{state['peak']} {state['first'] or 0} {state['samples']}\n")
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        total = sum(rss_anon_kb(pid) for pid in children(parents))
        if state["first"] is None:
            state["first"] = total
        state["peak"] = max(state["peak"], total)
        state["samples"] += 1
        time.sleep(INTERVAL)


def connect(port, db):
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=int(port), user="postgres", dbname=db)
    conn.autocommit = True
    return conn


def quote(name):
    return '"' + name.replace('"', '""') + '"'


def tables_and_keys(conn):
    with conn.cursor() as cur:
        cur.execute(TABLES)
        tables = cur.fetchall()
        result = []
        for schema, table in tables:
            qualified = f"{quote(schema)}.{quote(table)}"
            cur.execute(KEYS, (qualified,))
            result.append((schema, table, qualified, [r[0] for r in cur.fetchall()]))
        return result


def keys(port, db):
    for schema, table, _, key in tables_and_keys(connect(port, db)):
        print(f"{schema}.{table}\t{','.join(key)}")


def hash_tables(src_port, dst_port, db):
    source, target = connect(src_port, db), connect(dst_port, db)
    differing = 0
    for schema, table, qualified, key in tables_and_keys(source):
        order = ", ".join(quote(k) for k in key) if key else "t::text"
        query = (
            f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '')) "
            f"FROM {qualified} t"
        )
        states = []
        for conn in (source, target):
            with conn.cursor() as cur:
                cur.execute(query)
                states.append(cur.fetchone())
        (rows_a, hash_a), (rows_b, hash_b) = states
        if states[0] == states[1]:
            print(f"  {schema}.{table}: equal ({rows_a} rows, md5 {hash_a})")
        else:
            differing += 1
            print(
                f"  {schema}.{table}: DIFFERS (source {rows_a} rows md5 {hash_a}, "
                f"target {rows_b} rows md5 {hash_b})"
            )
        sys.stdout.flush()
    sys.exit(1 if differing else 0)


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "sample":
        sample(args[0], args[1:])
    elif command == "hash":
        hash_tables(*args)
    elif command == "keys":
        keys(*args)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
