"""What DBeaver and Grafana send to a PostgreSQL server, replayed with psycopg against a
running Commons node's listener.

Usage: pg_tools.py HOST PORT PASSWORD — prints one JSON object: for each named step, the rows
it returned (or the error). tests/pg_clients.rs asserts on it.

The statements are the ones those tools issue when they connect, list schemas, tables and
columns, and fill their query editors (DBeaver through pgJDBC, Grafana's PostgreSQL data
source), with parameters bound through the extended protocol as the JDBC driver does.
"""

import json
import sys

import psycopg

SEARCH_PATH = (
    "SELECT CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END "
    "FROM generate_series("
    "array_lower(string_to_array(current_setting('search_path'),','),1), "
    "array_upper(string_to_array(current_setting('search_path'),','),1)) as i, "
    "string_to_array(current_setting('search_path'),',') s"
)

STEPS = [
    # pgJDBC on connect, then DBeaver's first queries.
    ("jdbc_settings", "SET extra_float_digits = 3", None),
    ("jdbc_app_name", "SET application_name = 'DBeaver 24.3.0 - Main'", None),
    ("current_schema", "select current_schema(),session_user", None),
    ("version", "SELECT version()", None),
    ("database", "SELECT db.oid,db.datname FROM pg_catalog.pg_database db WHERE datname=%s",
     ("commons",)),
    ("namespaces",
     "SELECT n.oid,n.nspname,d.description FROM pg_catalog.pg_namespace n "
     "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 "
     "ORDER BY nspname", None),
    ("tables",
     "SELECT c.oid,c.relname,c.relkind FROM pg_catalog.pg_class c "
     "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
     "WHERE n.nspname = %s AND c.relkind in ('r','v') ORDER BY c.relname", ("public",)),
    ("columns",
     "SELECT a.attname, a.attnum, t.typname, a.attnotnull FROM pg_catalog.pg_attribute a "
     "JOIN pg_catalog.pg_class c ON a.attrelid = c.oid "
     "JOIN pg_catalog.pg_type t ON a.atttypid = t.oid "
     "WHERE c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
     ("rows",)),
    # Grafana: the health check, the table and column pickers of the query builder.
    ("grafana_health", "SELECT 1", None),
    ("grafana_tables",
     "SELECT table_name FROM information_schema.tables "
     "WHERE table_schema = 'public' ORDER BY table_name", None),
    # Grafana's PostgreSQL data source: its table picker (tables of the search path first,
    # others schema-qualified) and its column picker, as Grafana writes them.
    ("grafana_show_tables",
     "SELECT CASE WHEN quote_ident(table_schema) IN (" + SEARCH_PATH + ") "
     "THEN quote_ident(table_name) "
     "ELSE quote_ident(table_schema) || '.' || quote_ident(table_name) END AS \"table\" "
     "FROM information_schema.tables "
     "WHERE quote_ident(table_schema) NOT IN ('information_schema', 'pg_catalog', "
     "'_timescaledb_cache', '_timescaledb_catalog', '_timescaledb_internal', "
     "'_timescaledb_config', 'timescaledb_information', 'timescaledb_experimental') "
     "ORDER BY CASE WHEN quote_ident(table_schema) IN (" + SEARCH_PATH + ") "
     "THEN 0 ELSE 1 END, 1", None),
    ("grafana_schema",
     "select quote_ident(column_name) as \"column\", data_type as \"type\" "
     "from information_schema.columns where quote_ident(table_name) = 'versions'", None),
    ("grafana_columns",
     "SELECT column_name, data_type FROM information_schema.columns "
     "WHERE table_name = %s ORDER BY column_name", ("versions",)),
    # A Grafana time-series panel of contributions per day, its macros expanded as Grafana
    # expands them: $__timeGroupAlias(created_at, 1d) and $__timeFilter(created_at).
    ("grafana_timeseries",
     "SELECT floor(extract(epoch from created_at)/86400)*86400 AS \"time\", count(*) AS n "
     "FROM public.contributions "
     "WHERE created_at BETWEEN '2000-01-01T00:00:00Z' AND '2100-01-01T00:00:00Z' "
     "GROUP BY 1 ORDER BY 1", None),
]


def cell(v):
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    return str(v)


def main():
    host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    out = {}
    conn = psycopg.connect(host=host, port=port, user="commons", password=password,
                           dbname="commons", autocommit=True)
    for name, sql, params in STEPS:
        with conn.cursor() as cur:
            try:
                cur.execute(sql, params)
                rows = cur.fetchall() if cur.description else []
                out[name] = [[cell(v) for v in r] for r in rows]
            except psycopg.Error as e:
                out[name] = {"error": e.sqlstate, "message": str(e).strip()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
