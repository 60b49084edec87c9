//! Fixtures seeded through diesel with the schema mirror: experiments holding every kind of row
//! the delete plan knows, live or soft-deleted.

use std::collections::BTreeSet;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use mlflow_janitor::schema::*;
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::{Backend, DbConnection};

pub const DAY_MS: i64 = 86_400_000;

/// Now, in epoch milliseconds: `--older-than` is measured from the real clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Inserts into a table of the store's MLflow version; nothing where that version lacks it.
macro_rules! insert {
    ($conn:expr, $present:expr, $table:ident, $values:expr) => {
        if $present.contains(stringify!($table)) {
            diesel::insert_into($table::table)
                .values($values)
                .execute($conn)
                .expect(concat!("insert into ", stringify!($table)));
        }
    };
}

/// The tables of the store: fixtures hold what its MLflow version can. Columns that versions
/// add later all have defaults, and are left to them.
fn present(conn: &mut DbConnection) -> BTreeSet<String> {
    mlflow_janitor::store::catalog::tables(conn).unwrap()
}

pub fn experiment(conn: &mut DbConnection, id: i32, name: &str, deleted_at: Option<i64>) {
    let present = &present(conn);
    let stage = if deleted_at.is_some() { "deleted" } else { "active" };
    insert!(
        conn,
        present,
        experiments,
        (
            experiments::experiment_id.eq(id),
            experiments::name.eq(name),
            experiments::artifact_location.eq(format!("/mlruns/{id}")),
            experiments::lifecycle_stage.eq(stage),
            experiments::creation_time.eq(now_ms() - 100 * DAY_MS),
            experiments::last_update_time.eq(deleted_at.unwrap_or(now_ms() - 100 * DAY_MS)),
        )
    );
    insert!(
        conn,
        present,
        experiment_tags,
        (
            experiment_tags::key.eq("team"),
            experiment_tags::value.eq(name),
            experiment_tags::experiment_id.eq(id)
        )
    );
    // A dataset of the experiment, and the experiment's rows that hang off nothing else.
    insert!(
        conn,
        present,
        datasets,
        (
            datasets::dataset_uuid.eq(format!("ds-{id}")),
            datasets::experiment_id.eq(id),
            datasets::name.eq("train"),
            datasets::digest.eq(format!("digest-{id}")),
            datasets::dataset_source_type.eq("local"),
            datasets::dataset_source.eq("{}"),
        )
    );
    insert!(
        conn,
        present,
        scorers,
        (
            scorers::experiment_id.eq(id),
            scorers::scorer_name.eq("relevance"),
            scorers::scorer_id.eq(format!("scorer-{id}"))
        )
    );
    insert!(
        conn,
        present,
        scorer_versions,
        (
            scorer_versions::scorer_id.eq(format!("scorer-{id}")),
            scorer_versions::scorer_version.eq(1),
            scorer_versions::serialized_scorer.eq("{}"),
        )
    );
    insert!(
        conn,
        present,
        online_scoring_configs,
        (
            online_scoring_configs::online_scoring_config_id.eq(format!("osc-{id}")),
            online_scoring_configs::scorer_id.eq(format!("scorer-{id}")),
            online_scoring_configs::sample_rate.eq(0.5),
            online_scoring_configs::experiment_id.eq(id),
        )
    );
    insert!(
        conn,
        present,
        label_schemas,
        (
            label_schemas::schema_id.eq(format!("label-{id}")),
            label_schemas::experiment_id.eq(id),
            label_schemas::name.eq("quality"),
            label_schemas::type_.eq("feedback"),
            label_schemas::enable_comment.eq(false),
            label_schemas::input_type.eq("text"),
            label_schemas::input_config.eq("{}"),
            label_schemas::created_time.eq(now_ms()),
            label_schemas::last_update_time.eq(now_ms()),
            label_schemas::is_default.eq(false),
        )
    );
    insert!(
        conn,
        present,
        review_queues,
        (
            review_queues::queue_id.eq(format!("queue-{id}")),
            review_queues::experiment_id.eq(id),
            review_queues::name.eq("triage"),
            review_queues::queue_type.eq("trace"),
            review_queues::creation_time_ms.eq(now_ms()),
            review_queues::last_update_time_ms.eq(now_ms()),
            review_queues::name_key.eq(format!("triage-{id}")),
        )
    );
    insert!(
        conn,
        present,
        review_queue_users,
        (
            review_queue_users::queue_id.eq(format!("queue-{id}")),
            review_queue_users::user_id.eq("ann")
        )
    );
    insert!(
        conn,
        present,
        review_queue_label_schemas,
        (
            review_queue_label_schemas::queue_id.eq(format!("queue-{id}")),
            review_queue_label_schemas::schema_id.eq(format!("label-{id}")),
        )
    );
    insert!(
        conn,
        present,
        issues,
        (
            issues::issue_id.eq(format!("issue-{id}")),
            issues::experiment_id.eq(id),
            issues::name.eq("drift"),
            issues::description.eq("inputs drift"),
            issues::status.eq("open"),
            issues::created_timestamp.eq(now_ms()),
            issues::last_updated_timestamp.eq(now_ms()),
        )
    );
    insert!(
        conn,
        present,
        issue_categories,
        (
            issue_categories::issue_id.eq(format!("issue-{id}")),
            issue_categories::category_hash.eq("hash-of-quality"),
            issue_categories::category.eq("quality"),
        )
    );
    insert!(
        conn,
        present,
        entity_associations,
        (
            entity_associations::association_id.eq(format!("assoc-exp-{id}")),
            entity_associations::source_type.eq("evaluation_dataset"),
            entity_associations::source_id.eq("eval-ds"),
            entity_associations::destination_type.eq("experiment"),
            entity_associations::destination_id.eq(id.to_string()),
        )
    );
    // The rollup tables carry a DATE column the mirror maps without the chrono feature.
    if !present.contains("sql_trace_rollup_rebuild_queue") {
        return;
    }
    conn.batch_execute(&format!(
        "INSERT INTO sql_trace_metric_daily_rollups \
           (id, experiment_id, rollup_day, metric_name, grouping_set, sample_count) \
           VALUES ({id}, {id}, '2025-01-01', 'latency', 'all', 1); \
         INSERT INTO sql_trace_rollup_rebuild_queue (experiment_id, rollup_day, rollup_family) \
           VALUES ({id}, '2025-01-01', 'trace')"
    ))
    .expect("insert rollups");
}

/// A run with metrics, params, tags and a dataset input from its experiment's dataset.
pub fn run(
    conn: &mut DbConnection,
    experiment_id: i32,
    run_uuid: &str,
    deleted_at: Option<Option<i64>>,
) {
    let present = &present(conn);
    let stage = if deleted_at.is_some() { "deleted" } else { "active" };
    insert!(
        conn,
        present,
        runs,
        (
            runs::run_uuid.eq(run_uuid),
            runs::name.eq(format!("name-{run_uuid}")),
            runs::experiment_id.eq(experiment_id),
            runs::lifecycle_stage.eq(stage),
            runs::status.eq("FINISHED"),
            runs::start_time.eq(now_ms() - 200 * DAY_MS),
            runs::deleted_time.eq(deleted_at.flatten()),
            runs::artifact_uri.eq(format!("/mlruns/{experiment_id}/{run_uuid}/artifacts")),
        )
    );
    for step in 0..3_i64 {
        insert!(
            conn,
            present,
            metrics,
            (
                metrics::key.eq("loss"),
                metrics::value.eq(1.0 / (step + 1) as f64),
                metrics::timestamp.eq(now_ms() + step),
                metrics::run_uuid.eq(run_uuid),
                metrics::step.eq(step),
                metrics::is_nan.eq(false),
            )
        );
    }
    insert!(
        conn,
        present,
        latest_metrics,
        (
            latest_metrics::key.eq("loss"),
            latest_metrics::value.eq(1.0 / 3.0),
            latest_metrics::timestamp.eq(now_ms() + 2),
            latest_metrics::step.eq(2_i64),
            latest_metrics::is_nan.eq(false),
            latest_metrics::run_uuid.eq(run_uuid),
        )
    );
    insert!(
        conn,
        present,
        params,
        (params::key.eq("lr"), params::value.eq("0.1"), params::run_uuid.eq(run_uuid))
    );
    insert!(
        conn,
        present,
        tags,
        (tags::key.eq("mlflow.user"), tags::value.eq("ann"), tags::run_uuid.eq(run_uuid))
    );
    let input_uuid = format!("input-{run_uuid}");
    insert!(
        conn,
        present,
        inputs,
        (
            inputs::input_uuid.eq(&input_uuid),
            inputs::source_type.eq("DATASET"),
            inputs::source_id.eq(format!("ds-{experiment_id}")),
            inputs::destination_type.eq("RUN"),
            inputs::destination_id.eq(run_uuid),
        )
    );
    insert!(
        conn,
        present,
        input_tags,
        (
            input_tags::input_uuid.eq(&input_uuid),
            input_tags::name.eq("mlflow.data.context"),
            input_tags::value.eq("training")
        )
    );
    insert!(
        conn,
        present,
        entity_associations,
        (
            entity_associations::association_id.eq(format!("assoc-run-{run_uuid}")),
            entity_associations::source_type.eq("run"),
            entity_associations::source_id.eq(run_uuid),
            entity_associations::destination_type.eq("prompt_version"),
            entity_associations::destination_id.eq("prompts/1"),
        )
    );
}

/// A trace with everything that hangs off it. `source_run` goes into its metadata, as MLflow
/// records the run a trace was made in.
pub fn trace(conn: &mut DbConnection, experiment_id: i32, request_id: &str, source_run: &str) {
    let present = &present(conn);
    insert!(
        conn,
        present,
        trace_info,
        (
            trace_info::request_id.eq(request_id),
            trace_info::experiment_id.eq(experiment_id),
            trace_info::timestamp_ms.eq(now_ms()),
            trace_info::status.eq("OK"),
        )
    );
    insert!(
        conn,
        present,
        trace_tags,
        (trace_tags::key.eq("k"), trace_tags::value.eq("v"), trace_tags::request_id.eq(request_id))
    );
    insert!(
        conn,
        present,
        trace_request_metadata,
        (
            trace_request_metadata::key.eq("mlflow.sourceRun"),
            trace_request_metadata::value.eq(source_run),
            trace_request_metadata::request_id.eq(request_id),
        )
    );
    insert!(
        conn,
        present,
        trace_metrics,
        (
            trace_metrics::request_id.eq(request_id),
            trace_metrics::key.eq("tokens"),
            trace_metrics::value.eq(12.0)
        )
    );
    insert!(
        conn,
        present,
        spans,
        (
            spans::trace_id.eq(request_id),
            spans::experiment_id.eq(experiment_id),
            spans::span_id.eq("root"),
            spans::status.eq("OK"),
            spans::start_time_unix_nano.eq(now_ms() * 1_000_000),
            spans::content.eq("{}"),
        )
    );
    insert!(
        conn,
        present,
        span_metrics,
        (
            span_metrics::trace_id.eq(request_id),
            span_metrics::span_id.eq("root"),
            span_metrics::key.eq("latency")
        )
    );
    insert!(
        conn,
        present,
        assessments,
        (
            assessments::assessment_id.eq(format!("a-{request_id}")),
            assessments::trace_id.eq(request_id),
            assessments::name.eq("correct"),
            assessments::assessment_type.eq("feedback"),
            assessments::value.eq("true"),
            assessments::created_timestamp.eq(now_ms()),
            assessments::last_updated_timestamp.eq(now_ms()),
            assessments::source_type.eq("HUMAN"),
            assessments::valid.eq(true),
        )
    );
    insert!(
        conn,
        present,
        review_queue_items,
        (
            review_queue_items::queue_id.eq(format!("queue-{experiment_id}")),
            review_queue_items::item_type.eq("trace"),
            review_queue_items::item_id.eq(request_id),
            review_queue_items::status.eq("pending"),
            review_queue_items::creation_time_ms.eq(now_ms()),
            review_queue_items::last_update_time_ms.eq(now_ms()),
        )
    );
}

/// A logged model made by `source_run` (no foreign key), with metrics logged by `metric_run`.
pub fn logged_model(
    conn: &mut DbConnection,
    experiment_id: i32,
    model_id: &str,
    source_run: &str,
    metric_run: &str,
) {
    let present = &present(conn);
    insert!(
        conn,
        present,
        logged_models,
        (
            logged_models::model_id.eq(model_id),
            logged_models::experiment_id.eq(experiment_id),
            logged_models::name.eq("model"),
            logged_models::artifact_location
                .eq(format!("/mlruns/{experiment_id}/models/{model_id}")),
            logged_models::creation_timestamp_ms.eq(now_ms()),
            logged_models::last_updated_timestamp_ms.eq(now_ms()),
            logged_models::status.eq(2),
            logged_models::lifecycle_stage.eq("active"),
            logged_models::source_run_id.eq(source_run),
        )
    );
    insert!(
        conn,
        present,
        logged_model_params,
        (
            logged_model_params::model_id.eq(model_id),
            logged_model_params::experiment_id.eq(experiment_id),
            logged_model_params::param_key.eq("depth"),
            logged_model_params::param_value.eq("3"),
        )
    );
    insert!(
        conn,
        present,
        logged_model_tags,
        (
            logged_model_tags::model_id.eq(model_id),
            logged_model_tags::experiment_id.eq(experiment_id),
            logged_model_tags::tag_key.eq("stage"),
            logged_model_tags::tag_value.eq("dev"),
        )
    );
    insert!(
        conn,
        present,
        logged_model_metrics,
        (
            logged_model_metrics::model_id.eq(model_id),
            logged_model_metrics::metric_name.eq("auc"),
            logged_model_metrics::metric_timestamp_ms.eq(now_ms()),
            logged_model_metrics::metric_step.eq(0_i64),
            logged_model_metrics::metric_value.eq(0.9),
            logged_model_metrics::experiment_id.eq(experiment_id),
            logged_model_metrics::run_id.eq(metric_run),
        )
    );
    insert!(
        conn,
        present,
        inputs,
        (
            inputs::input_uuid.eq(format!("output-{model_id}")),
            inputs::source_type.eq("RUN_OUTPUT"),
            inputs::source_id.eq(metric_run),
            inputs::destination_type.eq("MODEL_OUTPUT"),
            inputs::destination_id.eq(model_id),
        )
    );
}

/// A skill of the registry (MLflow 3.18 on) with tags, an alias, and a live and a deleted
/// version: workspace-level, reached by nothing a purge deletes, so all of it stays.
fn skill(conn: &mut DbConnection) {
    let present = &present(conn);
    insert!(
        conn,
        present,
        skills,
        (skills::name.eq("summarize"), skills::created_at.eq(0), skills::last_updated_at.eq(0))
    );
    insert!(
        conn,
        present,
        skill_tags,
        (skill_tags::name.eq("summarize"), skill_tags::key.eq("team"), skill_tags::value.eq("a"))
    );
    for (version, status) in [(1, "deleted"), (2, "active")] {
        insert!(
            conn,
            present,
            skill_versions,
            (
                skill_versions::name.eq("summarize"),
                skill_versions::version.eq(version),
                skill_versions::status.eq(status),
                skill_versions::created_at.eq(0),
                skill_versions::last_updated_at.eq(0),
            )
        );
        insert!(
            conn,
            present,
            skill_version_tags,
            (
                skill_version_tags::name.eq("summarize"),
                skill_version_tags::version.eq(version),
                skill_version_tags::key.eq("k"),
            )
        );
    }
    insert!(
        conn,
        present,
        skill_aliases,
        (
            skill_aliases::name.eq("summarize"),
            skill_aliases::alias.eq("prod"),
            skill_aliases::version.eq(2)
        )
    );
}

/// A live store: two experiments with runs, a trace and a logged model each, and a skill. Some
/// live rows name runs that `deleted` adds later (no foreign key): they must survive the purge.
pub fn live(conn: &mut DbConnection) {
    skill(conn);
    for id in [1, 2] {
        experiment(conn, id, &format!("live-{id}"), None);
        run(conn, id, &format!("live-run-{id}a"), None);
        run(conn, id, &format!("live-run-{id}b"), None);
        trace(conn, id, &format!("live-trace-{id}"), &format!("gone-run-{id}"));
        logged_model(
            conn,
            id,
            &format!("live-model-{id}"),
            &format!("gone-run-{id}"),
            &format!("live-run-{id}a"),
        );
    }
}

/// What a purge must remove, added to [`live`]: deleted experiments 3 (deleted 60 days ago) and
/// 4 (10 days ago) with everything in them, and deleted runs in the live experiments: deleted
/// 60 days ago, 10 days ago, and at a time MLflow did not record.
pub fn deleted(conn: &mut DbConnection) {
    for (id, age_days) in [(3, 60), (4, 10)] {
        experiment(conn, id, &format!("doomed-{id}"), Some(now_ms() - age_days * DAY_MS));
        for suffix in ["a", "b", "c"] {
            run(
                conn,
                id,
                &format!("doomed-run-{id}{suffix}"),
                Some(Some(now_ms() - age_days * DAY_MS)),
            );
        }
        trace(conn, id, &format!("doomed-trace-{id}"), &format!("doomed-run-{id}a"));
        logged_model(
            conn,
            id,
            &format!("doomed-model-{id}"),
            &format!("doomed-run-{id}a"),
            &format!("doomed-run-{id}b"),
        );
    }
    run(conn, 1, "gone-run-1", Some(Some(now_ms() - 60 * DAY_MS)));
    run(conn, 2, "gone-run-2", Some(Some(now_ms() - 10 * DAY_MS)));
    run(conn, 1, "gone-run-undated", Some(None));
}

/// A new store on `backend` holding [`live`] and [`deleted`].
pub fn seeded_store(backend: Backend) -> (TestStore, DbConnection) {
    let store = TestStore::on(backend).unwrap();
    let mut conn = store.connect().unwrap();
    live(&mut conn);
    deleted(&mut conn);
    (store, conn)
}

/// One of each other kind MLflow lets grow, deleted (or finished) 60 and 10 days ago, and live:
/// logged models in live experiment 1, versions of registered model `rm`, webhooks, jobs, and
/// traces of live experiment 2 from 100 days ago and now. Ids say which is which: `old-*` go
/// with `--older-than 30d`, `new-*` and `live-*` stay.
pub fn other_kinds(conn: &mut DbConnection) {
    let present = &present(conn);
    let (old, new) = (now_ms() - 60 * DAY_MS, now_ms() - 10 * DAY_MS);
    for (id, stage, when) in [
        ("old-model", "deleted", old),
        ("new-model", "deleted", new),
        ("live-model", "active", old),
    ] {
        logged_model(conn, 1, id, "live-run-1a", "live-run-1a");
        diesel::update(logged_models::table.filter(logged_models::model_id.eq(id)))
            .set((
                logged_models::lifecycle_stage.eq(stage),
                logged_models::last_updated_timestamp_ms.eq(when),
            ))
            .execute(conn)
            .unwrap();
    }
    insert!(conn, present, registered_models, registered_models::name.eq("rm"));
    for (version, stage, when) in
        [(1, "Deleted_Internal", old), (2, "Deleted_Internal", new), (3, "None", old)]
    {
        insert!(
            conn,
            present,
            model_versions,
            (
                model_versions::name.eq("rm"),
                model_versions::version.eq(version),
                model_versions::current_stage.eq(stage),
                model_versions::last_updated_time.eq(when),
            )
        );
        insert!(
            conn,
            present,
            model_version_tags,
            (
                model_version_tags::name.eq("rm"),
                model_version_tags::version.eq(version),
                model_version_tags::key.eq("k"),
                model_version_tags::value.eq("v"),
            )
        );
    }
    for (id, deleted) in [("old-hook", Some(old)), ("new-hook", Some(new)), ("live-hook", None)] {
        insert!(
            conn,
            present,
            webhooks,
            (
                webhooks::webhook_id.eq(id),
                webhooks::name.eq(id),
                webhooks::url.eq("https://example.com/hook"),
                webhooks::deleted_timestamp.eq(deleted),
            )
        );
        insert!(
            conn,
            present,
            webhook_events,
            (
                webhook_events::webhook_id.eq(id),
                webhook_events::entity.eq("model_version"),
                webhook_events::action.eq("created"),
            )
        );
    }
    // Status 2 is SUCCEEDED, 1 RUNNING.
    for (id, status, when) in [("old-job", 2, old), ("new-job", 3, new), ("live-job", 1, old)] {
        insert!(
            conn,
            present,
            jobs,
            (
                jobs::id.eq(id),
                jobs::creation_time.eq(when),
                jobs::job_name.eq("evaluate"),
                jobs::params.eq("{}"),
                jobs::status.eq(status),
                jobs::retry_count.eq(0),
                jobs::last_update_time.eq(when),
            )
        );
        insert!(
            conn,
            present,
            job_locks,
            (
                job_locks::lock_key.eq(format!("lock-{id}")),
                job_locks::job_id.eq(id),
                job_locks::acquired_at.eq(when),
            )
        );
    }
    trace(conn, 2, "old-trace", "live-run-2a");
    diesel::update(trace_info::table.filter(trace_info::request_id.eq("old-trace")))
        .set(trace_info::timestamp_ms.eq(now_ms() - 100 * DAY_MS))
        .execute(conn)
        .unwrap();
    trace(conn, 2, "new-trace", "live-run-2a");
}
