//! The purge through the library: exactly what is soft-deleted goes, every live row stays.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use mlflow_janitor::plan::Entity;
use mlflow_janitor::purge::{Mode, Prepared, Report, Settings};
use mlflow_janitor::schema::{experiments, input_tags, metrics, runs};
use mlflow_janitor::scope::ScopeRequest;
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::{Backend, DbConnection, Error};
use test_case::test_case;

use crate::fixtures;
use crate::{purge, snapshot};

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn run_ids(conn: &mut DbConnection) -> Vec<String> {
    runs::table.select(runs::run_uuid).order(runs::run_uuid).load(conn).unwrap()
}

fn experiment_ids(conn: &mut DbConnection) -> Vec<i32> {
    experiments::table
        .select(experiments::experiment_id)
        .order(experiments::experiment_id)
        .load(conn)
        .unwrap()
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn default_purge_leaves_exactly_the_live_store(backend: Backend) {
    let store = TestStore::on(backend).unwrap();
    let mut conn = store.connect().unwrap();
    fixtures::live(&mut conn);
    let live = snapshot(&mut conn);
    fixtures::deleted(&mut conn);

    let report = purge(&store, ScopeRequest::default(), Mode::Delete, 2).unwrap();

    assert_eq!(snapshot(&mut conn), live, "a live row changed, or a deleted one is left");
    assert_eq!(report.entities[&Entity::Experiment], 2);
    assert_eq!(report.entities[&Entity::Run], 9);
    assert_eq!(report.entities[&Entity::Trace], 2);
    assert_eq!(report.entities[&Entity::LoggedModel], 2);
    assert_eq!(report.rows_by_table["metrics"], 27);
    // 9 runs in batches of 2, then 1 batch each of traces, models and experiments.
    assert_eq!(report.batches, 5 + 1 + 1 + 1);
    // The names the deleted experiments held can be taken again.
    for (id, name) in [(10, "doomed-3"), (11, "doomed-4")] {
        diesel::insert_into(experiments::table)
            .values((
                experiments::experiment_id.eq(id),
                experiments::name.eq(name),
                experiments::workspace.eq("default"),
            ))
            .execute(&mut conn)
            .unwrap();
    }
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn dry_run_counts_what_a_purge_deletes_and_changes_nothing(backend: Backend) {
    let (store, mut conn) = fixtures::seeded_store(backend);
    let before = snapshot(&mut conn);

    let dry = purge(&store, ScopeRequest::default(), Mode::DryRun, 3).unwrap();
    assert_eq!(snapshot(&mut conn), before);
    let real = purge(&store, ScopeRequest::default(), Mode::Delete, 3).unwrap();
    assert!(dry.total_rows() > 0);
    assert_eq!(crate::rows_by_step(&dry), crate::rows_by_step(&real));
    assert_eq!(dry.rows_by_table, real.rows_by_table);
    assert_eq!(dry.entities, real.entities);
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn older_than_keeps_recent_deletions_and_takes_undated_runs(backend: Backend) {
    let (store, mut conn) = fixtures::seeded_store(backend);

    let request =
        ScopeRequest { older_than: Some(Duration::from_secs(30 * 86_400)), ..Default::default() };
    let report = purge(&store, request, Mode::Delete, 100).unwrap();

    assert_eq!(report.entities[&Entity::Experiment], 1);
    let left = run_ids(&mut conn);
    assert!(!left.iter().any(|r| r.starts_with("doomed-run-3")), "{left:?}");
    assert!(left.iter().filter(|r| r.starts_with("doomed-run-4")).count() == 3, "{left:?}");
    assert!(!left.contains(&"gone-run-1".to_owned()), "60 days old: purged");
    assert!(left.contains(&"gone-run-2".to_owned()), "10 days old: kept");
    assert!(!left.contains(&"gone-run-undated".to_owned()), "no deletion time: purged");
    assert_eq!(experiment_ids(&mut conn), [1, 2, 4]);
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn named_runs_and_experiments_purge_exactly_those(backend: Backend) {
    let (store, mut conn) = fixtures::seeded_store(backend);

    let request = ScopeRequest {
        run_ids: ids(&["gone-run-2", "doomed-run-4a"]),
        experiment_names: ids(&["doomed-3"]),
        ..Default::default()
    };
    let report = purge(&store, request, Mode::Delete, 100).unwrap();

    assert_eq!(report.entities[&Entity::Run], 5);
    assert_eq!(report.entities[&Entity::Experiment], 1);
    let left = run_ids(&mut conn);
    for kept in ["gone-run-1", "gone-run-undated", "doomed-run-4b", "doomed-run-4c"] {
        assert!(left.contains(&kept.to_owned()), "{kept} was not named: {left:?}");
    }
    for gone in ["gone-run-2", "doomed-run-4a", "doomed-run-3a"] {
        assert!(!left.contains(&gone.to_owned()), "{gone} was named: {left:?}");
    }
    assert_eq!(experiment_ids(&mut conn), [1, 2, 4]);
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn naming_a_live_or_missing_entity_deletes_nothing(backend: Backend) {
    let (store, mut conn) = fixtures::seeded_store(backend);
    let before = snapshot(&mut conn);

    let bad_requests = [
        (
            ScopeRequest { run_ids: ids(&["gone-run-1", "live-run-1a"]), ..Default::default() },
            "run live-run-1a is not deleted",
        ),
        (ScopeRequest { run_ids: ids(&["nope"]), ..Default::default() }, "run nope does not exist"),
        (
            ScopeRequest { experiment_ids: ids(&["3", "1"]), ..Default::default() },
            "experiment 1 (`live-1`) is not deleted",
        ),
        (
            ScopeRequest { experiment_ids: ids(&["x"]), ..Default::default() },
            "experiment id `x` is not a number",
        ),
        (
            ScopeRequest { experiment_names: ids(&["live-2"]), ..Default::default() },
            "experiment `live-2` is not deleted",
        ),
        (
            ScopeRequest { experiment_names: ids(&["never"]), ..Default::default() },
            "no experiment is named `never`",
        ),
    ];
    for (request, message) in bad_requests {
        let err = purge(&store, request, Mode::Delete, 100).unwrap_err();
        assert!(matches!(err, Error::InvalidScope(_)), "{err:?}");
        assert!(err.to_string().contains(message), "{err} should say {message}");
    }
    assert_eq!(snapshot(&mut conn), before);
}

/// A client logging to a live run holds its new rows until it commits. The purge's deletes
/// must not reach them: on MySQL, a delete that scanned the whole table (InnoDB's choice when a
/// batch is a large share of a table, or its statistics are stale, and MariaDB's for a
/// single-table delete through a subquery, as of input tags) would wait for the client, and may
/// hold rows the client then waits for, a deadlock InnoDB ends by rolling the client back. Here
/// the store is small enough that MariaDB would scan.
#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
fn the_purge_does_not_wait_for_a_client_logging_to_a_live_run(backend: Backend) {
    let store = TestStore::on(backend).unwrap();
    let mut conn = store.connect().unwrap();
    fixtures::experiment(&mut conn, 1, "team", None);
    let deleted = Some(Some(fixtures::now_ms()));
    fixtures::run(&mut conn, 1, "gone-a", deleted);
    fixtures::run(&mut conn, 1, "live", None);
    fixtures::run(&mut conn, 1, "gone-b", deleted);
    let mut client = store.uri().establish().unwrap();
    client.batch_execute("BEGIN").unwrap();
    diesel::insert_into(metrics::table)
        .values((
            metrics::key.eq("accuracy"),
            metrics::value.eq(0.9),
            metrics::timestamp.eq(1),
            metrics::run_uuid.eq("live"),
            metrics::step.eq(0),
            metrics::is_nan.eq(false),
        ))
        .execute(&mut client)
        .unwrap();
    diesel::insert_into(input_tags::table)
        .values((
            input_tags::input_uuid.eq("input-live"),
            input_tags::name.eq("preprocessing"),
            input_tags::value.eq("none"),
        ))
        .execute(&mut client)
        .unwrap();
    let report = std::thread::scope(|scope| {
        let purging =
            scope.spawn(|| purge(&store, ScopeRequest::default(), Mode::Delete, 500).unwrap());
        let started = std::time::Instant::now();
        while !purging.is_finished() {
            assert!(started.elapsed() < Duration::from_secs(20), "the purge waits for the client");
            std::thread::sleep(Duration::from_millis(50));
        }
        purging.join().unwrap()
    });
    assert_eq!(report.entities.get(&Entity::Run), Some(&2));
    client.batch_execute("COMMIT").unwrap();
    assert_eq!(run_ids(&mut conn), ids(&["live"]));
    let live_metrics: i64 =
        metrics::table.filter(metrics::run_uuid.eq("live")).count().get_result(&mut conn).unwrap();
    assert_eq!(live_metrics, 4);
    let live_input_tags: i64 = input_tags::table
        .filter(input_tags::input_uuid.eq("input-live"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(live_input_tags, 2);
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn a_run_restored_during_the_purge_rolls_its_batch_back(backend: Backend) {
    let (store, mut conn) = fixtures::seeded_store(backend);
    let request =
        ScopeRequest { run_ids: ids(&["gone-run-1", "gone-run-2"]), ..Default::default() };
    let mut settings = Settings::new(store.uri().clone(), request, Mode::Delete);
    settings.batch_size = 10;
    let mut report = Report::new("test".into(), "", Mode::Delete);
    let mut before = None;
    let err = Prepared::prepare(settings, &mut report)
        .unwrap()
        .confirm(|_| {
            // Another client restores a run after the scope was checked.
            diesel::update(runs::table.filter(runs::run_uuid.eq("gone-run-2")))
                .set(runs::lifecycle_stage.eq("active"))
                .execute(&mut conn)
                .unwrap();
            before = Some(snapshot(&mut conn));
            Ok(())
        })
        .unwrap()
        .run(None, &mut report, &mut |_| {})
        .unwrap_err();

    assert!(err.to_string().contains("changed while being purged"), "{err}");
    assert_eq!(
        err.exit_code(),
        std::process::ExitCode::from(mlflow_janitor::error::exit_code::PARTIAL)
    );
    assert_eq!(Some(snapshot(&mut conn)), before, "the batch must roll back whole");
    let restored_metrics: i64 = metrics::table
        .filter(metrics::run_uuid.eq("gone-run-2"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(restored_metrics, 3);
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn an_experiment_a_guardrail_uses_is_kept_and_reported(backend: Backend) {
    let (store, mut conn) = fixtures::seeded_store(backend);
    diesel::sql_query(
        "INSERT INTO guardrails (guardrail_id, name, scorer_id, scorer_version, stage, action, \
                                 created_at, last_updated_at, workspace) \
         VALUES ('g1', 'pii', 'scorer-3', 1, 'input', 'block', 0, 0, 'default')",
    )
    .execute(&mut conn)
    .unwrap();

    let report = purge(&store, ScopeRequest::default(), Mode::Delete, 100).unwrap();
    assert_eq!(report.blocked.len(), 1);
    assert_eq!(report.blocked[0].experiment_id, 3);
    assert_eq!(experiment_ids(&mut conn), [1, 2, 3]);
    let left = run_ids(&mut conn);
    assert_eq!(left.iter().filter(|r| r.starts_with("doomed-run-3")).count(), 3, "{left:?}");

    let named = ScopeRequest { experiment_ids: ids(&["3"]), ..Default::default() };
    let err = purge(&store, named, Mode::Delete, 100).unwrap_err();
    assert!(err.to_string().contains("guardrail"), "{err}");
}

/// Every MLflow schema mlflow-janitor knows, on every backend: the fixtures that version can
/// hold, purged (after a dry run that counts the same) down to exactly the live rows.
#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn every_known_schema_is_purged_down_to_its_live_rows(backend: Backend) {
    for known in mlflow_janitor::store::revision::KNOWN_SCHEMAS {
        let store = TestStore::of_version(backend, known.mlflow).unwrap();
        let mut conn = store.connect().unwrap();
        fixtures::live(&mut conn);
        let live = snapshot(&mut conn);
        fixtures::deleted(&mut conn);
        let schema = crate::schema(&mut conn);
        assert_eq!(schema.mlflow_version, known.mlflow);

        let dry = purge(&store, ScopeRequest::default(), Mode::DryRun, 2).unwrap();
        let report = purge(&store, ScopeRequest::default(), Mode::Delete, 2).unwrap();

        let version = known.mlflow;
        assert_eq!(
            snapshot(&mut conn),
            live,
            "MLflow {version}: a live row changed, or a deleted one is left"
        );
        assert_eq!(dry.rows_by_table, report.rows_by_table, "MLflow {version}");
        assert_eq!(crate::rows_by_step(&dry), crate::rows_by_step(&report), "MLflow {version}");
        let purged = |entity| report.entities.get(&entity).copied().unwrap_or(0);
        assert_eq!(purged(Entity::Experiment), 2, "MLflow {version}");
        assert_eq!(purged(Entity::Run), 9, "MLflow {version}");
        let traces = if schema.has_table("trace_info") { 2 } else { 0 };
        assert_eq!(purged(Entity::Trace), traces, "MLflow {version}");
        let models = if schema.has_table("logged_models") { 2 } else { 0 };
        assert_eq!(purged(Entity::LoggedModel), models, "MLflow {version}");
        // The report names only the tables this version has.
        for table in report.rows_by_table.keys() {
            assert!(schema.has_table(table), "MLflow {version} has no {table}");
        }
    }
}

/// Each other kind goes only when asked, and then exactly what is past the age.
#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn each_other_kind_is_purged_only_when_asked_and_only_past_its_age(backend: Backend) {
    use mlflow_janitor::schema::{jobs, logged_models, model_versions, trace_info, webhooks};
    use mlflow_janitor::scope::Retention;
    let (store, mut conn) = fixtures::seeded_store(backend);
    fixtures::other_kinds(&mut conn);
    let older_than = Some(Duration::from_secs(30 * 86_400));

    let plain = ScopeRequest { older_than, ..Default::default() };
    let report = purge(&store, plain, Mode::Delete, 2).unwrap();
    for entity in [Entity::ModelVersion, Entity::Webhook, Entity::Job] {
        assert_eq!(report.entities.get(&entity), None, "{entity:?}");
    }
    let before = snapshot(&mut conn);

    let every_kind = ScopeRequest {
        older_than,
        retention: Retention {
            logged_models: true,
            model_versions: true,
            webhooks: true,
            finished_jobs: true,
            traces_older_than: Some(Duration::from_secs(90 * 86_400)),
        },
        ..Default::default()
    };
    let dry = purge(&store, every_kind.clone(), Mode::DryRun, 2).unwrap();
    assert_eq!(snapshot(&mut conn), before);
    let report = purge(&store, every_kind, Mode::Delete, 2).unwrap();
    assert_eq!(dry.rows_by_table, report.rows_by_table);
    assert_eq!(crate::rows_by_step(&dry), crate::rows_by_step(&report));
    for entity in
        [Entity::LoggedModel, Entity::ModelVersion, Entity::Webhook, Entity::Job, Entity::Trace]
    {
        assert_eq!(report.entities.get(&entity), Some(&1), "{entity:?}: {:?}", report.entities);
    }
    let models: Vec<String> = logged_models::table
        .select(logged_models::model_id)
        .filter(logged_models::model_id.like("%-model"))
        .order(logged_models::model_id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(models, ["live-model", "new-model"]);
    let versions: Vec<i32> = model_versions::table
        .select(model_versions::version)
        .order(model_versions::version)
        .load(&mut conn)
        .unwrap();
    assert_eq!(versions, [2, 3]);
    let hooks: Vec<String> = webhooks::table
        .select(webhooks::webhook_id)
        .order(webhooks::webhook_id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(hooks, ["live-hook", "new-hook"]);
    let jobs: Vec<String> = jobs::table.select(jobs::id).order(jobs::id).load(&mut conn).unwrap();
    assert_eq!(jobs, ["live-job", "new-job"]);
    let traces: Vec<String> = trace_info::table
        .select(trace_info::request_id)
        .filter(trace_info::request_id.like("%-trace"))
        .order(trace_info::request_id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(traces, ["new-trace"]);
    assert_eq!(report.rows_by_table["model_version_tags"], 1);
    assert_eq!(report.rows_by_table["webhook_events"], 1);
    assert_eq!(report.rows_by_table["job_locks"], 1);
    assert_eq!(report.rows_by_table["spans"], 1);
}
