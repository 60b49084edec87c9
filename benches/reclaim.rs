//! `cargo bench --bench reclaim`: what `purge --reclaim` gives back on the bench store (see
//! `cargo bench --bench purge`), on PostgreSQL, and what it costs.
//!
//! On two fresh copies of the store, side by side in each of two rounds: the plain purge, and
//! `purge --reclaim`. For the second, each table's size is read outside the tool before and
//! after (`pg_total_relation_size`) and set against the report's, with `n_dead_tup` of every
//! table the purge touched. Prints the bytes before and after, what went back to the
//! filesystem, what became reusable, and the wall time of both purges.

mod bench_store;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use bench_store::{
    checkpoint, counts, janitor_binary, mean, run_janitor, BenchResult, Copies, Shape,
};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::DbConnection;

const ROUNDS: usize = 2;

fn main() -> ExitCode {
    bench_store::exit_code(run())
}

#[derive(QueryableByName)]
struct TableFigure {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    value: i64,
}

/// One figure per table of the store, by a query giving `name` and `value`.
fn per_table(conn: &mut DbConnection, query: &str) -> BenchResult<BTreeMap<String, i64>> {
    let rows: Vec<TableFigure> = diesel::sql_query(query).load(conn)?;
    Ok(rows.into_iter().map(|row| (row.name, row.value)).collect())
}

fn sizes(conn: &mut DbConnection) -> BenchResult<BTreeMap<String, i64>> {
    per_table(
        conn,
        "SELECT relname::text AS name, pg_total_relation_size(oid) AS value FROM pg_class \
         WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace",
    )
}

fn dead_rows(conn: &mut DbConnection) -> BenchResult<BTreeMap<String, i64>> {
    per_table(conn, "SELECT relname::text AS name, n_dead_tup AS value FROM pg_stat_user_tables")
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn run() -> BenchResult<bool> {
    let janitor = janitor_binary()?;
    let store = TestStore::new()?;
    let mut conn = store.connect()?;
    conn.batch_execute(&Shape::BENCH.seed_sql())?;
    conn.batch_execute("VACUUM ANALYZE")?;
    drop(conn);
    let template = store.uri().database();
    let mut copies = Copies { server: store.uri().clone(), names: Vec::new() };
    let expected = Shape::BENCH.expected_counts();
    let mut ok = true;
    let (mut plain, mut reclaiming, mut reclaim_only) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        println!("\nround {round}");
        let plain_copy = copies.create(&template, &format!("plain{round}"))?;
        let reclaim_copy = copies.create(&template, &format!("reclaim{round}"))?;
        checkpoint(&copies.server);
        let purge = run_janitor(&janitor, &plain_copy, &[])?;
        plain.push(purge.wall);

        let mut conn = reclaim_copy.establish()?;
        let before = sizes(&mut conn)?;
        checkpoint(&copies.server);
        let purge = run_janitor(&janitor, &reclaim_copy, &["--reclaim"])?;
        reclaiming.push(purge.wall);
        let after = sizes(&mut conn)?;
        let dead = dead_rows(&mut conn)?;
        let reclaim = &purge.report["reclaim"];
        reclaim_only.push(Duration::from_millis(reclaim["duration_ms"].as_u64().unwrap_or(0)));
        let left = counts(&mut conn)?;
        ok &= left == expected;

        println!(
            "  {:<24} {:>12} {:>12} {:>12}  {:>9}  report agrees",
            "table", "before", "after", "returned", "n_dead_tup"
        );
        let tables = reclaim["tables"].as_object().ok_or("no reclaim in the report")?;
        let (mut total_before, mut total_after) = (0, 0);
        for (table, change) in tables {
            let reported = |when: &str| change[when]["bytes"].as_i64().unwrap_or(-1);
            let (was, is) = (before[table], after[table]);
            let agrees = reported("before") == was && reported("after") == is;
            ok &= agrees;
            total_before += was;
            total_after += is;
            if was != is || dead[table] != 0 || !agrees {
                println!(
                    "  {table:<24} {was:>12} {is:>12} {:>12}  {:>9}  {}",
                    was - is,
                    dead[table],
                    if agrees { "yes" } else { "NO" }
                );
            }
        }
        let dead_touched: i64 = tables.keys().map(|table| dead[table]).sum();
        println!(
            "  {} tables reclaimed ({} unchanged and clean not listed): {:.1} MiB -> {:.1} MiB, \
             {:.1} MiB returned to the filesystem (report: {} bytes), {:.1} MiB of dead rows made \
             reusable (report, from n_dead_tup); n_dead_tup left: {}{}",
            tables.len(),
            tables.len()
                - tables.keys().filter(|t| before[*t] != after[*t] || dead[*t] != 0).count(),
            mib(total_before),
            mib(total_after),
            mib(total_before - total_after),
            reclaim["bytes_returned"],
            mib(reclaim["bytes_reusable"].as_i64().unwrap_or(0)),
            dead_touched,
            if left == expected { "" } else { "  <-- MISMATCH: other rows left" },
        );
        ok &= reclaim["bytes_returned"].as_i64() == Some(total_before - total_after);
        copies.drop_all();
    }
    println!("\nsummary ({ROUNDS} rounds, side by side)");
    println!("  purge               {:>6.2} s", mean(&plain).as_secs_f64());
    println!(
        "  purge --reclaim     {:>6.2} s  (of which the reclaim {:.2} s)",
        mean(&reclaiming).as_secs_f64(),
        mean(&reclaim_only).as_secs_f64()
    );
    if !ok {
        println!("  the report disagrees with the server's figures, or rows were left: see above");
    }
    Ok(ok)
}
