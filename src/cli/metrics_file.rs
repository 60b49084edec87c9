//! `--metrics-file`: a run's figures in Prometheus text format, for node_exporter's textfile
//! collector: the last purge's, or the backlog `status` found. Written to a temporary file and
//! renamed, so a scrape never reads half.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use mlflow_janitor::purge::Report;
use mlflow_janitor::status::{Deleted, Status};
use mlflow_janitor::{Error, Result};

const LAST_SUCCESS: &str = "mlflow_janitor_last_success_timestamp_seconds";

/// Where the file's new text is written before the rename.
fn temporary(path: &Path) -> std::path::PathBuf {
    path.with_extension("prom.tmp")
}

/// Checks, before any work, that the file can be written: its folder exists and takes a new file.
pub fn check_writable(path: &Path) -> Result<()> {
    let temporary = temporary(path);
    let created = std::fs::File::create(&temporary).and_then(|_| std::fs::remove_file(&temporary));
    created.map_err(|e| {
        Error::InvalidSettings(format!(
            "cannot write the metrics file {}: {e}. Nothing was touched",
            path.display()
        ))
    })
}

/// Gauges in Prometheus text format.
#[derive(Default)]
struct Gauges(String);

impl Gauges {
    fn gauge(&mut self, name: &str, help: &str, samples: &[(String, String)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(self.0, "{name}{labels} {value}");
        }
    }

    /// One sample without labels.
    fn single(&mut self, name: &str, help: &str, value: impl ToString) {
        self.gauge(name, help, &[(String::new(), value.to_string())]);
    }

    /// Written whole: to the temporary file, then renamed over the last.
    fn write(self, path: &Path) -> std::io::Result<()> {
        let temporary = temporary(path);
        std::fs::write(&temporary, self.0).and_then(|()| std::fs::rename(&temporary, path))
    }
}

/// A label value, escaped as the text format wants.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// A sample for a table, or `of="file"` for SQLite's file, with more labels after it.
fn of(part: &str, more: &str, value: u64) -> (String, String) {
    (format!("{{of=\"{}\"{more}}}", label(part)), value.to_string())
}

/// The last purge's figures. A failed run keeps the time of the last success: that is what an
/// alert watches.
pub fn write(path: &Path, report: &Report, error: Option<&Error>) -> std::io::Result<()> {
    let now = now();
    let last_success = match error {
        None => Some(now.to_string()),
        Some(_) => std::fs::read_to_string(path).ok().and_then(|old| {
            old.lines()
                .find_map(|l| l.strip_prefix(LAST_SUCCESS)?.trim().parse::<u64>().ok())
                .map(|t| t.to_string())
        }),
    };
    let mut gauges = Gauges::default();
    let entities: Vec<_> = report
        .entities
        .iter()
        .map(|(entity, n)| (format!("{{kind=\"{}\"}}", entity.name()), n.to_string()))
        .collect();
    gauges.gauge(
        "mlflow_janitor_entities_purged",
        "Entities purged by the last run, by kind.",
        &entities,
    );
    let rows: Vec<_> = report
        .rows_by_table
        .iter()
        .map(|(table, n)| (format!("{{table=\"{table}\"}}"), n.to_string()))
        .collect();
    gauges.gauge("mlflow_janitor_rows_purged", "Rows purged by the last run, by table.", &rows);
    if let Some(artifacts) = &report.artifacts {
        gauges.single(
            "mlflow_janitor_artifact_bytes_deleted",
            "Bytes of artifacts the last run deleted (--artifacts).",
            artifacts.bytes,
        );
        gauges.single(
            "mlflow_janitor_artifact_objects_deleted",
            "Artifact files or objects the last run deleted (--artifacts).",
            artifacts.objects,
        );
        gauges.single(
            "mlflow_janitor_entities_kept",
            "Entities the last run kept because their artifacts could not be deleted.",
            artifacts.kept.len(),
        );
    }
    if let Some(reclaimed) = &report.reclaim {
        gauges.single(
            "mlflow_janitor_bytes_reclaimed",
            "Bytes the last run's --reclaim returned to the filesystem (the store's files shrank).",
            reclaimed.bytes_returned,
        );
        gauges.single(
            "mlflow_janitor_bytes_reusable",
            "Bytes free inside the reclaimed tables' files after --reclaim, which the database \
             reuses for new rows (MySQL DATA_FREE, SQLite free pages; PostgreSQL: the dead rows \
             VACUUM cleared, estimated from n_dead_tup).",
            reclaimed.bytes_reusable,
        );
        let before =
            reclaimed.parts().map(|(part, c)| of(part, ",at=\"before_purge\"", c.before.bytes));
        let after =
            reclaimed.parts().map(|(part, c)| of(part, ",at=\"after_reclaim\"", c.after.bytes));
        let bytes: Vec<_> = before.chain(after).collect();
        gauges.gauge(
            "mlflow_janitor_reclaim_disk_bytes",
            "Disk taken by each table reclaimed (of=\"file\": the SQLite file), before the last \
             run's purge and after its --reclaim.",
            &bytes,
        );
    }
    gauges.single("mlflow_janitor_batches", "Batches committed by the last run.", report.batches);
    gauges.single(
        "mlflow_janitor_duration_seconds",
        "Duration of the last run's purge.",
        format!("{:.3}", report.duration_ms as f64 / 1000.0),
    );
    gauges.single("mlflow_janitor_last_run_timestamp_seconds", "When the last run ended.", now);
    gauges.single(
        "mlflow_janitor_last_run_exit_code",
        "Exit code of the last run (0: done).",
        error.map_or(0, Error::exit_status),
    );
    if let Some(last_success) = last_success {
        gauges.single(LAST_SUCCESS, "When a run last finished its job.", last_success);
    }
    gauges.write(path)
}

/// The backlog `status` found: what waits for the next purge, per kind and workspace.
pub fn write_status(path: &Path, status: &Status) -> std::io::Result<()> {
    let now_ms = now() as i64 * 1000;
    let mut counts = Vec::new();
    let mut ages = Vec::new();
    let mut names = Vec::new();
    for ws in &status.workspaces {
        let workspace = label(&ws.workspace);
        let kinds: [(&str, &Deleted); 4] = [
            ("experiment", &ws.experiments),
            ("run", &ws.runs),
            ("logged model", &ws.logged_models),
            ("model version", &ws.model_versions),
        ];
        for (kind, deleted) in kinds {
            let labels = format!("{{kind=\"{kind}\",workspace=\"{workspace}\"}}");
            counts.push((labels.clone(), deleted.count.to_string()));
            if let (Some(oldest), true) = (deleted.oldest_ms, deleted.count > 0) {
                ages.push((labels, ((now_ms - oldest).max(0) / 1000).to_string()));
            }
        }
        counts.push((
            format!("{{kind=\"trace\",workspace=\"{workspace}\"}}"),
            ws.traces_of_deleted_experiments.to_string(),
        ));
        names.push((format!("{{workspace=\"{workspace}\"}}"), ws.names_held.len().to_string()));
    }
    let mut gauges = Gauges::default();
    gauges.gauge(
        "mlflow_janitor_backlog_entities",
        "Soft-deleted entities waiting for a purge, by kind and workspace (runs include those of \
         deleted experiments; traces are those of deleted experiments).",
        &counts,
    );
    gauges.gauge(
        "mlflow_janitor_backlog_oldest_age_seconds",
        "Age of the oldest soft-deletion with a recorded time, by kind and workspace.",
        &ages,
    );
    gauges.gauge(
        "mlflow_janitor_names_held",
        "Experiment names that soft-deleted experiments keep taken, by workspace.",
        &names,
    );
    let rows: Vec<_> = status
        .purge_would_free
        .iter()
        .map(|table| (format!("{{table=\"{}\"}}", table.table), table.rows.to_string()))
        .collect();
    gauges.gauge(
        "mlflow_janitor_backlog_rows",
        "Rows a default purge would delete, by table.",
        &rows,
    );
    let estimates: Vec<_> = status
        .purge_would_free
        .iter()
        .filter_map(|table| {
            Some((format!("{{table=\"{}\"}}", table.table), table.approx_bytes?.to_string()))
        })
        .collect();
    gauges.gauge(
        "mlflow_janitor_backlog_bytes_estimate",
        "Bytes a default purge would free, by table, estimated from the database's statistics \
         (none on SQLite).",
        &estimates,
    );
    let bytes: Vec<_> =
        status.space.parts().map(|(part, space)| of(part, "", space.bytes)).collect();
    let free: Vec<_> =
        status.space.parts().map(|(part, space)| of(part, "", space.free_bytes)).collect();
    gauges.gauge(
        "mlflow_janitor_disk_bytes",
        "Disk taken by each table a purge deletes from (of=\"file\": the SQLite file).",
        &bytes,
    );
    gauges.gauge(
        "mlflow_janitor_reclaimable_bytes",
        "Of that, what holds no live row: MySQL DATA_FREE, SQLite free pages (purge --reclaim \
         returns them), PostgreSQL dead rows estimated from n_dead_tup (VACUUM makes them \
         reusable).",
        &free,
    );
    gauges.single("mlflow_janitor_status_timestamp_seconds", "When status last ran.", now());
    gauges.write(path)
}
