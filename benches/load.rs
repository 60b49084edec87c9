//! `cargo bench --bench load`: does a tracking load notice the purge?
//!
//! On copies of the bench store (see `cargo bench --bench purge`), `CLIENTS` processes of
//! MLflow's own client (`benches/load/mlflow_load.py`, from the 3.18.0 venv `.ci/run` makes, or
//! `MLFLOW_JANITOR_BENCH_MLFLOW_PYTHON`) log to the store in a loop: `log_batch` of 10 metrics
//! and a param to a live run of their own, and a new run every 20 batches. Once they are warm,
//! the bench takes the calls of an idle window of `IDLE`, then runs the purge (release binary)
//! and takes the calls that started while it ran: p50 and p99 of both, side by side. All the
//! while a thread samples `pg_stat_activity` every 50 ms for a client waiting on a lock that a
//! janitor session holds (`pg_blocking_pids`). At the end every row the clients say they wrote
//! must be in the store, no call may have failed and the database may have broken no deadlock
//! (on MariaDB InnoDB logs its account of each, and the bench says where). Once per purge
//! setting: the default, `--jobs 3`, `--batch-size 100`, `--throttle 100ms`.
//!
//! Then once each on MariaDB and SQLite, with the default settings, on a store of the same shape
//! with a fifth of the runs, seeded row by row (`Shape::seed_rows`). On MariaDB the sampler reads
//! InnoDB's lock waits whose holder is the purge's session (the one holding its named lock),
//! every 150 ms, as InnoDB refreshes them no more often; on SQLite, which has no lock table, a
//! client's wait for the write lock is in its call: the longest call during the purge, less the
//! idle p50, must stay under the purge's longest batch.

mod bench_store;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bench_store::{checkpoint, janitor_binary, run_janitor, BenchResult, Copies, Shape};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double};
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::{Backend, StoreUri};

const CLIENTS: usize = 4;
const IDLE: Duration = Duration::from_secs(8);
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// InnoDB refreshes its lock tables (`INNODB_TRX`, `INNODB_LOCK_WAITS`) only when no one has read
/// them for 100 ms: read more often, they show the first sample's transactions for ever.
const INNODB_SAMPLE_EVERY: Duration = Duration::from_millis(150);
/// Longest a client may wait for a lock the purge holds.
const TARGET_LOCK_WAIT: Duration = Duration::from_millis(100);
const TARGET_P99_RATIO: f64 = 2.0;
/// A live experiment of the bench store, where the clients log.
const EXPERIMENT: &str = "1";
const SETTINGS: &[&[&str]] =
    &[&[], &["--jobs", "3"], &["--batch-size", "100"], &["--throttle", "100ms"]];
/// The store of the MariaDB and SQLite rounds: the bench store's shape with a fifth of its runs.
const OTHER_BACKENDS: Shape = Shape { runs: 4_000, ..Shape::BENCH };

fn main() -> ExitCode {
    bench_store::exit_code(run())
}

fn run() -> BenchResult<bool> {
    let janitor = janitor_binary()?;
    let python = bench_store::mlflow_venv("python", "MLFLOW_JANITOR_BENCH_MLFLOW_PYTHON")?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/load/mlflow_load.py");
    println!(
        "{CLIENTS} MLflow clients logging; idle window {IDLE:?}; lock waits sampled every \
         {SAMPLE_EVERY:?} (InnoDB's: {INNODB_SAMPLE_EVERY:?})"
    );
    // MLFLOW_JANITOR_BENCH_BACKENDS=mysql,sqlite: only those rounds (default: all three).
    let only = std::env::var("MLFLOW_JANITOR_BENCH_BACKENDS").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|b| b.trim() == name);
    let mut ok = true;
    if wanted("postgresql") {
        ok &= postgresql(&janitor, &python, &script)?;
    }
    // MariaDB and SQLite, with the default settings, on a smaller store seeded row by row.
    for (name, backend) in [("mysql", Backend::Mysql), ("sqlite", Backend::Sqlite)] {
        if !wanted(name) {
            continue;
        }
        let store = TestStore::on(backend)?;
        let started = Instant::now();
        OTHER_BACKENDS.seed_rows(&mut store.connect()?)?;
        println!(
            "\n{backend:?}: seeded {} runs ({} to purge) in {:.1} s",
            OTHER_BACKENDS.runs,
            OTHER_BACKENDS.runs - OTHER_BACKENDS.kept_runs(),
            started.elapsed().as_secs_f64()
        );
        ok &= measure(&janitor, &python, &script, store.uri(), &[])?;
    }
    Ok(ok)
}

/// The PostgreSQL rounds: one per setting, each on a fresh copy of the bench store.
fn postgresql(janitor: &PathBuf, python: &Path, script: &Path) -> BenchResult<bool> {
    let seeded = TestStore::new()?;
    {
        let mut conn = seeded.connect()?;
        conn.batch_execute(&Shape::BENCH.seed_sql())?;
        conn.batch_execute("VACUUM ANALYZE")?;
    }
    let mut copies = Copies { server: seeded.uri().clone(), names: Vec::new() };
    let mut ok = true;
    for (index, settings) in SETTINGS.iter().enumerate() {
        let copy = copies.create(&seeded.uri().database(), &format!("l{index}"))?;
        checkpoint(&copies.server);
        ok &= measure(janitor, python, script, &copy, settings)?;
        copies.drop_all();
    }
    Ok(ok)
}

/// One purge under the clients' load, with `settings`: whether no client waited on it too long,
/// none failed, and every row they wrote is there.
fn measure(
    janitor: &PathBuf,
    python: &Path,
    script: &Path,
    store: &StoreUri,
    settings: &[&str],
) -> BenchResult<bool> {
    let work = tempfile::tempdir()?;
    let stop = work.path().join("stop");
    let outs: Vec<PathBuf> =
        (0..CLIENTS).map(|i| work.path().join(format!("client-{i}"))).collect();
    let logs: Vec<PathBuf> = outs.iter().map(|out| out.with_extension("log")).collect();
    let clients: Vec<Child> = outs
        .iter()
        .zip(&logs)
        .map(|(out, log)| {
            Command::new(python)
                .arg(script)
                .args([&mlflow_uri(store), EXPERIMENT])
                .arg(&stop)
                .arg(out)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log)?)
                .spawn()
        })
        .collect::<Result<_, std::io::Error>>()?;
    // Whatever fails from here, the clients stop.
    struct Stop<'a>(&'a Path);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0, "");
        }
    }
    let stopping = Stop(&stop);
    let deadlocks_before = deadlocks(store)?;
    let deadlock_log = match store.backend() {
        Backend::Mysql => Some(log_innodb_deadlocks(store)?),
        _ => None,
    };
    // Warm: each client has made its run and logged to it.
    let warming = Instant::now();
    while !outs.iter().all(|out| std::fs::read_to_string(out).is_ok_and(|t| t.lines().count() > 5))
    {
        if warming.elapsed() > Duration::from_secs(120) {
            return Err("the clients did not start logging within 2 minutes".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let idle = (now(), {
        std::thread::sleep(IDLE);
        now()
    });

    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (sampling, store) = (sampling.clone(), store.clone());
        std::thread::spawn(move || sample_lock_waits(&store, &sampling).map_err(|e| e.to_string()))
    };
    let purge_started = now();
    let purge = run_janitor(janitor, store, settings)?;
    let purge_ended = now();
    sampling.store(false, Ordering::Relaxed);
    let waits = sampler.join().map_err(|_| "the sampler panicked")??;

    drop(stopping);
    let mut calls = Vec::new();
    let mut written = Written::default();
    for (mut client, out) in clients.into_iter().zip(&outs) {
        let status = client.wait()?;
        let text = std::fs::read_to_string(out)?;
        if !status.success() {
            return Err(format!("a client failed ({status}): {text}").into());
        }
        written.add(&text, &mut calls)?;
    }
    let present = written.present(store)?;
    let deadlocks = deadlocks(store)? - deadlocks_before;
    let during: Vec<f64> =
        calls.iter().filter(|c| c.0 >= purge_started && c.0 <= purge_ended).map(|c| c.1).collect();
    let before: Vec<f64> =
        calls.iter().filter(|c| c.0 >= idle.0 && c.0 <= idle.1).map(|c| c.1).collect();
    let (p50_idle, p99_idle) = (percentile(&before, 0.5), percentile(&before, 0.99));
    let (p50_purge, p99_purge) = (percentile(&during, 0.5), percentile(&during, 0.99));
    let ratio = p99_purge / p99_idle;
    let label = if settings.is_empty() { "defaults".to_owned() } else { settings.join(" ") };
    let backend = store.backend();
    // SQLite has no lock table: a client's wait for the write lock is in its call's time, and
    // must stay under one of the purge's batches (each holds the write lock once).
    let longest_batch = purge
        .stderr
        .lines()
        .filter(|line| line.contains("batch done"))
        .filter_map(|line| {
            line.split("duration_ms=").nth(1)?.split_whitespace().next()?.parse().ok()
        })
        .max()
        .map_or(Duration::ZERO, Duration::from_millis);
    let longest_call = Duration::from_secs_f64(during.iter().copied().fold(0.0, f64::max));
    let lock_ok = match backend {
        Backend::Sqlite => {
            longest_call.saturating_sub(Duration::from_secs_f64(p50_idle)) < longest_batch
        }
        _ => waits.longest < TARGET_LOCK_WAIT,
    };
    let rows_ok = present == (written.metrics, written.params) && written.errors == 0;
    println!(
        "\npurge ({backend:?}) with {label}: {:.2} s, {} entities",
        purge.wall.as_secs_f64(),
        purge.report["entities"]
    );
    println!(
        "  client calls idle:   {:>5}  p50 {:>6.1} ms  p99 {:>6.1} ms",
        before.len(),
        p50_idle * 1e3,
        p99_idle * 1e3
    );
    println!(
        "  client calls purge:  {:>5}  p50 {:>6.1} ms  p99 {:>6.1} ms  p99 ratio {ratio:.2} \
         (aim <= {TARGET_P99_RATIO})",
        during.len(),
        p50_purge * 1e3,
        p99_purge * 1e3
    );
    let missed = if lock_ok { "" } else { "  MISSED" };
    match backend {
        Backend::Sqlite => println!(
            "  write-lock wait: longest client call during the purge {:.1} ms (idle: p50 {:.1} ms, \
             longest {:.1} ms), longest purge batch {:?} (target: the wait under one batch){missed}",
            longest_call.as_secs_f64() * 1e3,
            p50_idle * 1e3,
            before.iter().copied().fold(0.0, f64::max) * 1e3,
            longest_batch
        ),
        _ => println!(
            "  lock waits on the purge: {} samples of {}, longest {:?} (target < \
             {TARGET_LOCK_WAIT:?}){missed}",
            waits.waiting, waits.samples, waits.longest
        ),
    }
    println!(
        "  clients wrote {} runs, {} metric rows, {} params, {} errors; in the store: {} metric \
         rows, {} params{}",
        written.runs.len(),
        written.metrics,
        written.params,
        written.errors,
        present.0,
        present.1,
        if rows_ok { "" } else { "  <-- MISMATCH" }
    );
    println!(
        "  deadlocks the database broke: {deadlocks} (target 0){}",
        if deadlocks == 0 { "" } else { "  MISSED" }
    );
    if written.errors > 0 {
        for log in &logs {
            for line in std::fs::read_to_string(log)?.lines().filter(|l| l.contains(": ")).take(3) {
                println!("  client error: {line}");
            }
        }
    }
    if let Some(log) = deadlock_log.filter(|_| deadlocks > 0) {
        println!("  InnoDB's account of each deadlock is in the server's log, {log}");
    }
    Ok(lock_ok && rows_ok && deadlocks == 0)
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn percentile(values: &[f64], at: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get(((sorted.len() as f64 * at) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

/// What the clients said they wrote.
#[derive(Default)]
struct Written {
    runs: Vec<String>,
    metrics: i64,
    params: i64,
    errors: i64,
}

impl Written {
    /// Reads a client's file: its calls (start, seconds) into `calls`, its totals into this.
    fn add(&mut self, text: &str, calls: &mut Vec<(f64, f64)>) -> BenchResult<()> {
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["written", _runs, metrics, params, errors] => {
                    self.metrics += metrics.parse::<i64>()?;
                    self.params += params.parse::<i64>()?;
                    self.errors += errors.parse::<i64>()?;
                }
                ["runs", runs @ ..] => self.runs.extend(runs.iter().map(|r| r.to_string())),
                [start, seconds, _kind] => calls.push((start.parse()?, seconds.parse()?)),
                _ => return Err(format!("a client's line: {line}").into()),
            }
        }
        Ok(())
    }

    /// The clients' metric rows and params in the store.
    fn present(&self, store: &StoreUri) -> BenchResult<(i64, i64)> {
        use mlflow_janitor::schema::{metrics, params};
        let mut conn = store.establish()?;
        let metrics = metrics::table
            .filter(metrics::run_uuid.eq_any(&self.runs))
            .count()
            .get_result(&mut conn)?;
        let params = params::table
            .filter(params::run_uuid.eq_any(&self.runs))
            .count()
            .get_result(&mut conn)?;
        Ok((metrics, params))
    }
}

/// Lock waits of the clients on the purge, as sampled.
struct Waits {
    samples: u64,
    /// Samples in which a client waited on a janitor session.
    waiting: u64,
    /// The longest such wait seen (from the waiting statement's start).
    longest: Duration,
}

/// How many deadlocks the store's database server has broken so far: PostgreSQL's count for the
/// store's database, InnoDB's for the whole server (nothing else runs during the bench). SQLite
/// has none: a writer waits for the file's lock instead.
fn deadlocks(store: &StoreUri) -> BenchResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    let query = match store.backend() {
        Backend::Postgresql => {
            "SELECT deadlocks AS count FROM pg_stat_database WHERE datname = current_database()"
        }
        Backend::Mysql => {
            "SELECT CAST(VARIABLE_VALUE AS SIGNED) AS count FROM information_schema.GLOBAL_STATUS
             WHERE VARIABLE_NAME = 'INNODB_DEADLOCKS'"
        }
        Backend::Sqlite => return Ok(0),
    };
    Ok(diesel::sql_query(query).get_result::<Count>(&mut store.establish()?)?.count)
}

/// Has InnoDB write each deadlock it breaks, both transactions and their locks, to the server's
/// error log (`SHOW ENGINE INNODB STATUS` keeps only the latest, and is not a statement the
/// client library can prepare); returns the log's path.
fn log_innodb_deadlocks(store: &StoreUri) -> BenchResult<String> {
    #[derive(QueryableByName)]
    struct Log {
        #[diesel(sql_type = diesel::sql_types::Text)]
        path: String,
    }
    let mut conn = store.establish()?;
    conn.batch_execute("SET GLOBAL innodb_print_all_deadlocks = ON")?;
    Ok(diesel::sql_query("SELECT @@log_error AS path").get_result::<Log>(&mut conn)?.path)
}

/// The store's URI as MLflow's client takes it.
fn mlflow_uri(store: &StoreUri) -> String {
    store.given().replacen("mysql://", "mysql+pymysql://", 1)
}

/// Samples the clients waiting on a lock the purge holds: on PostgreSQL every `SAMPLE_EVERY`
/// from `pg_stat_activity` and `pg_blocking_pids`; on MariaDB every `INNODB_SAMPLE_EVERY` from
/// InnoDB's lock waits, whose holder is the session holding the purge's named lock. SQLite has
/// none to sample.
fn sample_lock_waits(store: &StoreUri, sampling: &AtomicBool) -> BenchResult<Waits> {
    #[derive(QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = Double)]
        seconds: f64,
    }
    let mut waits = Waits { samples: 0, waiting: 0, longest: Duration::ZERO };
    let query = match store.backend() {
        Backend::Postgresql => {
            "SELECT EXTRACT(EPOCH FROM clock_timestamp() - client.query_start)::float8 AS seconds
             FROM pg_stat_activity AS client
             WHERE client.datname = current_database() AND client.wait_event_type = 'Lock'
               AND client.application_name <> 'mlflow-janitor'
               AND EXISTS (SELECT 1 FROM pg_stat_activity AS purge
                           WHERE purge.pid = ANY (pg_blocking_pids(client.pid))
                             AND purge.application_name = 'mlflow-janitor')"
                .to_owned()
        }
        Backend::Mysql => {
            let lock: String =
                format!("mlflow-janitor purge {}", store.database()).chars().take(64).collect();
            format!(
                "SELECT CAST(TIMESTAMPDIFF(MICROSECOND, client.trx_wait_started, NOW(6)) / 1e6
                             AS DOUBLE) AS seconds
                 FROM information_schema.INNODB_LOCK_WAITS AS w
                 JOIN information_schema.INNODB_TRX AS client ON client.trx_id = w.requesting_trx_id
                 JOIN information_schema.INNODB_TRX AS holder ON holder.trx_id = w.blocking_trx_id
                 WHERE holder.trx_mysql_thread_id = IS_USED_LOCK('{lock}')"
            )
        }
        Backend::Sqlite => return Ok(waits),
    };
    let mut conn = store.establish()?;
    while sampling.load(Ordering::Relaxed) {
        let waiting: Vec<Waiting> = diesel::sql_query(&query).load(&mut conn)?;
        waits.samples += 1;
        if !waiting.is_empty() {
            waits.waiting += 1;
        }
        for wait in waiting {
            waits.longest = waits.longest.max(Duration::from_secs_f64(wait.seconds.max(0.0)));
        }
        std::thread::sleep(match store.backend() {
            Backend::Mysql => INNODB_SAMPLE_EVERY,
            _ => SAMPLE_EVERY,
        });
    }
    Ok(waits)
}
