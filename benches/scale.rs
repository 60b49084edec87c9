//! `cargo bench --bench scale`: a purge's cost follows what it deletes, not what the store keeps.
//!
//! Seeds the bench store (see `cargo bench --bench purge`) and a large one: the same 10
//! experiments and 7,200 runs to purge, and ten times the live runs and metric rows. Then, in
//! two rounds, on a fresh copy of each: the purge (release binary, default settings), timed from
//! spawn to exit with its peak RSS, and `status`, timed the same way. Targets: the large store's
//! purge at most 1.3 times the small one's, its memory flat, `status` interactive.
//!
//! Last, on one more copy of the large store, `auto_explain` logs the plan of every statement
//! that `status`, a dry run and the purge send (for that database alone); the bench lists each
//! statement whose plan reads a whole large table (a `Seq Scan` on `metrics`, `latest_metrics`,
//! `params`, `tags` or `runs`, or an index scan of one with no condition: every entry). Needs
//! PostgreSQL's log readable (see `bench_store::ServerLog`).

mod bench_store;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bench_store::{
    checkpoint, counts, janitor_binary, mean, run_command, run_janitor, BenchResult, Copies,
    ServerLog, Shape,
};
use diesel::connection::SimpleConnection;
use mlflow_janitor::test_store::TestStore;

const ROUNDS: usize = 2;
/// The large store keeps this many times the bench store's live runs.
const SCALE: i64 = 10;
const TARGET_RATIO: f64 = 1.3;
/// The tables that grow with what a store keeps.
const LARGE_TABLES: &[&str] = &["metrics", "latest_metrics", "params", "tags", "runs"];

fn main() -> ExitCode {
    bench_store::exit_code(run())
}

/// A seeded store and its shape.
struct Seeded {
    label: &'static str,
    shape: Shape,
    store: TestStore,
}

fn seed(label: &'static str, shape: Shape) -> BenchResult<Seeded> {
    let started = Instant::now();
    let store = TestStore::new()?;
    let mut conn = store.connect()?;
    conn.batch_execute(&shape.seed_sql())?;
    conn.batch_execute("VACUUM ANALYZE")?;
    println!(
        "seeded the {label} store in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        counts(&mut conn)?.iter().map(|(t, n)| format!("{t}={n}")).collect::<Vec<_>>().join(" ")
    );
    Ok(Seeded { label, shape, store })
}

fn run() -> BenchResult<bool> {
    let janitor = janitor_binary()?;
    let small = seed("small", Shape::BENCH)?;
    let large = seed(
        "large",
        Shape { extra_live_runs: (SCALE - 1) * Shape::BENCH.kept_runs(), ..Shape::BENCH },
    )?;
    let stores = [&small, &large];
    let mut copies = Copies { server: small.store.uri().clone(), names: Vec::new() };
    let mut ok = true;
    let mut purges: BTreeMap<&str, Vec<(Duration, i64)>> = BTreeMap::new();
    let mut statuses: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for round in 1..=ROUNDS {
        println!("\nround {round}");
        for seeded in stores {
            let template = seeded.store.uri().database();
            let copy = copies.create(&template, &format!("{}{round}", seeded.label))?;
            checkpoint(&copies.server);
            let status = run_command(&janitor, &["status"], &copy, &[])?;
            let purge = run_janitor(&janitor, &copy, &[])?;
            let left = counts(&mut copy.establish()?)?;
            let expected = seeded.shape.expected_counts();
            println!(
                "  {:<5} purge {:>6.2} s  peak RSS {:>5.1} MB  entities {}  status {:>5.2} s{}",
                seeded.label,
                purge.wall.as_secs_f64(),
                purge.max_rss_kb as f64 / 1024.0,
                purge.report["entities"],
                status.wall.as_secs_f64(),
                if left == expected { "" } else { "  <-- MISMATCH: other rows left" },
            );
            ok &= left == expected;
            purges.entry(seeded.label).or_default().push((purge.wall, purge.max_rss_kb));
            statuses.entry(seeded.label).or_default().push(status.wall);
            copies.drop_all();
        }
    }

    println!("\nsummary ({ROUNDS} rounds; times are the mean of the rounds)");
    let wall = |label: &str| mean(&purges[label].iter().map(|(w, _)| *w).collect::<Vec<_>>());
    let rss =
        |label: &str| purges[label].iter().map(|(_, rss)| *rss).max().unwrap_or(0) as f64 / 1024.0;
    for seeded in stores {
        println!(
            "  {:<5} store: {:>8} runs kept, purge {:.2} s, peak RSS {:.1} MB, status {:.2} s",
            seeded.label,
            seeded.shape.kept_runs(),
            wall(seeded.label).as_secs_f64(),
            rss(seeded.label),
            mean(&statuses[seeded.label]).as_secs_f64(),
        );
    }
    let ratio = wall("large").as_secs_f64() / wall("small").as_secs_f64();
    println!(
        "  purge time large/small: {ratio:.2}  (target <= {TARGET_RATIO}){}",
        if ratio <= TARGET_RATIO { "" } else { "  MISSED" }
    );
    println!("  peak RSS large/small:   {:.2}", rss("large") / rss("small"));

    let template = large.store.uri().database();
    let copy = copies.create(&template, "explained")?;
    let log = ServerLog::start(
        &copies.server,
        &copy.database(),
        &[("session_preload_libraries", "auto_explain"), ("auto_explain.log_min_duration", "0")],
    )?;
    run_command(&janitor, &["status"], &copy, &[])?;
    run_janitor(&janitor, &copy, &["--dry-run"])?;
    run_janitor(&janitor, &copy, &[])?;
    match log {
        None => println!("\nplans: not read (no server log readable here)"),
        Some(log) => {
            let plans: Vec<String> =
                log.entries()?.into_iter().filter(|e| e.starts_with("duration: ")).collect();
            let whole: Vec<(Vec<String>, &String)> = plans
                .iter()
                .map(|plan| (read_whole(plan), plan))
                .filter(|(tables, _)| !tables.is_empty())
                .collect();
            println!(
                "\nplans of status, a dry run and the purge on the large store: {} statements, {} \
                 reading a whole large table",
                plans.len(),
                whole.len()
            );
            for (tables, plan) in whole {
                println!("  --- reads whole: {}", tables.join(", "));
                println!("  {}", plan.replace('\n', "\n  "));
            }
        }
    }
    Ok(ok)
}

/// The large tables a plan reads whole: a sequential scan, or an index scan with no condition
/// (every entry of the index), named `table (index)`.
fn read_whole(plan: &str) -> Vec<String> {
    let lines: Vec<&str> = plan.lines().collect();
    let mut tables = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        for table in LARGE_TABLES {
            let on = format!(" on {table} ");
            if line.contains(&format!("Seq Scan{on}")) {
                tables.push(table.to_string());
            } else if line.contains("Index") && line.contains(" Scan using ") && line.contains(&on)
            {
                let conditioned =
                    lines.get(index + 1).is_some_and(|next| next.trim().starts_with("Index Cond"));
                if !conditioned {
                    tables.push(format!("{table} (index)"));
                }
            }
        }
    }
    tables.sort();
    tables.dedup();
    tables
}
