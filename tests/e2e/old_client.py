"""The client of an older MLflow (1.30 on) against a store that mlflow-janitor purges.

    old_client.py seed   URI STATE_DIR   live and deleted experiments and runs; STATE_DIR/state.json
    old_client.py verify URI STATE_DIR   after the purge, with the same MLflow version: the store
                                         opens without a schema error, deleted runs are gone,
                                         live runs read back unchanged, deleted names are free
                                         and new runs can be logged.

Only the tracking API that MLflow 1.30 already had is used, so that every version runs it.
"""

import json
import sys
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


def new_experiment(client, name, state_dir):
    location = (Path(state_dir) / "artifacts" / name).resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def log_run(client, experiment_id, seed):
    run = client.create_run(experiment_id, tags={"team": f"t{seed}"})
    run_id = run.info.run_id
    for step in range(3):
        client.log_metric(run_id, "loss", 1.0 / (seed + step + 1), step=step, timestamp=1000 + step)
    client.log_param(run_id, "lr", str(0.1 * seed))
    client.set_terminated(run_id)
    return run_id


def canonical(client, run_id):
    run = client.get_run(run_id)
    return {
        "params": dict(run.data.params),
        "tags": {k: v for k, v in run.data.tags.items()},
        "metrics": dict(run.data.metrics),
        "history": [
            [m.step, m.value, m.timestamp] for m in client.get_metric_history(run_id, "loss")
        ],
        "status": run.info.status,
        "experiment_id": run.info.experiment_id,
    }


def seed(client, state_dir):
    live = new_experiment(client, "live", state_dir)
    kept = [log_run(client, live, seed) for seed in (1, 2)]
    gone = log_run(client, live, 3)
    client.delete_run(gone)
    doomed = new_experiment(client, "doomed", state_dir)
    doomed_runs = [log_run(client, doomed, seed) for seed in (4, 5)]
    client.delete_experiment(doomed)
    return {
        "live": {run_id: canonical(client, run_id) for run_id in kept},
        "gone": [gone, *doomed_runs],
        "doomed_name": "doomed",
    }


def verify(client, state_dir, state):
    problems = []
    for run_id, expected in state["live"].items():
        actual = canonical(client, run_id)
        if actual != expected:
            problems.append(f"live run {run_id} changed: {expected} != {actual}")
    for run_id in state["gone"]:
        try:
            client.get_run(run_id)
            problems.append(f"deleted run {run_id} is still there")
        except MlflowException:
            pass
    reused = new_experiment(client, state["doomed_name"], state_dir)
    log_run(client, reused, 6)
    names = {e.name for e in client.search_experiments()}
    if state["doomed_name"] not in names:
        problems.append("the reused name does not show in search_experiments")
    return problems


def main(argv):
    command, uri, state_dir = argv[1], argv[2], argv[3]
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    state_file = Path(state_dir) / "state.json"
    if command == "seed":
        state_file.write_text(json.dumps(seed(client, state_dir)))
        return 0
    problems = verify(client, state_dir, json.loads(state_file.read_text()))
    for problem in problems:
        print(problem)
    print(f"mlflow {mlflow.__version__}: {'FAILED' if problems else 'ok'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
