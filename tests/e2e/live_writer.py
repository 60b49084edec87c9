"""A tracking client that keeps writing while mlflow-janitor purges the same store.

    live_writer.py URI STATE_DIR SECONDS

Logs runs with metrics, params and tags into a live experiment for SECONDS, then reads every
one of them back. Exits non-zero on any error, or if a row it wrote is missing or changed.
"""

import sys
import time
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient


def main(argv):
    uri, state_dir, seconds = argv[1], argv[2], float(argv[3])
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    location = (Path(state_dir) / "artifacts" / "writer").resolve().as_uri()
    experiment_id = client.create_experiment("live-writer", artifact_location=location)
    written = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run_id = client.create_run(experiment_id).info.run_id
        for step in range(5):
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
        client.log_param(run_id, "n", str(len(written)))
        client.set_tag(run_id, "writer", "yes")
        client.set_terminated(run_id)
        written[run_id] = str(len(written))
    for run_id, n in written.items():
        run = client.get_run(run_id)
        history = client.get_metric_history(run_id, "loss")
        if run.data.params.get("n") != n or len(history) != 5 or run.info.lifecycle_stage != "active":
            print(f"run {run_id} changed: {run}")
            return 1
    print(f"wrote and read back {len(written)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
