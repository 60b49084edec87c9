//! `status`: exact counts per kind and per workspace, and the names deleted experiments hold.

use assert_cmd::Command;
use diesel::prelude::*;
use mlflow_janitor::status::{status, Deleted};

use crate::fixtures::{self, now_ms, DAY_MS};

#[test]
fn status_counts_each_kind_per_workspace() {
    let (store, mut conn) = fixtures::seeded_store(mlflow_janitor::Backend::Postgresql);
    // A second workspace with a deleted experiment, a deleted model version and an old trace.
    for statement in [
        "INSERT INTO workspaces (name) VALUES ('team-b')".to_owned(),
        format!(
            "INSERT INTO experiments (experiment_id, name, workspace, lifecycle_stage, last_update_time) \
             VALUES (5, 'doomed-b', 'team-b', 'deleted', {})",
            now_ms() - 5 * DAY_MS
        ),
        "INSERT INTO registered_models (name, workspace) VALUES ('m', 'team-b')".to_owned(),
        format!(
            "INSERT INTO model_versions (name, version, workspace, current_stage, last_updated_time) \
             VALUES ('m', 1, 'team-b', 'Deleted_Internal', {0}), ('m', 2, 'team-b', 'None', {0})",
            now_ms() - DAY_MS
        ),
        format!(
            "INSERT INTO trace_info (request_id, experiment_id, timestamp_ms, status, db_payload_generation) \
             VALUES ('old-live-trace', 1, {}, 'OK', 1)",
            now_ms() - 40 * DAY_MS
        ),
    ] {
        diesel::sql_query(&statement).execute(&mut conn).unwrap();
    }

    let schema = crate::schema(&mut conn);
    let status = status(&mut conn, &schema, None).unwrap();

    let names: Vec<&str> = status.workspaces.iter().map(|w| w.workspace.as_str()).collect();
    assert_eq!(names, ["default", "team-b"]);
    let default = &status.workspaces[0];
    assert_eq!(default.experiments.count, 2);
    assert!(default.experiments.oldest_ms.unwrap() <= now_ms() - 59 * DAY_MS);
    assert_eq!(default.runs.count, 9, "3 deleted runs of live experiments, 6 of deleted ones");
    assert_eq!(default.logged_models.count, 2);
    assert_eq!(default.model_versions, Deleted::default());
    assert_eq!(default.traces_of_deleted_experiments, 2);
    assert_eq!(default.live_traces_older_than_30d, 1);
    assert_eq!(default.live_traces_older_than_90d, 0);
    assert_eq!(default.names_held, ["doomed-3", "doomed-4"]);
    let team_b = &status.workspaces[1];
    assert_eq!(team_b.experiments.count, 1);
    assert_eq!(team_b.model_versions.count, 1);
    assert_eq!(team_b.names_held, ["doomed-b"]);

    let rows =
        |table: &str| status.purge_would_free.iter().find(|t| t.table == table).unwrap().rows;
    assert_eq!(rows("runs"), 9);
    assert_eq!(rows("metrics"), 27);
    assert_eq!(rows("experiments"), 3);

    // The same figures for people, and as JSON.
    let uri = store.uri().given().to_owned();
    let text = Command::cargo_bin("mlflow-janitor")
        .unwrap()
        .args(["status", "--backend-store-uri", &uri])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("names held by deleted experiments: doomed-3, doomed-4"), "{text}");
    let json = Command::cargo_bin("mlflow-janitor")
        .unwrap()
        .args(["status", "--output", "json", "--backend-store-uri", &uri])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["workspaces"][1]["names_held"][0], "doomed-b");
}
