"""The pytest fixture of the README, and two tests that need a real reset between them.

Run by the Rust end-to-end suite with `mlflow-janitor` on PATH; the fixture is the README's,
verbatim from `import os` to the tests' banner.
"""

import os
import subprocess
import uuid

import mlflow
import psycopg2
import pytest

SERVER = os.environ.get("MLFLOW_TEST_SERVER", "postgresql://postgres@127.0.0.1:5432")


def janitor(*args):
    subprocess.run(["mlflow-janitor", *args], check=True)


@pytest.fixture(scope="session")
def mlflow_store_uri():
    """A new MLflow store for the test session, dropped at its end."""
    name = f"mlflow_test_{uuid.uuid4().hex[:12]}"
    janitor("init", "--backend-store-uri", f"{SERVER}/{name}")
    yield f"{SERVER}/{name}"
    admin = psycopg2.connect(f"{SERVER}/postgres")
    admin.autocommit = True
    admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


@pytest.fixture
def mlflow_store(mlflow_store_uri, monkeypatch):
    """Each test starts from a clean store: experiment 0 `Default` and nothing else."""
    janitor("reset", "--backend-store-uri", mlflow_store_uri, "--yes")
    mlflow.set_tracking_uri(mlflow_store_uri)
    # The client caches what the reset cannot reach; forget it too.
    mlflow.set_experiment(experiment_id="0")  # an earlier test's active experiment
    mlflow.clear_active_model()
    monkeypatch.setenv("MLFLOW_VERSION_PROMPT_CACHE_TTL_SECONDS", "0")  # prompts by version
    monkeypatch.setenv("MLFLOW_ALIAS_PROMPT_CACHE_TTL_SECONDS", "0")  # and by alias
    yield mlflow_store_uri
    mlflow.end_run()  # a failed test may leave its run active


# ----------------------------------------------------------------------------
# Tests of the fixture above, with the real MLflow client. Both tests use the
# same experiment name and expect the same ids: that only works if the reset
# between them really empties the store and restarts its sequences.

# Reached through `mlflow` so the README fixture's imports above stay verbatim.
MlflowClient = mlflow.MlflowClient
ViewType = mlflow.entities.ViewType

SHARED = "shared-name"


def all_experiments():
    """(id, name, stage) of every experiment, deleted ones included."""
    experiments = MlflowClient().search_experiments(view_type=ViewType.ALL)
    return sorted((e.experiment_id, e.name, e.lifecycle_stage) for e in experiments)


def assert_clean_store():
    """The state every test must start from, whichever test ran before."""
    assert all_experiments() == [("0", "Default", "active")]
    assert MlflowClient().search_registered_models() == []


def create_experiment(name, tmp_path):
    """Creates an experiment whose artifacts would land in tmp_path, not the cwd."""
    return mlflow.create_experiment(name, artifact_location=(tmp_path / name).as_uri())


def log_run(experiment_id, value):
    """Logs a run with one metric and one param; returns its id."""
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric("score", value, step=0)
        mlflow.log_param("value", str(value))
    return run.info.run_id


def test_a_fills_the_store(mlflow_store, tmp_path):
    assert_clean_store()

    experiment_id = create_experiment(SHARED, tmp_path)
    assert experiment_id == "1"
    run_id = log_run(experiment_id, 0.5)
    run = MlflowClient().get_run(run_id)
    assert run.data.metrics == {"score": 0.5}
    assert run.data.params == {"value": "0.5"}

    doomed = create_experiment("doomed", tmp_path)
    assert doomed == "2"
    mlflow.delete_experiment(doomed)
    assert all_experiments() == [
        ("0", "Default", "active"),
        ("1", SHARED, "active"),
        ("2", "doomed", "deleted"),
    ]


def test_b_starts_clean_after_a(mlflow_store, tmp_path):
    # test_a (if it ran first) left "shared-name", a run and a deleted experiment.
    assert mlflow.get_experiment_by_name(SHARED) is None
    assert_clean_store()

    experiment_id = create_experiment(SHARED, tmp_path)
    assert experiment_id == "1"
    run_id = log_run(experiment_id, 0.25)
    runs = MlflowClient().search_runs([experiment_id])
    assert [r.info.run_id for r in runs] == [run_id]
    assert runs[0].data.metrics == {"score": 0.25}
