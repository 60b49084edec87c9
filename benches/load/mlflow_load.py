"""One process of the tracking load `cargo bench --bench load` runs beside a purge.

    mlflow_load.py TRACKING_URI EXPERIMENT_ID STOP_FILE OUT

Logs to the store as MLflow's own client does: a run of its own in a live experiment, then in a
loop `log_batch` (10 metrics and a new param) to it, and a new run every 20 batches, until
STOP_FILE exists. Writes one
line per call to OUT, `start_unix_s duration_s kind`, and at the end a line `written RUNS
METRICS PARAMS ERRORS`: what it logged, so that the bench can check that every row is there.
"""

import os
import sys
import time

import mlflow
from mlflow.entities import Metric, Param


def main():
    uri, experiment_id, stop_file, out = sys.argv[1:5]
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs, metrics, params, errors = [], 0, 0, 0
    with open(out, "w") as lines:

        def timed(kind, call):
            nonlocal errors
            started = time.time()
            try:
                result, ok = call(), True
            except Exception as error:  # every failure counts: the bench reports them
                result, ok = None, False
                errors += 1
                print(f"{kind}: {error}", file=sys.stderr)
            lines.write(f"{started:.6f} {time.time() - started:.6f} {kind}\n")
            lines.flush()
            return ok, result

        step = 0
        while not os.path.exists(stop_file):
            if step % 20 == 0:
                ok, run = timed("create_run", lambda: client.create_run(experiment_id))
                if ok:
                    runs.append(run.info.run_id)
            if runs:
                now = int(time.time() * 1000)
                batch_metrics = [Metric(f"m{k}", step * 0.5 + k, now, step) for k in range(10)]
                batch_params = [Param(f"p{step}", str(step))]
                ok, _ = timed(
                    "log_batch",
                    lambda: client.log_batch(runs[-1], metrics=batch_metrics, params=batch_params),
                )
                if ok:
                    metrics += len(batch_metrics)
                    params += len(batch_params)
            step += 1
        lines.write(f"written {len(runs)} {metrics} {params} {errors}\n")
        lines.write("runs " + " ".join(runs) + "\n")


if __name__ == "__main__":
    main()
