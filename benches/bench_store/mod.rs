//! The bench store, shared by the benches: its shape and set-based seed, its copies, the release
//! binary run as a child, and PostgreSQL's log read for one database's sessions.

#![allow(dead_code)] // Each bench uses its own part.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use mlflow_janitor::{DbConnection, StoreUri};

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A bench's exit: failure when a check failed or the bench could not run. `cargo bench` passes
/// `--bench` (and any filter): the benches take no options, so arguments are ignored.
pub fn exit_code(ran: BenchResult<bool>) -> std::process::ExitCode {
    match ran {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            eprintln!("bench failed: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A program of the MLflow 3.18.0 venv `.ci/run` makes (`bin/mlflow`, `bin/python`), or the one
/// the environment variable `variable` names.
pub fn mlflow_venv(program: &str, variable: &str) -> BenchResult<PathBuf> {
    let path = std::env::var_os(variable).map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/venvs/mlflow-3.18.0/bin")
                .join(program)
        },
        PathBuf::from,
    );
    if !path.is_file() {
        return Err(format!(
            "no {program} at {}: make it with schema/mlflow-venv.sh 3.18.0 \
             target/venvs/mlflow-3.18.0, or set {variable}",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// A store's shape. Run `i` (1..=`runs`) belongs to experiment `(i - 1) % experiments + 1` and
/// is the `(i - 1) / experiments`-th run of it; the last `deleted_experiments` are soft-deleted
/// with all their runs, and in the live ones every `delete_every`-th run is soft-deleted. Then
/// `extra_live_runs` more runs, live, spread over the live experiments. Every run holds
/// `metric_keys` x `steps` metric rows, a latest metric per key, `params` params and `tags` tags.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub experiments: i64,
    pub deleted_experiments: i64,
    pub runs: i64,
    pub delete_every: i64,
    pub extra_live_runs: i64,
    pub metric_keys: i64,
    pub steps: i64,
    pub params: i64,
    pub tags: i64,
    pub experiment_tags: i64,
}

impl Shape {
    /// The bench store: 50 experiments, 20,000 runs, 2,000,000 metric rows; 10 experiments and
    /// 7,200 runs soft-deleted.
    pub const BENCH: Shape = Shape {
        experiments: 50,
        deleted_experiments: 10,
        runs: 20_000,
        delete_every: 5,
        extra_live_runs: 0,
        metric_keys: 10,
        steps: 10,
        params: 3,
        tags: 3,
        experiment_tags: 2,
    };

    pub fn kept_runs(&self) -> i64 {
        let live_experiments = self.experiments - self.deleted_experiments;
        let runs_per_experiment = self.runs / self.experiments;
        live_experiments * (runs_per_experiment - runs_per_experiment / self.delete_every)
            + self.extra_live_runs
    }

    /// The tables the benches compare, with the count each must end with after a purge.
    pub fn expected_counts(&self) -> Vec<(&'static str, i64)> {
        let live_experiments = self.experiments - self.deleted_experiments;
        let kept_runs = self.kept_runs();
        vec![
            ("experiments", live_experiments),
            ("experiment_tags", live_experiments * self.experiment_tags),
            ("runs", kept_runs),
            ("metrics", kept_runs * self.metric_keys * self.steps),
            ("latest_metrics", kept_runs * self.metric_keys),
            ("params", kept_runs * self.params),
            ("tags", kept_runs * self.tags),
        ]
    }

    /// The seed, set-based, for a store made by the test harness (MLflow's schema, empty).
    pub fn seed_sql(&self) -> String {
        let Shape {
            experiments,
            deleted_experiments,
            runs,
            delete_every,
            extra_live_runs,
            metric_keys,
            steps,
            params,
            tags,
            experiment_tags,
        } = *self;
        let live_experiments = experiments - deleted_experiments;
        format!(
            r#"
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';
-- A bulk load: no foreign-key triggers (the rows are consistent by construction; needs a
-- superuser, and is only slower without one), and the indexes of the big tables built once
-- after the load rather than row by row (same definitions, restored below).
DO $$ BEGIN
    SET session_replication_role = replica;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'not a superuser: loading with foreign-key checks';
END $$;
CREATE TEMP TABLE bench_indexes (ord serial, ddl text NOT NULL);
INSERT INTO bench_indexes (ddl)
SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid))
FROM pg_constraint AS c
WHERE c.conrelid = ANY ('{{metrics,latest_metrics,params,tags}}'::regclass[])
  AND c.contype IN ('p', 'u');
INSERT INTO bench_indexes (ddl)
SELECT pg_get_indexdef(i.indexrelid)
FROM pg_index AS i
WHERE i.indrelid = ANY ('{{metrics,latest_metrics,params,tags}}'::regclass[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = i.indexrelid);
DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT c.conrelid::regclass AS tbl, c.conname FROM pg_constraint AS c
             WHERE c.conrelid = ANY ('{{metrics,latest_metrics,params,tags}}'::regclass[])
               AND c.contype IN ('p', 'u') LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tbl, r.conname);
    END LOOP;
    FOR r IN SELECT i.indexrelid::regclass AS idx FROM pg_index AS i
             WHERE i.indrelid = ANY ('{{metrics,latest_metrics,params,tags}}'::regclass[]) LOOP
        EXECUTE format('DROP INDEX %s', r.idx);
    END LOOP;
END $$;

INSERT INTO experiments
    (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time,
     workspace)
SELECT e, 'exp-' || e, 'mlflow-artifacts:/' || e,
       CASE WHEN e > {live_experiments} THEN 'deleted' ELSE 'active' END,
       1700000000000 + e,
       CASE WHEN e > {live_experiments} THEN 1710000000000 + e ELSE 1700000000000 + e END,
       'default'
FROM generate_series(1, {experiments}) AS e;
SELECT setval('experiments_experiment_id_seq', {experiments});

INSERT INTO experiment_tags (key, value, experiment_id)
SELECT 'tag_' || k, 'value ' || k, e
FROM generate_series(1, {experiments}) AS e, generate_series(1, {experiment_tags}) AS k;

INSERT INTO runs
    (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time,
     end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time)
SELECT md5('run-' || i), 'run-' || i, 'LOCAL', 'train.py', '', 'bench', 'FINISHED',
       1700000000000 + i * 1000, 1700000000000 + i * 1000 + 60000, '',
       CASE WHEN deleted THEN 'deleted' ELSE 'active' END,
       'mlflow-artifacts:/' || e || '/' || md5('run-' || i) || '/artifacts',
       e,
       CASE WHEN deleted THEN 1710000000000 + i END
FROM generate_series(1, {runs}) AS i,
     LATERAL (SELECT (i - 1) % {experiments} + 1 AS e) AS x,
     LATERAL (SELECT e > {live_experiments}
                     OR ((i - 1) / {experiments}) % {delete_every} = 0 AS deleted) AS y;

-- Live runs beyond the base store's (none in the bench store): more to keep, nothing to purge.
INSERT INTO runs
    (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time,
     end_time, source_version, lifecycle_stage, artifact_uri, experiment_id)
SELECT md5('run-' || i), 'run-' || i, 'LOCAL', 'train.py', '', 'bench', 'FINISHED',
       1700000000000 + i * 1000, 1700000000000 + i * 1000 + 60000, '', 'active',
       'mlflow-artifacts:/' || e || '/' || md5('run-' || i) || '/artifacts', e
FROM generate_series({runs} + 1, {runs} + {extra_live_runs}) AS i,
     LATERAL (SELECT (i - 1) % {live_experiments} + 1 AS e) AS x;

INSERT INTO metrics (key, value, "timestamp", run_uuid, step, is_nan)
SELECT 'metric_' || k, (k * 31 + s * 7) / 13.0, r.start_time + s * 1000, r.run_uuid, s, false
FROM runs AS r, generate_series(0, {metric_keys} - 1) AS k, generate_series(0, {steps} - 1) AS s;

INSERT INTO latest_metrics (key, value, "timestamp", step, is_nan, run_uuid)
SELECT 'metric_' || k, (k * 31 + ({steps} - 1) * 7) / 13.0, r.start_time + ({steps} - 1) * 1000,
       {steps} - 1, false, r.run_uuid
FROM runs AS r, generate_series(0, {metric_keys} - 1) AS k;

INSERT INTO params (key, value, run_uuid)
SELECT 'param_' || p, 'value ' || p, r.run_uuid
FROM runs AS r, generate_series(1, {params}) AS p;

INSERT INTO tags (key, value, run_uuid)
SELECT 'mlflow.tag_' || t, 'value ' || t, r.run_uuid
FROM runs AS r, generate_series(1, {tags}) AS t;

DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT ddl FROM bench_indexes ORDER BY ord LOOP
        EXECUTE r.ddl;
    END LOOP;
END $$;
DROP TABLE bench_indexes;
RESET session_replication_role;
"#
        )
    }
}

impl Shape {
    /// The same rows as [`Shape::seed_sql`], through the library's portable inserts: for the
    /// MySQL and SQLite stores of the test harness, which that PostgreSQL script cannot seed.
    pub fn seed_rows(&self, conn: &mut DbConnection) -> BenchResult<()> {
        use mlflow_janitor::store::rows::{insert_rows, ColumnDef, Kind, TableColumns, Value};
        let table = |name: &str, columns: &[(&str, Kind)]| TableColumns {
            table: name.to_owned(),
            columns: columns
                .iter()
                .map(|(column, kind)| ColumnDef {
                    name: (*column).to_owned(),
                    kind: *kind,
                    nullable: true,
                })
                .collect(),
        };
        let text = |s: String| Value::Text(s);
        let (int, double) = (Value::Int, Value::Double);
        let live_experiments = self.experiments - self.deleted_experiments;
        let experiments = table(
            "experiments",
            &[
                ("experiment_id", Kind::Integer),
                ("name", Kind::Text),
                ("artifact_location", Kind::Text),
                ("lifecycle_stage", Kind::Text),
                ("creation_time", Kind::BigInt),
                ("last_update_time", Kind::BigInt),
                ("workspace", Kind::Text),
            ],
        );
        let rows: Vec<Vec<Value>> = (1..=self.experiments)
            .map(|e| {
                let deleted = e > live_experiments;
                vec![
                    int(e),
                    text(format!("exp-{e}")),
                    text(format!("mlflow-artifacts:/{e}")),
                    text((if deleted { "deleted" } else { "active" }).to_owned()),
                    int(1_700_000_000_000 + e),
                    int(if deleted { 1_710_000_000_000 } else { 1_700_000_000_000 } + e),
                    text("default".to_owned()),
                ]
            })
            .collect();
        insert_rows(conn, &experiments, &rows)?;
        let experiment_tags = table(
            "experiment_tags",
            &[("key", Kind::Text), ("value", Kind::Text), ("experiment_id", Kind::Integer)],
        );
        let rows: Vec<Vec<Value>> = (1..=self.experiments)
            .flat_map(|e| {
                (1..=self.experiment_tags).map(move |k| {
                    vec![text(format!("tag_{k}")), text(format!("value {k}")), int(e)]
                })
            })
            .collect();
        insert_rows(conn, &experiment_tags, &rows)?;

        let runs = table(
            "runs",
            &[
                ("run_uuid", Kind::Text),
                ("name", Kind::Text),
                ("source_type", Kind::Text),
                ("source_name", Kind::Text),
                ("entry_point_name", Kind::Text),
                ("user_id", Kind::Text),
                ("status", Kind::Text),
                ("start_time", Kind::BigInt),
                ("end_time", Kind::BigInt),
                ("source_version", Kind::Text),
                ("lifecycle_stage", Kind::Text),
                ("artifact_uri", Kind::Text),
                ("experiment_id", Kind::Integer),
                ("deleted_time", Kind::BigInt),
            ],
        );
        let metrics = table(
            "metrics",
            &[
                ("key", Kind::Text),
                ("value", Kind::Double),
                ("timestamp", Kind::BigInt),
                ("run_uuid", Kind::Text),
                ("step", Kind::BigInt),
                ("is_nan", Kind::Bool),
            ],
        );
        let latest_metrics = table(
            "latest_metrics",
            &[
                ("key", Kind::Text),
                ("value", Kind::Double),
                ("timestamp", Kind::BigInt),
                ("step", Kind::BigInt),
                ("is_nan", Kind::Bool),
                ("run_uuid", Kind::Text),
            ],
        );
        let key_values = |name: &str| {
            table(name, &[("key", Kind::Text), ("value", Kind::Text), ("run_uuid", Kind::Text)])
        };
        let (params, tags) = (key_values("params"), key_values("tags"));
        // A few hundred runs at a time: every table's rows of them, then the next.
        let all: Vec<i64> = (1..=self.runs + self.extra_live_runs).collect();
        for chunk in all.chunks(500) {
            let mut rows = [Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()];
            for &i in chunk {
                let extra = i > self.runs;
                let e = if extra {
                    (i - 1) % live_experiments + 1
                } else {
                    (i - 1) % self.experiments + 1
                };
                let deleted = !extra
                    && (e > live_experiments
                        || ((i - 1) / self.experiments) % self.delete_every == 0);
                let run = format!("{:032x}", i);
                let start = 1_700_000_000_000 + i * 1000;
                rows[0].push(vec![
                    text(run.clone()),
                    text(format!("run-{i}")),
                    text("LOCAL".to_owned()),
                    text("train.py".to_owned()),
                    text(String::new()),
                    text("bench".to_owned()),
                    text("FINISHED".to_owned()),
                    int(start),
                    int(start + 60_000),
                    text(String::new()),
                    text((if deleted { "deleted" } else { "active" }).to_owned()),
                    text(format!("mlflow-artifacts:/{e}/{run}/artifacts")),
                    int(e),
                    if deleted { int(1_710_000_000_000 + i) } else { Value::Null },
                ]);
                for k in 0..self.metric_keys {
                    let value = |s: i64| double((k * 31 + s * 7) as f64 / 13.0);
                    for s in 0..self.steps {
                        rows[1].push(vec![
                            text(format!("metric_{k}")),
                            value(s),
                            int(start + s * 1000),
                            text(run.clone()),
                            int(s),
                            Value::Bool(false),
                        ]);
                    }
                    let last = self.steps - 1;
                    rows[2].push(vec![
                        text(format!("metric_{k}")),
                        value(last),
                        int(start + last * 1000),
                        int(last),
                        Value::Bool(false),
                        text(run.clone()),
                    ]);
                }
                for p in 1..=self.params {
                    rows[3].push(vec![
                        text(format!("param_{p}")),
                        text(format!("value {p}")),
                        text(run.clone()),
                    ]);
                }
                for t in 1..=self.tags {
                    rows[4].push(vec![
                        text(format!("mlflow.tag_{t}")),
                        text(format!("value {t}")),
                        text(run.clone()),
                    ]);
                }
            }
            conn.transaction(|conn| {
                for (columns, rows) in
                    [&runs, &metrics, &latest_metrics, &params, &tags].into_iter().zip(&rows)
                {
                    insert_rows(conn, columns, rows)?;
                }
                diesel::QueryResult::Ok(())
            })?;
        }
        Ok(())
    }
}

/// Counts the rows of the tables [`Shape::expected_counts`] names.
pub fn counts(conn: &mut DbConnection) -> BenchResult<Vec<(&'static str, i64)>> {
    Shape::BENCH
        .expected_counts()
        .into_iter()
        .map(|(table, _)| {
            let count: Count =
                diesel::sql_query(format!("SELECT count(*) AS n FROM {table}")).get_result(conn)?;
            Ok((table, count.n))
        })
        .collect()
}

/// Flushes the dirty buffers left by the copy or the previous contender, so that each contender
/// starts from the same state instead of paying for a checkpoint it did not cause.
pub fn checkpoint(server: &StoreUri) {
    let done = server
        .with_database("postgres")
        .establish()
        .map_err(|e| e.to_string())
        .and_then(|mut admin| admin.batch_execute("CHECKPOINT").map_err(|e| e.to_string()));
    if let Err(err) = done {
        eprintln!("CHECKPOINT failed (timings may include one): {err}");
    }
}

pub fn mean(values: &[Duration]) -> Duration {
    values.iter().sum::<Duration>() / values.len().max(1) as u32
}

#[derive(QueryableByName)]
pub struct Count {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// Copies of the seeded store, dropped when this goes out of scope (a panic included).
pub struct Copies {
    pub server: StoreUri,
    pub names: Vec<String>,
}

impl Copies {
    pub fn create(&mut self, template: &str, suffix: &str) -> BenchResult<StoreUri> {
        let name = format!("{template}_{suffix}");
        let mut admin = self.server.with_database("postgres").establish()?;
        // The seeding session (or an autovacuum worker) may linger a moment after it is closed:
        // a template must have no other session.
        for attempt in 0.. {
            // FILE_COPY: a plain file copy, quicker than WAL_LOG for a store this size, and
            // without a gigabyte of WAL whose checkpoints would land in the contenders' time.
            match diesel::sql_query(format!(
                "CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY"
            ))
            .execute(&mut admin)
            {
                Ok(_) => break,
                Err(e) if attempt < 100 && e.to_string().contains("being accessed") => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.names.push(name.clone());
        Ok(self.server.with_database(&name))
    }

    pub fn drop_all(&mut self) {
        let mut admin = match self.server.with_database("postgres").establish() {
            Ok(admin) => admin,
            Err(err) => {
                eprintln!("could not drop the copies {:?}: {err}", self.names);
                return;
            }
        };
        for name in self.names.drain(..) {
            if let Err(err) =
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
            {
                eprintln!("could not drop the copy {name}: {err}");
            }
        }
    }
}

impl Drop for Copies {
    fn drop(&mut self) {
        self.drop_all();
    }
}

/// The release binary: Cargo builds it for benches and says where; otherwise build it.
pub fn janitor_binary() -> BenchResult<PathBuf> {
    if let Some(path) = option_env!("CARGO_BIN_EXE_mlflow-janitor") {
        return Ok(PathBuf::from(path));
    }
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["build", "--release", "--bin", "mlflow-janitor"])
        .current_dir(&manifest_dir)
        .status()?;
    if !status.success() {
        return Err(format!("cargo build --release failed: {status}").into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| manifest_dir.join("target"), PathBuf::from);
    Ok(target.join("release").join("mlflow-janitor"))
}

pub struct JanitorRun {
    pub wall: Duration,
    /// User and system time, all its threads.
    pub cpu: Duration,
    pub max_rss_kb: i64,
    pub report: serde_json::Value,
    pub stderr: String,
}

/// Runs the janitor as a child process; its wall time runs from spawn to exit, and its peak RSS
/// comes from `wait4`, for this child alone.
pub fn run_janitor(binary: &PathBuf, uri: &StoreUri, extra: &[&str]) -> BenchResult<JanitorRun> {
    run_command(binary, &["purge", "--yes"], uri, extra)
}

/// Runs `command` (a subcommand and its flags) on the store at `uri`, its report as JSON.
pub fn run_command(
    binary: &PathBuf,
    command: &[&str],
    uri: &StoreUri,
    extra: &[&str],
) -> BenchResult<JanitorRun> {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(command)
        .args(["--backend-store-uri", uri.given(), "--output", "json"])
        .args(extra)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stderr_pipe = child.stderr.take().expect("piped");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr_pipe.read_to_string(&mut text).map(|_| text)
    });
    let mut stdout = String::new();
    child.stdout.take().expect("piped").read_to_string(&mut stdout)?;
    let stderr = stderr_reader.join().expect("the reader does not panic")?;

    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let wall = started.elapsed();
    if reaped != pid {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()).into());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!("the janitor failed (status {status:#x}):\n{stderr}\n{stdout}").into());
    }
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .map_err(|e| format!("the janitor's report is not JSON ({e}): {stdout}"))?;
    // ru_maxrss is in kilobytes on Linux.
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let cpu = time(usage.ru_utime) + time(usage.ru_stime);
    Ok(JanitorRun { wall, cpu, max_rss_kb: usage.ru_maxrss, report, stderr })
}

/// PostgreSQL's log, where the benches read what the sessions on one database did; Debian's
/// place unless `MLFLOW_JANITOR_BENCH_PG_LOG` names another. Its line prefix must hold `%d`.
const PG_LOG: &str = "/var/log/postgresql/postgresql-15-main.log";

/// What the sessions on one database leave in PostgreSQL's log from now on: the settings given
/// are set for that database alone (`ALTER DATABASE ... SET`), and its entries told apart by the
/// prefix's `user@database`.
pub struct ServerLog {
    path: PathBuf,
    offset: u64,
    database: String,
}

impl ServerLog {
    /// None when the log cannot be read here.
    pub fn start(
        server: &StoreUri,
        database: &str,
        settings: &[(&str, &str)],
    ) -> BenchResult<Option<ServerLog>> {
        let path = std::env::var_os("MLFLOW_JANITOR_BENCH_PG_LOG")
            .map_or_else(|| PathBuf::from(PG_LOG), PathBuf::from);
        let Ok(metadata) = std::fs::metadata(&path) else { return Ok(None) };
        let mut admin = server.establish()?;
        for (name, value) in settings {
            admin
                .batch_execute(&format!("ALTER DATABASE \"{database}\" SET {name} = '{value}'"))?;
        }
        Ok(Some(ServerLog { path, offset: metadata.len(), database: database.to_owned() }))
    }

    /// The database's entries since the start, each its `LOG:` text with the lines that follow
    /// it (a plan's), in order.
    pub fn entries(&self) -> BenchResult<Vec<String>> {
        use std::io::{BufRead, Seek};
        let mut log = std::fs::File::open(&self.path)?;
        log.seek(std::io::SeekFrom::Start(self.offset))?;
        let session = format!("@{} LOG:  ", self.database);
        let mut entries: Vec<String> = Vec::new();
        let mut ours = false;
        for line in std::io::BufReader::new(log).split(b'\n') {
            let line = String::from_utf8_lossy(&line?).into_owned();
            // An entry's own line starts with its time; the lines that follow it, with a tab.
            if line.starts_with('\t') {
                if let (true, Some(entry)) = (ours, entries.last_mut()) {
                    entry.push('\n');
                    entry.push_str(line.trim_start());
                }
                continue;
            }
            ours = match line.split_once(&session) {
                Some((_, logged)) => {
                    entries.push(logged.to_owned());
                    true
                }
                None => false,
            };
        }
        Ok(entries)
    }

    /// The statements sent (with `log_statement = 'all'`): `statement:` for simple queries,
    /// `execute` for prepared ones.
    pub fn statements(&self) -> BenchResult<usize> {
        let entries = self.entries()?;
        Ok(entries
            .iter()
            .filter(|e| e.starts_with("statement: ") || e.starts_with("execute "))
            .count())
    }
}
