//! `cargo bench --bench purge`: the janitor against hand-written set-based SQL on one large store.
//!
//! Seeds one store (50 experiments, 20,000 runs, 2,000,000 metric rows, latest metrics, params and
//! tags; 10 experiments and 7,200 runs soft-deleted), copies it once per contender and round with
//! `CREATE DATABASE ... TEMPLATE`, then runs, in two rounds:
//!
//! - D: first, on A's copy, `purge --dry-run`, timed the same way: it must count what A then
//!   deletes, step by step, and leave the copy's `n_tup_del` (and inserts, updates) as it was;
//! - A: the release binary, `mlflow-janitor purge --yes --output json` (default batch size),
//!   timed from spawn to exit, with its peak RSS from `wait4`;
//! - B: the same purge as a handful of set-based deletes in one transaction, in-process;
//! - B': B with `RETURNING *` on every delete, through `psql` (its rows received, and written
//!   to /dev/null): what the database itself needs to hand over the rows an archive holds, the
//!   floor under E. A child process, so that the rows it holds do not swell the bench's own
//!   memory, which every later child's peak RSS would include (Linux carries it across exec);
//! - C: A with `--artifacts`, every run holding one 1 KB file under a local
//!   `--artifacts-destination` (the seed's runs name `mlflow-artifacts:` locations): what the
//!   artifact side costs in time and memory (its index of every location the store names);
//! - E: A with `--archive DIR`: what writing every purged row to an archive first costs in time
//!   and memory (targets: at most 1.5 times A's time, 50 MB), and the archive's size against
//!   those rows' size in the database;
//! - F: A with `--jobs JOBS`, batches on several connections at once (targets: at most 0.75
//!   times B's time, 30 MB).
//!
//! Both copies must end with the same row counts (and the expected ones): otherwise the bench
//! exits non-zero. Every database it makes is dropped at the end, a panic included.
//!
//! The server is the one `MLFLOW_JANITOR_TEST_DATABASE_URL` names, as for the test suites.

mod bench_store;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bench_store::{
    checkpoint, counts, janitor_binary, mean, run_janitor, BenchResult, Copies, Count, ServerLog,
    Shape,
};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::{DbConnection, StoreUri};

const ROUNDS: usize = 2;

const TARGET_RATIO: f64 = 1.5;
const TARGET_RSS_MB: f64 = 50.0;
const TARGET_ARCHIVE_RATIO: f64 = 1.5;
const TARGET_ARCHIVE_RSS_MB: f64 = 50.0;
/// Contender F's `--jobs`: one batch per core of the bench machine's database server, and one
/// to have its next batch ready.
const JOBS: &str = "3";
const TARGET_JOBS_RATIO: f64 = 0.75;
const TARGET_JOBS_RSS_MB: f64 = 30.0;
const TARGET_STATEMENTS_PER_ENTITY: f64 = 0.03;

/// Contender B: the purge as set-based deletes, run in one transaction, statement by statement
/// so that each one's time can be shown. Same scope as the janitor's default: every run of a
/// soft-deleted experiment and every soft-deleted run of a live one, then the experiments.
const SQL_PURGE: &[(&str, &str)] = &[
    (
        "scope (temp table of run ids)",
        "CREATE TEMP TABLE purge_runs ON COMMIT DROP AS
         SELECT run_uuid FROM runs
         WHERE lifecycle_stage = 'deleted'
            OR experiment_id IN (SELECT experiment_id FROM experiments
                                 WHERE lifecycle_stage = 'deleted')",
    ),
    ("analyze scope", "ANALYZE purge_runs"),
    (
        "latest_metrics",
        "DELETE FROM latest_metrics WHERE run_uuid IN (SELECT run_uuid FROM purge_runs)",
    ),
    ("metrics", "DELETE FROM metrics WHERE run_uuid IN (SELECT run_uuid FROM purge_runs)"),
    ("params", "DELETE FROM params WHERE run_uuid IN (SELECT run_uuid FROM purge_runs)"),
    ("tags", "DELETE FROM tags WHERE run_uuid IN (SELECT run_uuid FROM purge_runs)"),
    ("runs", "DELETE FROM runs WHERE run_uuid IN (SELECT run_uuid FROM purge_runs)"),
    (
        "experiment_tags",
        "DELETE FROM experiment_tags WHERE experiment_id IN
             (SELECT experiment_id FROM experiments WHERE lifecycle_stage = 'deleted')",
    ),
    ("experiments", "DELETE FROM experiments WHERE lifecycle_stage = 'deleted'"),
];

fn main() -> ExitCode {
    bench_store::exit_code(run())
}

/// Returns whether every check passed. The store and its copies are dropped before it returns.
fn run() -> BenchResult<bool> {
    let janitor = janitor_binary()?;
    println!("janitor binary: {}", janitor.display());

    let started = Instant::now();
    let seeded = TestStore::new()?;
    {
        let mut conn = seeded.connect()?;
        conn.batch_execute(&Shape::BENCH.seed_sql())?;
        // VACUUM too, so that autovacuum has no reason to visit the seeded database while it is
        // being copied, and the copies start with hint bits and visibility map set, as an
        // established store has them.
        conn.batch_execute("VACUUM ANALYZE")?;
        let before = counts(&mut conn)?;
        let size: Count =
            diesel::sql_query("SELECT pg_database_size(current_database())::bigint AS n")
                .get_result(&mut conn)?;
        println!(
            "seeded {} in {:.1} s ({} MB): {}",
            seeded.uri().database(),
            started.elapsed().as_secs_f64(),
            size.n / (1024 * 1024),
            before.iter().map(|(t, n)| format!("{t}={n}")).collect::<Vec<_>>().join(" ")
        );
        let in_scope: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM runs WHERE lifecycle_stage = 'deleted'
                OR experiment_id IN (SELECT experiment_id FROM experiments
                                     WHERE lifecycle_stage = 'deleted')",
        )
        .get_result(&mut conn)?;
        let metrics_in_scope: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM metrics WHERE run_uuid IN (SELECT run_uuid FROM runs
                WHERE lifecycle_stage = 'deleted' OR experiment_id IN
                    (SELECT experiment_id FROM experiments WHERE lifecycle_stage = 'deleted'))",
        )
        .get_result(&mut conn)?;
        println!(
            "in scope: {} runs, {} metric rows, {} experiments",
            in_scope.n,
            metrics_in_scope.n,
            Shape::BENCH.deleted_experiments
        );
    }

    let mut copies = Copies { server: seeded.uri().clone(), names: Vec::new() };
    let expected = Shape::BENCH.expected_counts();
    let mut ok = true;
    let mut walls_a = Vec::new();
    let mut walls_b = Vec::new();
    let mut walls_returning = Vec::new();
    let mut rss_a = Vec::new();
    let mut walls_c = Vec::new();
    let mut walls_d = Vec::new();
    let mut rss_d = Vec::new();
    let mut rss_c = Vec::new();
    let mut walls_e = Vec::new();
    let mut rss_e = Vec::new();
    let mut sizes_e = None;
    let mut statements_per_entity = Vec::new();
    let mut walls_f = Vec::new();
    let mut rss_f = Vec::new();
    let mut batches = None;

    for round in 1..=ROUNDS {
        let copy_started = Instant::now();
        let uri_a = copies.create(&seeded.uri().database(), &format!("a{round}"))?;
        let uri_b = copies.create(&seeded.uri().database(), &format!("b{round}"))?;
        let uri_returning = copies.create(&seeded.uri().database(), &format!("r{round}"))?;
        let uri_c = copies.create(&seeded.uri().database(), &format!("c{round}"))?;
        let uri_e = copies.create(&seeded.uri().database(), &format!("e{round}"))?;
        let uri_f = copies.create(&seeded.uri().database(), &format!("f{round}"))?;
        println!(
            "\nround {round}: copied the store six times in {:.1} s",
            copy_started.elapsed().as_secs_f64()
        );

        checkpoint(&copies.server);
        let written_before = rows_written(&uri_a)?;
        let d = run_janitor(&janitor, &uri_a, &["--dry-run"])?;
        // The dry run's session reports its statistics as it ends; give them time to arrive.
        std::thread::sleep(Duration::from_millis(1500));
        let written_after = rows_written(&uri_a)?;
        println!(
            "  D dry run: {:>7.2} s  peak RSS {:.1} MB  rows written (ins, upd, del) {:?} -> {:?}",
            d.wall.as_secs_f64(),
            d.max_rss_kb as f64 / 1024.0,
            written_before,
            written_after,
        );
        if written_after != written_before {
            println!("      <-- the dry run wrote");
            ok = false;
        }
        walls_d.push(d.wall);
        rss_d.push(d.max_rss_kb);

        checkpoint(&copies.server);
        let statements =
            ServerLog::start(&copies.server, &uri_a.database(), &[("log_statement", "all")])?;
        let a = run_janitor(&janitor, &uri_a, &[])?;
        if let Some(log) = statements {
            let sent = log.statements()?;
            let entities: u64 = a.report["entities"]
                .as_object()
                .map_or(0, |e| e.values().filter_map(|n| n.as_u64()).sum());
            println!(
                "      statements A sent, counted in the server's log: {sent}, {:.3} per purged \
                 entity ({entities})",
                sent as f64 / entities as f64
            );
            statements_per_entity.push(sent as f64 / entities as f64);
        }
        std::thread::sleep(Duration::from_millis(1500));
        println!("      rows written after A's purge (ins, upd, del): {:?}", rows_written(&uri_a)?);
        for field in ["entities", "rows_by_table", "steps"] {
            if d.report[field] != a.report[field] {
                println!("      <-- MISMATCH: the dry run's {field} differ from the purge's");
                ok = false;
            }
        }
        let report_batches = a.report["batches"].as_u64();
        println!(
            "  A janitor: {:>7.2} s  (CPU {:.2} s)  peak RSS {:.1} MB  batches {}  entities {}  \
             (janitor's own duration_ms {})",
            a.wall.as_secs_f64(),
            a.cpu.as_secs_f64(),
            a.max_rss_kb as f64 / 1024.0,
            report_batches.map_or("?".to_owned(), |b| b.to_string()),
            a.report["entities"],
            a.report["duration_ms"],
        );
        if round == 1 {
            print_batch_lines(&a.stderr);
        }
        batches = batches.or(report_batches);
        walls_a.push(a.wall);
        rss_a.push(a.max_rss_kb);

        checkpoint(&copies.server);
        let b = run_sql(&uri_b)?;
        println!("  B SQL:     {:>7.2} s  (one transaction)", b.wall.as_secs_f64());
        if round == 1 {
            for (label, took) in &b.statements {
                println!("      {:<32} {:>8.0} ms", label, took.as_secs_f64() * 1000.0);
            }
        }
        walls_b.push(b.wall);

        checkpoint(&copies.server);
        let returning = run_sql_returning(&uri_returning)?;
        println!(
            "  B' SQL RETURNING *: {:>7.2} s  (one transaction, the deleted rows received)",
            returning.as_secs_f64()
        );
        if counts(&mut uri_returning.establish()?)? != counts(&mut uri_b.establish()?)? {
            println!("      <-- MISMATCH: B' left other rows than B");
            ok = false;
        }
        walls_returning.push(returning);

        let artifacts = tempfile::tempdir()?;
        let files = write_artifacts(&mut uri_c.establish()?, artifacts.path())?;
        checkpoint(&copies.server);
        let destination = artifacts.path().to_str().ok_or("a UTF-8 temporary path")?;
        let c = run_janitor(
            &janitor,
            &uri_c,
            &["--artifacts", "--artifacts-destination", destination],
        )?;
        let left = walk_files(artifacts.path())?;
        println!(
            "  C janitor --artifacts: {:>7.2} s  peak RSS {:.1} MB  deleted {} files in {} \
             locations  ({files} files before, {left} left)",
            c.wall.as_secs_f64(),
            c.max_rss_kb as f64 / 1024.0,
            c.report["artifacts"]["objects"],
            c.report["artifacts"]["locations"],
        );
        let kept_runs = expected.iter().find(|(table, _)| *table == "runs").map_or(0, |(_, n)| *n);
        if left != kept_runs as u64 || c.report["artifacts"]["kept"] != serde_json::json!([]) {
            println!("      <-- MISMATCH: {kept_runs} files should be left, none kept");
            ok = false;
        }
        walls_c.push(c.wall);
        rss_c.push(c.max_rss_kb);

        let rows_bytes = purged_rows_bytes(&mut uri_e.establish()?)?;
        let archives = tempfile::tempdir()?;
        checkpoint(&copies.server);
        let archive_root = archives.path().to_str().ok_or("a UTF-8 temporary path")?;
        let e = run_janitor(&janitor, &uri_e, &["--archive", archive_root])?;
        let archive_bytes = dir_bytes(archives.path())?;
        println!(
            "  E janitor --archive:   {:>7.2} s  (CPU {:.2} s)  peak RSS {:.1} MB  archive {:.1} MB \
             for {:.1} MB of rows in the database",
            e.wall.as_secs_f64(),
            e.cpu.as_secs_f64(),
            e.max_rss_kb as f64 / 1024.0,
            archive_bytes as f64 / 1e6,
            rows_bytes as f64 / 1e6,
        );
        if round == 1 {
            print_batch_lines(&e.stderr);
        }
        if e.report["rows_by_table"] != a.report["rows_by_table"] {
            println!("      <-- MISMATCH: the archived purge deleted other rows than A");
            ok = false;
        }
        walls_e.push(e.wall);
        rss_e.push(e.max_rss_kb);
        sizes_e = Some((archive_bytes, rows_bytes));

        checkpoint(&copies.server);
        let f = run_janitor(&janitor, &uri_f, &["--jobs", JOBS])?;
        println!(
            "  F janitor --jobs {JOBS}:   {:>7.2} s  peak RSS {:.1} MB",
            f.wall.as_secs_f64(),
            f.max_rss_kb as f64 / 1024.0,
        );
        if f.report["rows_by_table"] != a.report["rows_by_table"]
            || counts(&mut uri_f.establish()?)? != expected
        {
            println!("      <-- MISMATCH: the purge with jobs deleted other rows than A");
            ok = false;
        }
        walls_f.push(f.wall);
        rss_f.push(f.max_rss_kb);

        let counts_a = counts(&mut uri_a.establish()?)?;
        let counts_b = counts(&mut uri_b.establish()?)?;
        println!(
            "  row counts after purge:  {:<16} {:>10} {:>10} {:>10}",
            "table", "A", "B", "expected"
        );
        for (((table, n_a), (_, n_b)), (_, want)) in counts_a.iter().zip(&counts_b).zip(&expected) {
            let mark = if n_a == n_b && n_a == want { "" } else { "  <-- MISMATCH" };
            println!("                           {table:<16} {n_a:>10} {n_b:>10} {want:>10}{mark}");
        }
        if counts_a != counts_b || counts_a != expected {
            ok = false;
        }
        copies.drop_all();
    }

    let wall_a = mean(&walls_a);
    let wall_b = mean(&walls_b);
    let ratio = wall_a.as_secs_f64() / wall_b.as_secs_f64();
    let peak_mb = *rss_a.iter().max().unwrap_or(&0) as f64 / 1024.0;
    println!("\nsummary ({ROUNDS} rounds; times are the mean of the rounds)");
    println!(
        "  wall time A (janitor):  {:.2} s  [{}]",
        wall_a.as_secs_f64(),
        walls_a.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", ")
    );
    println!(
        "  wall time B (SQL):      {:.2} s  [{}]",
        wall_b.as_secs_f64(),
        walls_b.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", ")
    );
    println!(
        "  ratio A/B:              {ratio:.2}  (target <= {TARGET_RATIO}){}",
        if ratio <= TARGET_RATIO { "" } else { "  MISSED" }
    );
    println!(
        "  peak RSS of A:          {peak_mb:.1} MB  (target <= {TARGET_RSS_MB} MB){}",
        if peak_mb <= TARGET_RSS_MB { "" } else { "  MISSED" }
    );
    let wall_c = mean(&walls_c);
    println!(
        "  wall time C (janitor --artifacts, {} files): {:.2} s  [{}]  ratio C/A {:.2}",
        Shape::BENCH.runs,
        wall_c.as_secs_f64(),
        walls_c.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", "),
        wall_c.as_secs_f64() / wall_a.as_secs_f64()
    );
    println!(
        "  peak RSS of C:          {:.1} MB  (A: {peak_mb:.1} MB)",
        *rss_c.iter().max().unwrap_or(&0) as f64 / 1024.0
    );
    println!(
        "  janitor batches (default batch size {}): {}",
        mlflow_janitor::purge::DEFAULT_BATCH_SIZE,
        batches.map_or("?".to_owned(), |b| b.to_string())
    );
    let wall_d = mean(&walls_d);
    println!(
        "  wall time D (dry run):  {:.2} s  [{}]  ratio D/A {:.2}  (target <= 1)  \
         peak RSS {:.1} MB",
        wall_d.as_secs_f64(),
        walls_d.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", "),
        wall_d.as_secs_f64() / wall_a.as_secs_f64(),
        *rss_d.iter().max().unwrap_or(&0) as f64 / 1024.0
    );
    let wall_e = mean(&walls_e);
    let ratio_e = wall_e.as_secs_f64() / wall_a.as_secs_f64();
    let rss_e = *rss_e.iter().max().unwrap_or(&0) as f64 / 1024.0;
    println!(
        "  wall time E (--archive): {:.2} s  [{}]  ratio E/A {ratio_e:.2}  (target <= \
         {TARGET_ARCHIVE_RATIO}){}  peak RSS {rss_e:.1} MB  (target <= {TARGET_ARCHIVE_RSS_MB} MB){}",
        wall_e.as_secs_f64(),
        walls_e.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", "),
        if ratio_e <= TARGET_ARCHIVE_RATIO { "" } else { "  MISSED" },
        if rss_e <= TARGET_ARCHIVE_RSS_MB { "" } else { "  MISSED" },
    );
    let wall_returning = mean(&walls_returning);
    println!(
        "  wall time B' (SQL RETURNING *): {:.2} s  [{}]  ratio B'/B {:.2}: the database's own \
         cost of handing over the rows; E/B' {:.2}",
        wall_returning.as_secs_f64(),
        walls_returning
            .iter()
            .map(|d| format!("{:.2}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        wall_returning.as_secs_f64() / wall_b.as_secs_f64(),
        wall_e.as_secs_f64() / wall_returning.as_secs_f64(),
    );
    if let Some((archive, rows)) = sizes_e {
        println!(
            "  archive size:           {:.1} MB, {:.2} of the purged rows' {:.1} MB in the database",
            archive as f64 / 1e6,
            archive as f64 / rows as f64,
            rows as f64 / 1e6
        );
    }
    match statements_per_entity.first() {
        Some(per_entity) => println!(
            "  statements per purged entity (A, on the server): {per_entity:.3}  (level to keep: \
             about {TARGET_STATEMENTS_PER_ENTITY})"
        ),
        None => println!("  statements per purged entity: not counted (no server log readable)"),
    }
    let wall_f = mean(&walls_f);
    let ratio_f = wall_f.as_secs_f64() / wall_b.as_secs_f64();
    let rss_f = *rss_f.iter().max().unwrap_or(&0) as f64 / 1024.0;
    println!(
        "  wall time F (--jobs {JOBS}): {:.2} s  [{}]  ratio F/B {ratio_f:.2}  (target <= \
         {TARGET_JOBS_RATIO}){}  peak RSS {rss_f:.1} MB  (target <= {TARGET_JOBS_RSS_MB} MB){}",
        wall_f.as_secs_f64(),
        walls_f.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", "),
        if ratio_f <= TARGET_JOBS_RATIO { "" } else { "  MISSED" },
        if rss_f <= TARGET_JOBS_RSS_MB { "" } else { "  MISSED" },
    );
    println!(
        "  row counts A == B == F == expected, dry run D == A, D wrote nothing: {}",
        if ok { "yes" } else { "NO" }
    );
    drop(copies);
    drop(seeded);
    Ok(ok)
}

/// The bytes the rows a purge deletes take in the database's tables (`pg_column_size` of each
/// row: tuple data, no indexes), for the tables that hold nearly all of them.
fn purged_rows_bytes(conn: &mut DbConnection) -> BenchResult<i64> {
    let doomed = "SELECT run_uuid FROM runs WHERE lifecycle_stage = 'deleted' OR experiment_id IN \
                  (SELECT experiment_id FROM experiments WHERE lifecycle_stage = 'deleted')";
    let of_runs = |table: &str| {
        format!("(SELECT COALESCE(SUM(pg_column_size(t.*)), 0) FROM {table} t WHERE run_uuid IN ({doomed}))")
    };
    let tables = ["metrics", "latest_metrics", "params", "tags", "runs"].map(of_runs);
    let total: Count = diesel::sql_query(format!("SELECT ({})::bigint AS n", tables.join(" + ")))
        .get_result(conn)?;
    Ok(total.n)
}

/// The bytes of the files under `root`.
fn dir_bytes(root: &std::path::Path) -> BenchResult<u64> {
    let mut bytes = 0;
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        bytes += if entry.file_type()?.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            entry.metadata()?.len()
        };
    }
    Ok(bytes)
}

/// Rows inserted, updated and deleted in the store's tables, as PostgreSQL counts them.
fn rows_written(uri: &StoreUri) -> BenchResult<(i64, i64, i64)> {
    #[derive(QueryableByName)]
    struct Written {
        #[diesel(sql_type = BigInt)]
        ins: i64,
        #[diesel(sql_type = BigInt)]
        upd: i64,
        #[diesel(sql_type = BigInt)]
        del: i64,
    }
    let written: Written = diesel::sql_query(
        "SELECT COALESCE(SUM(n_tup_ins), 0)::bigint AS ins, COALESCE(SUM(n_tup_upd), 0)::bigint \
         AS upd, COALESCE(SUM(n_tup_del), 0)::bigint AS del FROM pg_stat_user_tables",
    )
    .get_result(&mut uri.establish()?)?;
    Ok((written.ins, written.upd, written.del))
}

/// One 1 KB file in each run's artifact location, under `root` (the destination its
/// `mlflow-artifacts:/` URI resolves through). Returns how many.
fn write_artifacts(conn: &mut DbConnection, root: &std::path::Path) -> BenchResult<u64> {
    use mlflow_janitor::schema::runs;
    let uris: Vec<Option<String>> = runs::table.select(runs::artifact_uri).load(conn)?;
    let mut written = 0;
    for uri in uris.iter().flatten() {
        let relative = uri.strip_prefix("mlflow-artifacts:/").ok_or("a proxied URI")?;
        let dir = root.join(relative);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("model.bin"), [7u8; 1024])?;
        written += 1;
    }
    Ok(written)
}

/// The files under `root`.
fn walk_files(root: &std::path::Path) -> BenchResult<u64> {
    let mut files = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            } else {
                files += 1;
            }
        }
    }
    Ok(files)
}

/// The janitor's per-batch log lines, condensed: which phase, how many rows, how long.
fn print_batch_lines(stderr: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("batch done")).collect();
    if lines.is_empty() {
        return;
    }
    println!("      janitor batches (from its log):");
    for line in lines {
        // The fmt layer prints `... INFO batch done entity="run" batch=1 ...`.
        let fields = line.split_once("batch done").map_or(line, |(_, rest)| rest.trim());
        println!("        {fields}");
    }
}

/// Runs contender B' through `psql`: B's statements in one transaction, each delete `RETURNING *`,
/// the rows written unaligned to /dev/null. Returns its wall time, connection included.
fn run_sql_returning(uri: &StoreUri) -> BenchResult<Duration> {
    let script: String = SQL_PURGE
        .iter()
        .map(|(_, sql)| {
            if sql.starts_with("DELETE") {
                format!("{sql} RETURNING *;\n")
            } else {
                format!("{sql};\n")
            }
        })
        .collect();
    let started = Instant::now();
    let mut psql = std::process::Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "--single-transaction"])
        .args(["-o", "/dev/null", "-f", "-", "-d", uri.given()])
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(&mut psql.stdin.take().ok_or("psql's stdin")?, script.as_bytes())?;
    let status = psql.wait()?;
    if !status.success() {
        return Err(format!("psql failed: {status}").into());
    }
    Ok(started.elapsed())
}

struct SqlRun {
    wall: Duration,
    statements: Vec<(&'static str, Duration)>,
}

/// Runs contender B in-process: connect, then every statement in one transaction.
fn run_sql(uri: &StoreUri) -> BenchResult<SqlRun> {
    let started = Instant::now();
    let mut conn = uri.establish()?;
    let mut statements = Vec::with_capacity(SQL_PURGE.len());
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        for (label, sql) in SQL_PURGE {
            let statement_started = Instant::now();
            conn.batch_execute(sql)?;
            statements.push((*label, statement_started.elapsed()));
        }
        Ok(())
    })?;
    Ok(SqlRun { wall: started.elapsed(), statements })
}
