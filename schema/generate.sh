#!/usr/bin/env bash
# Regenerates the schema snapshots, and the diesel mirror, from stores built by the real MLflow:
#   schema/{postgres,mysql,sqlite}/<version>_<revision>/up.sql
#       DDL + the rows MLflow's schema creation leaves in alembic_version (and workspaces, where
#       that table exists), nothing else, for each MLflow version below; embedded in the binary
#       by KNOWN_SCHEMAS (src/store/revision.rs): `init` and the tests load them, and `reset` empties
#       the tables their `CREATE TABLE` lines name. Each file is sent as one multi-statement
#       string (diesel's batch_execute): no client meta-commands.
#   src/schema.rs
#       `diesel print-schema` of the latest version's PostgreSQL store, as diesel.toml configures it
# Each file is checked before it is written: loaded into a new empty database, its tables,
# columns, keys, indexes, triggers and rows must match those of the store MLflow made.
#
# Needs: python3 (one venv per version, made on first use by schema/mlflow-venv.sh under
# ${MLFLOW_VENV_DIR:-target/venvs}/mlflow-<version>), and
#   PostgreSQL server (PGHOST/PGPORT/PGUSER, default 127.0.0.1:5432 postgres), psql and pg_dump
#       of the server's major version;
#   MySQL or MariaDB server (MYSQL_HOST/MYSQL_PORT/MYSQL_USER, default 127.0.0.1:3306 root, no
#       password), the mariadb and mariadb-dump clients (the snapshots are made with MariaDB 10.11);
#   sqlite3;
#   diesel_cli, for src/schema.rs (SCHEMA_RS=skip leaves src/schema.rs alone):
#       cargo install diesel_cli --no-default-features --features postgres
# Usage: schema/generate.sh [MLFLOW_VERSION...]   (default: all the versions below)
set -euo pipefail

all_versions=(1.30.1 2.9.2 2.16.2 2.22.1 3.0.1 3.4.0 3.10.1 3.17.2 3.18.0)
latest=3.18.0 # the one src/schema.rs mirrors

root="$(cd "$(dirname "$0")/.." && pwd)"
venvs="${MLFLOW_VENV_DIR:-$root/target/venvs}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
MYSQL_HOST="${MYSQL_HOST:-127.0.0.1}" MYSQL_PORT="${MYSQL_PORT:-3306}" MYSQL_USER="${MYSQL_USER:-root}"
prefix="mlflow_janitor_gen_$$"
work="$(mktemp -d)"

# How the version builds its schema on an empty database. From 1.30.1 to 3.10.1, `mlflow db
# upgrade` fails there (its first migration alters `metrics`, which nothing has created yet); the
# tracking store's first connection creates the initial tables and then runs the same migrations,
# but also adds experiment 0 `Default`, which is deleted again before the dump. From 3.17.2 on,
# `mlflow db upgrade` creates the initial tables itself.
builder() {
  case "$1" in
    1.* | 2.* | 3.0.* | 3.4.* | 3.10.*) echo client ;;
    *) echo upgrade ;;
  esac
}

mariadb_() { mariadb -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" "$@"; }

# Runs SQL on database $2 of backend $1, one output row a line, fields separated by '|'.
query() {
  case "$1" in
    postgres) psql -X -q -At -v ON_ERROR_STOP=1 -d "$2" -c "$3" ;;
    mysql) mariadb_ -N -B -r "$2" -e "$3" | tr '\t' '|' ;;
    sqlite) sqlite3 -bail -batch -noheader "$work/$2.db" "$3" ;;
  esac
}

create_db() {
  case "$1" in
    postgres) psql -X -q -d postgres -c "CREATE DATABASE $2" ;;
    mysql) mariadb_ -e "CREATE DATABASE $2" ;;
    sqlite) rm -f "$work/$2.db" ;;
  esac
}

drop_db() {
  case "$1" in
    postgres) psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $2 WITH (FORCE)" ;;
    mysql) mariadb_ -e "DROP DATABASE IF EXISTS $2" ;;
    sqlite) rm -f "$work/$2.db" ;;
  esac
}

cleanup() {
  local db
  for db in $(psql -X -At -d postgres -c "SELECT datname FROM pg_database WHERE starts_with(datname, '$prefix')"); do
    drop_db postgres "$db"
  done
  for db in $(mariadb_ -N -B -e "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE '${prefix//_/\\_}%'"); do
    drop_db mysql "$db"
  done
  rm -rf "$work"
}
trap cleanup EXIT

url() {
  case "$1" in
    postgres) echo "postgresql://$PGUSER@$PGHOST:$PGPORT/$2" ;;
    mysql) echo "mysql+pymysql://$MYSQL_USER@$MYSQL_HOST:$MYSQL_PORT/$2" ;;
    sqlite) echo "sqlite:///$work/$2.db" ;;
  esac
}

tables() {
  case "$1" in
    postgres) query "$1" "$2" "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1" ;;
    mysql) query "$1" "$2" "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1" ;;
    sqlite) query "$1" "$2" "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY 1" ;;
  esac
}

# Everything the checks compare, one line per item: columns, constraints, indexes, triggers,
# each table's row count, and the rows of alembic_version and workspaces.
describe() {
  local backend="$1" db="$2" q t
  local -a qs
  case "$backend" in
    postgres) qs=(
      # Positions are ranks: MLflow's store keeps the slots of the columns its migrations dropped.
      "SELECT 'column', table_name, rank() OVER (PARTITION BY table_name ORDER BY ordinal_position), column_name, data_type, character_maximum_length, is_nullable, column_default, is_identity, generation_expression FROM information_schema.columns WHERE table_schema = 'public'"
      # A CHECK's IN list reads back with its casts elsewhere: compared without casts and brackets.
      "SELECT 'constraint', conrelid::regclass, conname, CASE contype WHEN 'c' THEN regexp_replace(pg_get_constraintdef(oid), '::[a-z ]+(\[\])?|[][()]', '', 'g') ELSE pg_get_constraintdef(oid) END FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
      "SELECT 'index', tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
      "SELECT 'trigger', tgrelid::regclass, tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal"
      "SELECT 'function', proname, md5(pg_get_functiondef(oid)) FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
      "SELECT 'sequence', sequencename, data_type, increment_by FROM pg_sequences WHERE schemaname = 'public'") ;;
    mysql) qs=(
      "SELECT 'column', table_name, ordinal_position, column_name, column_type, is_nullable, column_default, extra, generation_expression, collation_name FROM information_schema.columns WHERE table_schema = DATABASE()"
      "SELECT 'table', table_name, engine, table_collation FROM information_schema.tables WHERE table_schema = DATABASE()"
      "SELECT 'index', table_name, index_name, non_unique, group_concat(column_name ORDER BY seq_in_index) FROM information_schema.statistics WHERE table_schema = DATABASE() GROUP BY table_name, index_name, non_unique"
      "SELECT 'fk', k.table_name, k.constraint_name, group_concat(k.column_name ORDER BY k.ordinal_position), k.referenced_table_name, group_concat(k.referenced_column_name ORDER BY k.ordinal_position), r.update_rule, r.delete_rule FROM information_schema.key_column_usage k JOIN information_schema.referential_constraints r ON r.constraint_schema = k.table_schema AND r.constraint_name = k.constraint_name AND r.table_name = k.table_name WHERE k.table_schema = DATABASE() GROUP BY k.table_name, k.constraint_name, k.referenced_table_name, r.update_rule, r.delete_rule"
      "SELECT 'check', table_name, constraint_name, check_clause FROM information_schema.check_constraints WHERE constraint_schema = DATABASE()"
      "SELECT 'trigger', event_object_table, trigger_name, action_timing, event_manipulation, md5(action_statement) FROM information_schema.triggers WHERE trigger_schema = DATABASE()") ;;
    sqlite) qs=(
      "SELECT 'column', m.name, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk, p.hidden FROM sqlite_schema m, pragma_table_xinfo(m.name) p WHERE m.type = 'table'"
      "SELECT 'fk', m.name, f.seq, f.\"table\", f.\"from\", f.\"to\", f.on_update, f.on_delete FROM sqlite_schema m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table'"
      # Implicit indexes are numbered in the order of their constraints: named by their columns.
      "SELECT 'index', m.name, iif(i.origin = 'c', i.name, i.origin), i.\"unique\", i.partial, (SELECT group_concat(name) FROM pragma_index_info(i.name)) FROM sqlite_schema m, pragma_index_list(m.name) i WHERE m.type = 'table'"
      "SELECT 'object', type, name, tbl_name FROM sqlite_schema WHERE name NOT LIKE 'sqlite\_autoindex\_%' ESCAPE '\'") ;;
  esac
  if [ "$backend" = sqlite ]; then sorted_ddl sqlite "$work/$db.db" | sed 's/^/ddl|/'; fi
  for t in $(tables "$backend" "$db"); do
    qs+=("SELECT 'rows', '$t', count(*) FROM $(ident "$backend" "$t")")
  done
  qs+=("SELECT 'alembic_version', version_num FROM alembic_version")
  if has_table "$backend" "$db" workspaces; then qs+=("SELECT 'workspaces', w.* FROM workspaces w"); fi
  for q in "${qs[@]}"; do
    query "$backend" "$db" "$q"
  done
}

ident() {
  case "$1" in
    mysql) echo "\`$2\`" ;;
    *) echo "\"$2\"" ;;
  esac
}

has_table() {
  tables "$1" "$2" | grep -x "$3" >/dev/null
}

# Deletes the rows that the client's first connection adds (experiment 0 `Default`), i.e. those
# of every table but alembic_version and workspaces.
delete_rows() {
  local backend="$1" db="$2" t n
  for t in $(tables "$backend" "$db"); do
    case "$t" in alembic_version | workspaces) continue ;; esac
    n="$(query "$backend" "$db" "SELECT count(*) FROM $(ident "$backend" "$t")")"
    [ "$n" = 0 ] && continue
    echo "  $backend: deleting $n row(s) of $t" >&2
    case "$backend" in
      postgres) query "$backend" "$db" "SET session_replication_role = replica; DELETE FROM $(ident "$backend" "$t")" ;;
      mysql) query "$backend" "$db" "SET FOREIGN_KEY_CHECKS = 0; DELETE FROM $(ident "$backend" "$t")" ;;
      sqlite) query "$backend" "$db" "DELETE FROM $(ident "$backend" "$t")" ;;
    esac
  done
}

# MLflow creates a table's indexes, and on SQLite the constraints of the tables its migrations
# rebuild, in an order that changes from run to run (SQLAlchemy keeps them in sets). So that a
# rerun writes the same files, the snapshots list them sorted, as pg_dump does by itself:
#   sorted_ddl mysql <dump   a CREATE TABLE's keys and constraints (after its columns) by kind and text
#   sorted_ddl sqlite FILE   FILE's tables by name, each followed by its indexes and triggers by
#                            name; a CREATE TABLE's trailing constraints by kind and text
sorted_ddl() {
  python3 - "$@" 3<&0 <<'PY'
import os, re, sqlite3, sys

def sort_clauses(lines, kind, joint):
    """Sorts clause lines (PRIMARY KEY first), each ended by `joint` but the last."""
    lines = sorted((l.rstrip().rstrip(",") for l in lines), key=lambda l: (kind(l), l))
    return [l + joint for l in lines[:-1]] + lines[-1:]

def mysql(text):
    out, body = [], None
    kinds = ("PRIMARY KEY", "UNIQUE KEY", "KEY", "FULLTEXT KEY", "SPATIAL KEY")
    kind = lambda l: next((i for i, k in enumerate(kinds) if l.lstrip().startswith(k)),
                          len(kinds) + ("FOREIGN KEY" not in l))
    for line in text.split("\n"):
        if line.startswith("CREATE TABLE "):
            out.append(line)
            body = []
        elif body is not None and line.startswith(")"):
            columns = [l for l in body if l.startswith("  `")]
            clauses = [l for l in body if not l.startswith("  `")]
            assert body == columns + clauses, body
            if clauses:
                columns = [c if c.endswith(",") else c + "," for c in columns]
                clauses = sort_clauses(clauses, kind, ",")
            out += columns + clauses + [line]
            body = None
        elif body is not None:
            body.append(line)
        else:
            out.append(line)
    return "\n".join(out)

CLAUSE = re.compile(r"\s+(CONSTRAINT|PRIMARY KEY|FOREIGN KEY|UNIQUE|CHECK)\b")

def sqlite_table(sql):
    lines = sql.split("\n")
    start = len(lines) - 1
    while start > 1 and CLAUSE.match(lines[start - 1]):
        start -= 1
    kind = lambda l: 0 if "PRIMARY KEY" in l.split("(")[0] else 1
    if start < len(lines) - 1:
        lines[start:-1] = sort_clauses(lines[start:-1], kind, ", ")
    return "\n".join(lines)

def sqlite(path):
    db = sqlite3.connect(path)
    rows = db.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema"
        " WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").fetchall()
    order = {"table": 0, "index": 1, "trigger": 2}
    rows.sort(key=lambda r: (r[2], order[r[0]], r[1]))
    return "".join((sqlite_table(sql) if t == "table" else sql) + ";\n" for t, _, _, sql in rows)

if sys.argv[1] == "mysql":
    sys.stdout.write(mysql(os.fdopen(3).read()))
else:
    sys.stdout.write(sqlite(sys.argv[2]))
PY
}

# Prints the snapshot of store $2 of backend $1; $3 is its header line.
dump() {
  local backend="$1" db="$2" data
  echo "$3"
  case "$backend" in
    postgres)
      # \restrict lines are psql meta-commands (pg_dump >= 15.14); the snapshot is loaded without psql.
      pg_dump --schema-only --no-owner --no-privileges --no-comments "$db" | grep -v -e '^\\restrict' -e '^\\unrestrict' -e '^-- Dumped'
      pg_dump --data-only --inserts --no-owner --table=alembic_version --table=workspaces "$db" \
        | grep -v -e '^\\restrict' -e '^\\unrestrict' -e '^-- Dumped' -e '^SET ' -e "^SELECT pg_catalog.set_config"
      ;;
    mysql)
      # Tables come in name order, so foreign keys may name tables defined further down.
      echo "SET FOREIGN_KEY_CHECKS=0;"
      # Drops the dump's session save/restore comments, its sandbox-mode line (a client
      # command) and the tables' AUTO_INCREMENT counters.
      mariadb-dump -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" --no-data --compact --skip-set-charset \
        --skip-triggers --skip-tz-utc "$db" \
        | grep -v -E -e '^/\*![0-9]+ SET .*\*/ ?;$' -e '^/\*M!999999\\- enable the sandbox mode \*/' \
        | sed -E 's/ AUTO_INCREMENT=[0-9]+//' | sorted_ddl mysql
      # mariadb-dump writes triggers between DELIMITER commands, with DEFINER; rebuilt without.
      query mysql "$db" "SELECT concat('CREATE TRIGGER ', trigger_name, ' ', action_timing, ' ', event_manipulation,
          ' ON ', event_object_table, ' FOR EACH ROW ', action_statement, ';')
        FROM information_schema.triggers WHERE trigger_schema = DATABASE() ORDER BY event_object_table, action_order"
      data=(alembic_version)
      if has_table mysql "$db" workspaces; then data+=(workspaces); fi
      mariadb-dump -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" --no-create-info --compact --skip-extended-insert \
        --skip-triggers --skip-tz-utc "$db" "${data[@]}" | grep -v -e '^/\*M!999999\\- enable the sandbox mode \*/'
      echo "SET FOREIGN_KEY_CHECKS=1;"
      ;;
    sqlite)
      sorted_ddl sqlite "$work/$db.db"
      sqlite3 "$work/$db.db" '.mode insert alembic_version' 'SELECT * FROM alembic_version'
      if has_table sqlite "$db" workspaces; then
        sqlite3 "$work/$db.db" '.mode insert workspaces' 'SELECT * FROM workspaces'
      fi
      ;;
  esac | cat -s
}

# Loads snapshot $3 into the empty database $2 of backend $1 as diesel's batch_execute would:
# the whole file at once (the mariadb client's delimiter is set to a string the file lacks, so
# it sends one multi-statement query, as diesel does; a trigger body holds semicolons).
load() {
  case "$1" in
    postgres) psql -X -q -v ON_ERROR_STOP=1 -d "$2" -f "$3" >/dev/null ;;
    mysql) mariadb_ --delimiter='#%end-of-snapshot%#' "$2" <"$3" ;;
    sqlite) sqlite3 -bail "$work/$2.db" <"$3" ;;
  esac
}

# Fails if the snapshot holds anything that a multi-statement string cannot, or leaks the name of
# the database it was dumped from.
lint() {
  local file="$1" db="$2"
  # shellcheck disable=SC1003 # '^\\' is a line that starts with a backslash
  if grep -n -E -e '^\\' -e '^\.' -e 'DELIMITER' -e 'LOCK TABLES' -e 'DEFINER' -e 'AUTO_INCREMENT=' \
    -e '^/\*!' -e "$db" "$file"; then
    echo "$file: the lines above cannot be sent as one multi-statement string" >&2
    exit 1
  fi
}

generate() {
  local version="$1" venv="$venvs/mlflow-$1" how backend src chk revision out label
  local vtag="${version//./_}"
  "$root/schema/mlflow-venv.sh" "$version" "$venv"
  case "$(builder "$version")" in
    upgrade) how="\`mlflow db upgrade\`" ;;
    client) how="the tracking client's first connection, experiment 0 deleted" ;;
  esac
  for backend in postgres mysql sqlite; do
    src="${prefix}_${vtag}_src" chk="${prefix}_${vtag}_chk"
    create_db "$backend" "$src"
    case "$(builder "$version")" in
      upgrade)
        "$venv/bin/mlflow" db upgrade "$(url "$backend" "$src")" >"$work/log" 2>&1 \
          || { tail -20 "$work/log" >&2; exit 1; }
        ;;
      client)
        (cd "$work" && "$venv/bin/python" -c '
import sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.tracking.MlflowClient().search_experiments()
' "$(url "$backend" "$src")") >"$work/log" 2>&1 || { tail -20 "$work/log" >&2; exit 1; }
        ;;
    esac
    delete_rows "$backend" "$src"

    revision="$(query "$backend" "$src" 'SELECT version_num FROM alembic_version')"
    out="$root/schema/$backend/${version}_$revision/up.sql"
    case "$backend" in
      postgres) label="" ;; # the header the 3.17.2 snapshot (hashed by the tests) was made with
      mysql) label="MySQL " ;;
      sqlite) label="SQLite " ;;
    esac
    dump "$backend" "$src" "-- MLflow $version ${label}store as built by $how; generated by schema/generate.sh, do not edit." >"$work/up.sql"
    lint "$work/up.sql" "$src"

    create_db "$backend" "$chk"
    load "$backend" "$chk" "$work/up.sql"
    if ! diff <(describe "$backend" "$src" | sort) <(describe "$backend" "$chk" | sort) >&2; then
      echo "$version $backend: the snapshot loads into a store unlike MLflow's (< MLflow's, > loaded)" >&2
      exit 1
    fi

    mkdir -p "$(dirname "$out")"
    mv "$work/up.sql" "$out"
    echo "wrote $out ($(tables "$backend" "$src" | wc -l) tables)" >&2

    if [ "$version" = "$latest" ] && [ "$backend" = postgres ] && [ "${SCHEMA_RS:-}" != skip ]; then
      # diesel.toml (print_schema) says how; run from the crate root so diesel finds it.
      (cd "$root" && diesel print-schema --database-url "$(url postgres "$src")") >"$work/schema.rs"
      mv "$work/schema.rs" "$root/src/schema.rs"
      echo "wrote src/schema.rs" >&2
    fi
    drop_db "$backend" "$src"
    drop_db "$backend" "$chk"
  done
}

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=("${all_versions[@]}")
for version in "${versions[@]}"; do
  generate "$version"
done
