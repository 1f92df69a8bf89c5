"""psycopg against a running Commons node's PostgreSQL listener.

Usage: pg_client.py HOST PORT PASSWORD — prints one JSON object with what each check saw;
tests/pg_clients.rs asserts on it. Needs psycopg 3 (`pip install "psycopg[binary]"`).
"""

import json
import sys
import threading
import time

import psycopg


def main():
    host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    out = {}
    conn = psycopg.connect(host=host, port=port, user="commons", password=password,
                           dbname="commons", autocommit=True)
    out["backend_pid"] = conn.info.backend_pid
    with conn.cursor() as cur:
        # Parameterized queries go through the extended protocol (server-side binding).
        cur.execute("SELECT slug, row_count FROM datanets WHERE id = %s", (2,))
        out["param"] = cur.fetchall()
        cur.execute("SELECT id, text FROM rows WHERE datanet = %s AND id >= %s ORDER BY id",
                    (1, 3))
        out["param2"] = cur.fetchall()
        cur.execute("SELECT count(*) FROM rows")
        out["count"] = cur.fetchone()[0]
        # A join with the full-text table function.
        try:
            cur.execute("SELECT r.id, s.score > 0 FROM search('fever', 5) s "
                        "JOIN rows r ON r.id = s.row_id ORDER BY r.id")
            out["search"] = cur.fetchall()
        except psycopg.Error as e:
            out["search_error"] = [e.sqlstate, str(e).strip()]
        # Writes are refused with SQLSTATE 25006.
        try:
            cur.execute("DELETE FROM rows")
            out["delete"] = "succeeded"
        except psycopg.Error as e:
            out["delete"] = e.sqlstate
        # A query past the node's time limit is cancelled with 57014.
        t0 = time.time()
        try:
            cur.execute("SELECT count(*) FROM range(1000000000000)")
            out["timeout"] = "finished"
        except psycopg.errors.QueryCanceled as e:
            out["timeout"] = e.sqlstate
            out["timeout_message"] = str(e).strip()
        out["timeout_s"] = round(time.time() - t0, 2)
        # The connection still works.
        cur.execute("SELECT 1")
        out["after_timeout"] = cur.fetchone()[0]

        # The wire cancel request (psycopg's Connection.cancel) stops a running query.
        timer = threading.Timer(0.3, conn.cancel)
        timer.start()
        t0 = time.time()
        try:
            cur.execute("SELECT count(*) FROM range(1000000000000)")
            out["cancel"] = "finished"
        except psycopg.errors.QueryCanceled as e:
            out["cancel"] = e.sqlstate
            out["cancel_message"] = str(e).strip()
        out["cancel_s"] = round(time.time() - t0, 2)
        timer.cancel()
    conn.close()

    # A wrong password is refused.
    try:
        psycopg.connect(host=host, port=port, user="commons", password="wrong", dbname="commons")
        out["wrong_password"] = "accepted"
    except psycopg.OperationalError as e:
        out["wrong_password"] = str(e).strip()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
