"""Seeds an MLflow SQL store with live and soft-deleted data, then checks a purge.

Driven by the Rust end-to-end tests, with the real MLflow client:

    python mlflow_store.py seed            <STORE_URI> <STATE_DIR>
    python mlflow_store.py verify          <STORE_URI> <STATE_DIR>
    python mlflow_store.py seed-every-kind <STORE_URI> <STATE_DIR>
    python mlflow_store.py check-fresh     <STORE_URI> <STATE_DIR>
    python mlflow_store.py fingerprint     <STORE_URI> <STATE_DIR>
    python mlflow_store.py check-restored  <STORE_URI> <STATE_DIR>
    python mlflow_store.py add-bulk        <STORE_URI> <STATE_DIR>

`seed` expects an empty, upgraded store. It logs live and doomed data, deletes
the doomed part, and writes STATE_DIR/expected.json: what must be gone and a
canonical snapshot of everything that must survive. From MLflow 3.18 on, the
data includes issues with categories (one live, one in a deleted experiment)
and a skill with tags, an alias and a deleted version (workspace-level: live).
`verify` runs after the purge and exits non-zero, naming each failed check,
unless the deleted data is gone, the live data is unchanged and the store still
takes new writes.

`fingerprint` runs after `seed` and writes STATE_DIR/deleted.json: canonical
forms of the deleted experiments and of their runs, traces and logged models,
and of the deleted run of a live experiment. `check-restored` runs after a
purge with an archive and a restore: the deleted entities read back equal to
their fingerprint, MLflow's own restore calls bring them back to life, their
names are held again, and the live data is unchanged.

`add-bulk` runs after `seed`: it logs 40 more runs to live-a, each with a
metric history of 2,000 steps, deletes every other one, and adds them to
expected.json, so that a purge frees whole pages of the store.

`seed-every-kind` does what `seed` does, then adds one of each registry kind
(registered model, model versions, version tag, alias, prompt, webhook), so a
`reset` has every kind of row to empty. `check-fresh` runs after a reset and
exits non-zero unless the store looks just created: only experiment 0
`Default`, no registry data, and the next experiment gets id 1.
"""

import json
import os
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

import mlflow
from packaging.version import Version

from mlflow import MlflowClient
from mlflow.entities import Metric, ViewType
from mlflow.entities.webhook import WebhookEntity, WebhookEvent
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

LIVE_EXPERIMENTS = ("live-a", "live-b")
EXPECTED_FILE = "expected.json"
# Issue categories and the skill registry came with MLflow 3.18.
HAS_SKILLS = Version(mlflow.__version__) >= Version("3.18")
SKILL = "e2e-skill"


# ---------------------------------------------------------------- seeding


def create_experiment(name, state_dir, tags=None):
    """Creates an experiment whose artifacts land under STATE_DIR, not the cwd."""
    location = (Path(state_dir) / "artifacts" / name).resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=location, tags=tags)


def start_experiment(name, state_dir, tags=None):
    """Creates an experiment and makes it active, so runs and traces log into it."""
    experiment_id = create_experiment(name, state_dir, tags)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def log_dataset(rows, context):
    """Logs a small pandas dataset as an input of the active run."""
    # Float columns: integer ones make MLflow warn about missing values.
    x = np.arange(rows, dtype=np.float64)
    frame = pd.DataFrame({"x": x, "y": x * 2.0})
    dataset = mlflow.data.from_pandas(frame, name=f"data-{rows}", targets="y")
    mlflow.log_input(dataset, context=context, tags={"origin": "e2e"})


def log_run(name, seed):
    """Logs one finished run with params, tags, stepped metrics and a dataset."""
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params({"lr": str(0.1 * seed), "layers": str(seed), "name": name})
        mlflow.set_tags({"team": "janitor", "seed": str(seed)})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (seed + step + 1), step=step)
            mlflow.log_metric("accuracy", 0.5 + 0.1 * step, step=step)
        mlflow.log_metric("final", float(seed))
        log_dataset(rows=seed + 3, context="training")
    return run.info.run_id


def log_trace(name, feedback=False):
    """Logs a two-span trace with a tag (and optionally an assessment)."""

    @mlflow.trace(name=name)
    def outer(x):
        with mlflow.start_span(name=f"{name}-inner") as span:
            span.set_inputs({"x": x})
            span.set_outputs({"y": x + 1})
        return x + 1

    outer(1)
    trace_id = mlflow.get_last_active_trace_id()
    # Trace export is asynchronous; the trace must be stored before tagging it.
    mlflow.flush_trace_async_logging()
    mlflow.set_trace_tag(trace_id, "purpose", name)
    if feedback:
        mlflow.log_feedback(trace_id=trace_id, name="quality", value=0.9, rationale="seeded")
    return trace_id


def log_model(experiment_id, name, run_id=None):
    """Creates a logged model with params; with a run, also a model metric."""
    model = mlflow.initialize_logged_model(
        name=name, experiment_id=experiment_id, source_run_id=run_id, tags={"kind": "e2e"}
    )
    mlflow.log_model_params({"alpha": "0.5", "model": name}, model_id=model.model_id)
    if run_id:
        mlflow.log_metric("model_score", 0.75, run_id=run_id, model_id=model.model_id)
    return model.model_id


def log_issue(experiment_id, name, run_id=None):
    """An issue with two categories (MLflow 3.18 on)."""
    if HAS_SKILLS:
        mlflow.genai.create_issue(
            name,
            severity="high",
            description=f"{name}, seeded",
            categories=["quality", f"{name}-category"],
            source_run_id=run_id,
            experiment_id=experiment_id,
        )


def seed_skill():
    """A skill with a tag, two versions (the first deleted), a version tag and an alias."""
    from mlflow.entities import GitSource  # MLflow 3.18 on

    client = MlflowClient()
    client.create_skill(name=SKILL, description="seeded by mlflow_store.py")
    client.set_skill_tag(name=SKILL, key="team", value="janitor")
    for ref in ("v1", "v2"):
        # Only recorded: nothing is fetched from the source.
        source = GitSource(url="https://example.com/skills.git", ref=ref)
        version = client.create_skill_version(name=SKILL, source=source).version
    client.set_skill_version_tag(name=SKILL, version=version, key="stage", value="prod")
    client.set_skill_alias(name=SKILL, alias="champion", version=version)
    # An active version is deprecated before it may be deleted.
    client.update_skill_version(name=SKILL, version=1, status="deprecated")
    client.delete_skill_version(name=SKILL, version=1)


def seed_live_a(state_dir):
    """live-a: three live runs, one deleted run, a logged model, a trace and an issue."""
    experiment_id = start_experiment("live-a", state_dir)
    runs = [log_run(f"live-a-{seed}", seed) for seed in range(1, 4)]
    deleted_run = log_run("live-a-deleted", 9)
    mlflow.delete_run(deleted_run)
    log_model(experiment_id, "live-a-model")
    log_trace("live-a-trace")
    log_issue(experiment_id, "live-a-issue", run_id=runs[0])
    return [deleted_run]


def seed_live_b(state_dir):
    """live-b: two plain live runs."""
    start_experiment("live-b", state_dir)
    for seed in range(1, 3):
        log_run(f"live-b-{seed}", seed)


def seed_doomed_1(state_dir):
    """doomed-1: runs, a traced run with feedback and a model; then deleted."""
    experiment_id = start_experiment("doomed-1", state_dir, tags={"fate": "purge"})
    runs = [log_run(f"doomed-1-{seed}", seed) for seed in (1, 2)]
    with mlflow.start_run(run_id=runs[0]):
        # Inside the run so the trace and model are linked to it, as in real use.
        log_trace("doomed-1-trace", feedback=True)
        log_model(experiment_id, "doomed-1-model", run_id=runs[0])
    log_issue(experiment_id, "doomed-1-issue", run_id=runs[0])
    mlflow.delete_experiment(experiment_id)
    return runs


def seed_doomed_2(state_dir):
    """doomed-2: a single run, with NaN and infinite metric values; then deleted."""
    experiment_id = start_experiment("doomed-2", state_dir)
    runs = [log_run("doomed-2-1", 1)]
    for step, value in enumerate([float("nan"), float("inf"), float("-inf"), -0.0, 1e-300]):
        mlflow.log_metric("edge", value, step=step, run_id=runs[0])
    mlflow.delete_experiment(experiment_id)
    return runs


def seed_store(state_dir):
    deleted_runs = seed_live_a(state_dir)
    seed_live_b(state_dir)
    deleted_runs += seed_doomed_1(state_dir)
    deleted_runs += seed_doomed_2(state_dir)
    if HAS_SKILLS:
        seed_skill()
    expected = {
        "deleted_experiments": ["doomed-1", "doomed-2"],
        "deleted_runs": deleted_runs,
        **snapshot_live(MlflowClient()),
    }
    path = Path(state_dir) / EXPECTED_FILE
    path.write_text(json.dumps(expected, indent=2, sort_keys=True))
    print(
        f"seeded: {len(expected['live_runs'])} live runs, {len(deleted_runs)} deleted runs, "
        f"{len(expected['live_traces'])} live traces, {len(expected['live_models'])} live models, "
        f"{len(expected.get('live_issues', {}))} live issues, "
        f"{len(expected.get('live_skills', {}))} skills"
    )


def add_bulk(state_dir, runs=40, steps=2000):
    client = MlflowClient()
    experiment_id = client.get_experiment_by_name("live-a").experiment_id
    deleted = []
    for i in range(runs):
        run_id = client.create_run(experiment_id, run_name=f"bulk-{i:02d}").info.run_id
        now = int(time.time() * 1000)
        history = [Metric("loss", 1.0 / (step + 1), now + step, step) for step in range(steps)]
        for start in range(0, steps, 1000):  # log_batch takes at most 1,000 metrics
            client.log_batch(run_id, metrics=history[start : start + 1000])
        client.set_terminated(run_id)
        if i % 2:
            client.delete_run(run_id)
            deleted.append(run_id)
    path = Path(state_dir) / EXPECTED_FILE
    expected = json.loads(path.read_text())
    expected["deleted_runs"] += deleted
    expected.update(snapshot_live(client))
    path.write_text(json.dumps(expected, indent=2, sort_keys=True))
    print(f"added {runs} runs of {steps} metric steps, {len(deleted)} of them deleted")


# ------------------------------------------------------- seeding every kind

REGISTERED_MODEL = "every-kind-model"
PROMPT = "every-kind-prompt"
WEBHOOK = "every-kind-hook"
# Port 9 (discard): nothing listens, and a reset test must never call out anyway.
WEBHOOK_URL = "http://127.0.0.1:9/hook"


def model_source(state_dir, version):
    """A model-version source under STATE_DIR, so nothing lands in the cwd."""
    path = Path(state_dir) / "registry" / f"v{version}"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve().as_uri()


def live_a_origins(client):
    """A live run and the logged model of live-a, as model-version origins."""
    experiment_id = client.get_experiment_by_name("live-a").experiment_id
    run = client.search_runs([experiment_id], max_results=1)[0]
    model = client.search_logged_models(experiment_ids=[experiment_id], max_results=1)[0]
    return run.info.run_id, model.model_id


def seed_registered_model(client, state_dir):
    """A registered model with two versions, a version tag and an alias."""
    run_id, model_id = live_a_origins(client)
    client.create_registered_model(REGISTERED_MODEL, tags={"kind": "e2e"})
    # Version 1 is linked to a logged model, version 2 to a run: both origins occur.
    client.create_model_version(REGISTERED_MODEL, model_source(state_dir, 1), model_id=model_id)
    client.create_model_version(REGISTERED_MODEL, model_source(state_dir, 2), run_id=run_id)
    client.set_model_version_tag(REGISTERED_MODEL, "2", "stage", "candidate")
    client.set_registered_model_alias(REGISTERED_MODEL, "champion", "1")


def seed_prompt():
    """A prompt (a registered model tagged as prompt, with one version)."""
    mlflow.genai.register_prompt(
        name=PROMPT, template="Answer {{question}} briefly.", commit_message="seeded"
    )


def seed_webhook(client):
    """An active webhook on one event for each of the models and prompts."""
    # MLflow 3.17.2 accepts only https URLs to public hosts by default; this
    # process may register an unreachable loopback URL instead.
    os.environ["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"] = "http,https"
    os.environ["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] = "true"
    client.create_webhook(
        name=WEBHOOK,
        url=WEBHOOK_URL,
        events=[
            WebhookEvent(WebhookEntity.MODEL_VERSION, "created"),
            WebhookEvent(WebhookEntity.PROMPT_VERSION, "created"),
        ],
        description="seeded by mlflow_store.py; never reachable",
    )


def seed_every_kind(state_dir):
    # Jobs are skipped: MLflow 3.17.2 creates them only server-side
    # (mlflow.server.jobs.submit_job needs a job-running server), no client API.
    seed_store(state_dir)
    client = MlflowClient()
    seed_registered_model(client, state_dir)
    seed_prompt()
    seed_webhook(client)
    models = client.search_registered_models()
    versions = client.search_model_versions(f"name = '{REGISTERED_MODEL}'")
    prompts = mlflow.genai.search_prompts()
    webhooks = client.list_webhooks()
    print(
        f"seeded every kind: {len(models)} registered models, {len(versions)} model versions, "
        f"1 model-version tag, 1 alias, {len(prompts)} prompts, {len(webhooks)} webhooks, 0 jobs"
    )


# ------------------------------------------------------------ snapshotting


def canonical_run(client, run_id):
    """Everything a purge must leave untouched on a live run, in a stable order."""
    run = client.get_run(run_id)
    info = run.info
    return {
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "name": info.run_name,
        "status": info.status,
        "lifecycle_stage": info.lifecycle_stage,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "params": dict(sorted(run.data.params.items())),
        "tags": dict(sorted(run.data.tags.items())),
        "metrics": {
            key: sorted(
                [m.step, m.timestamp, m.value] for m in client.get_metric_history(run_id, key)
            )
            for key in sorted(run.data.metrics)
        },
        "inputs": sorted(
            (
                {
                    "name": d.dataset.name,
                    "digest": d.dataset.digest,
                    "tags": {t.key: t.value for t in d.tags},
                }
                for d in run.inputs.dataset_inputs
            ),
            key=lambda d: (d["name"], d["digest"]),
        ),
    }


def canonical_trace(client, trace_id):
    """A trace's identity, tags and span names."""
    trace = client.get_trace(trace_id)
    return {
        "experiment_id": trace.info.experiment_id,
        "state": str(trace.info.state),
        "tags": dict(sorted(trace.info.tags.items())),
        "spans": sorted(span.name for span in trace.data.spans),
    }


def canonical_model(client, model_id):
    """A logged model's experiment, name and params."""
    model = client.get_logged_model(model_id)
    return {
        "experiment_id": model.experiment_id,
        "name": model.name,
        "params": dict(sorted(model.params.items())),
    }


def canonical_issue(issue):
    """An issue's experiment, name, status, source run and categories."""
    return {
        "experiment_id": issue.experiment_id,
        "name": issue.name,
        "status": str(issue.status),
        "source_run_id": issue.source_run_id,
        "categories": sorted(issue.categories or []),
    }


def canonical_skill(client, name):
    """A skill's tags and latest version, and each version the client shows (deleted ones
    are hidden) with its status, tags and aliases."""
    skill = client.get_skill(name=name)
    versions = {
        str(v.version): {
            "status": str(v.status),
            "tags": dict(sorted(v.tags.items())),
            "aliases": sorted(v.aliases),
        }
        for v in client.search_skill_versions(name=name)
    }
    return {
        "tags": dict(sorted(skill.tags.items())),
        "latest_version": skill.latest_version,
        "versions": versions,
    }


def live_experiment_ids(client):
    return [client.get_experiment_by_name(name).experiment_id for name in LIVE_EXPERIMENTS]


def snapshot_live(client):
    """Canonical forms of every live run, trace and logged model."""
    experiment_ids = live_experiment_ids(client)
    runs = client.search_runs(experiment_ids, run_view_type=ViewType.ACTIVE_ONLY)
    traces = client.search_traces(locations=experiment_ids)
    models = client.search_logged_models(experiment_ids=experiment_ids)
    live = {
        "live_runs": {r.info.run_id: canonical_run(client, r.info.run_id) for r in runs},
        "live_traces": {
            t.info.trace_id: canonical_trace(client, t.info.trace_id) for t in traces
        },
        "live_models": {m.model_id: canonical_model(client, m.model_id) for m in models},
    }
    if HAS_SKILLS:
        live["live_issues"] = {
            i.issue_id: canonical_issue(i)
            for experiment_id in experiment_ids
            for i in mlflow.genai.search_issues(experiment_id=experiment_id)
        }
        live["live_skills"] = {SKILL: canonical_skill(client, SKILL)}
    return live


# --------------------------------------------------------------- verifying


def check_names_free(expected, state_dir):
    """Each deleted experiment's name can be taken again: its row is gone."""
    for name in expected["deleted_experiments"]:
        try:
            create_experiment(name, state_dir)
        except MlflowException as err:
            return f"name {name!r} still taken: {err.message.splitlines()[0]}"
    return None


def check_runs_gone(expected):
    """get_run on each deleted run says RESOURCE_DOES_NOT_EXIST."""
    client = MlflowClient()
    for run_id in expected["deleted_runs"]:
        try:
            client.get_run(run_id)
        except MlflowException as err:
            if err.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                return f"run {run_id}: unexpected error {err.error_code}: {err.message}"
            continue
        return f"deleted run {run_id} still exists"
    return None


def diff(kind, expected, actual):
    """Names the first field that differs between two id -> canonical-dict maps."""
    if expected.keys() != actual.keys():
        return (
            f"{kind}: missing {sorted(expected.keys() - actual.keys())}, "
            f"extra {sorted(actual.keys() - expected.keys())}"
        )
    for key in sorted(expected):
        for field, value in expected[key].items():
            if actual[key].get(field) != value:
                return (
                    f"{kind} {key} field {field!r} changed:\n"
                    f"  expected {value}\n  actual   {actual[key].get(field)}"
                )
    return None


def check_live_unchanged(expected):
    """Live runs, traces, models, issues and skills re-read exactly as seeded."""
    # Round-trip through JSON so tuples and lists compare as in the file.
    actual = json.loads(json.dumps(snapshot_live(MlflowClient())))
    for kind in sorted(kind for kind in expected if kind.startswith("live_")):
        problem = diff(kind, expected[kind], actual[kind])
        if problem:
            return problem
    return None


def check_store_writable(state_dir):
    """A new experiment and run can still log a metric."""
    experiment_id = create_experiment(f"after-purge-{uuid.uuid4().hex[:8]}", state_dir)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric("alive", 1.0, step=0)
    history = MlflowClient().get_metric_history(run.info.run_id, "alive")
    if [(m.value, m.step) for m in history] != [(1.0, 0)]:
        return f"metric read back as {history}"
    return None


def verify_store(state_dir):
    expected = json.loads((Path(state_dir) / EXPECTED_FILE).read_text())
    checks = [
        ("deleted experiment names are free", lambda: check_names_free(expected, state_dir)),
        ("deleted runs are gone", lambda: check_runs_gone(expected)),
        ("live data unchanged", lambda: check_live_unchanged(expected)),
        ("store still writable", lambda: check_store_writable(state_dir)),
    ]
    return run_checks("verify", checks)


def run_checks(command, checks):
    """Runs (label, check) pairs in order, prints each outcome; returns the failures."""
    failed = 0
    for label, check in checks:
        try:
            problem = check()
        except Exception as err:  # an unexpected error fails this check, not the rest
            problem = f"{type(err).__name__}: {err}"
        print(f"{'FAIL' if problem else 'ok  '} {label}" + (f": {problem}" if problem else ""))
        failed += bool(problem)
    summary = f"{failed} of {len(checks)} checks failed" if failed else "all checks passed"
    print(f"{command}: {summary}")
    return failed


# ------------------------------------------------------- checking a reset


def check_only_default():
    """search_experiments(ALL) is exactly experiment 0 `Default`."""
    experiments = MlflowClient().search_experiments(view_type=ViewType.ALL)
    found = [(e.experiment_id, e.name, e.lifecycle_stage) for e in experiments]
    if found != [("0", "Default", "active")]:
        return f"expected only ('0', 'Default', 'active'), found {found}"
    return None


def check_registry_empty():
    """No registered models, prompts or webhooks are left."""
    client = MlflowClient()
    left = {
        "registered models": [m.name for m in client.search_registered_models()],
        "prompts": [p.name for p in mlflow.genai.search_prompts()],
        "webhooks": [w.name for w in client.list_webhooks()],
    }
    leftovers = {kind: names for kind, names in left.items() if names}
    return f"left over: {leftovers}" if leftovers else None


def check_next_experiment_id(state_dir):
    """The id sequence restarted: a new experiment gets id 1 and takes a metric."""
    experiment_id = create_experiment(f"fresh-{uuid.uuid4().hex[:8]}", state_dir)
    if experiment_id != "1":
        return f"new experiment got id {experiment_id!r}, expected '1'"
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_metric("fresh", 1.0, step=0)
    history = MlflowClient().get_metric_history(run.info.run_id, "fresh")
    if [(m.value, m.step) for m in history] != [(1.0, 0)]:
        return f"metric read back as {history}"
    return None


def check_fresh_store(state_dir):
    # Order matters: the last check writes, so the read-only ones go first.
    checks = [
        ("only experiment 0 Default", check_only_default),
        ("registry is empty", check_registry_empty),
        ("next experiment is id 1 and writable", lambda: check_next_experiment_id(state_dir)),
    ]
    return run_checks("check-fresh", checks)


# ------------------------------------------------------ archive and restore

DELETED_FILE = "deleted.json"


def fingerprint_deleted(client, expected):
    """Canonical forms of what the seed deleted: the experiments with their runs, traces and
    logged models, and the deleted run of a live experiment. Metric values as their repr, so
    that NaN compares equal to itself."""
    experiments = [client.get_experiment_by_name(name) for name in expected["deleted_experiments"]]
    ids = [e.experiment_id for e in experiments]
    runs = client.search_runs(ids, run_view_type=ViewType.ALL)
    run_ids = sorted({r.info.run_id for r in runs} | set(expected["deleted_runs"]))
    fingerprint = {
        "experiments": {
            e.name: {
                "experiment_id": e.experiment_id,
                "lifecycle_stage": e.lifecycle_stage,
                "artifact_location": e.artifact_location,
                "tags": dict(sorted(e.tags.items())),
                "creation_time": e.creation_time,
            }
            for e in experiments
        },
        "runs": {run_id: canonical_run(client, run_id) for run_id in run_ids},
        "traces": {
            t.info.trace_id: canonical_trace(client, t.info.trace_id)
            for t in client.search_traces(locations=ids)
        },
        "models": {
            m.model_id: canonical_model(client, m.model_id)
            for m in client.search_logged_models(experiment_ids=ids)
        },
    }
    for run in fingerprint["runs"].values():
        run["metrics"] = {
            key: [[step, ts, repr(value)] for step, ts, value in history]
            for key, history in run["metrics"].items()
        }
    return json.loads(json.dumps(fingerprint))


def write_fingerprint(state_dir):
    expected = json.loads((Path(state_dir) / EXPECTED_FILE).read_text())
    fingerprint = fingerprint_deleted(MlflowClient(), expected)
    (Path(state_dir) / DELETED_FILE).write_text(json.dumps(fingerprint, indent=2, sort_keys=True))
    print(
        f"fingerprinted: {len(fingerprint['experiments'])} experiments, "
        f"{len(fingerprint['runs'])} runs, {len(fingerprint['traces'])} traces, "
        f"{len(fingerprint['models'])} models"
    )


def check_restored_as_fingerprinted(expected, fingerprint):
    """The restored entities read back as they were before the purge: soft-deleted."""
    actual = fingerprint_deleted(MlflowClient(), expected)
    for kind in ("experiments", "runs", "traces", "models"):
        problem = diff(kind, fingerprint[kind], actual[kind])
        if problem:
            return problem
    return None


def check_mlflow_restores_them(expected, fingerprint):
    """MLflow's own restore calls bring them back to life, and their names are held."""
    client = MlflowClient()
    for experiment in fingerprint["experiments"].values():
        client.restore_experiment(experiment["experiment_id"])
    for run_id in expected["deleted_runs"]:
        client.restore_run(run_id)
    for name in fingerprint["experiments"]:
        if client.get_experiment_by_name(name).lifecycle_stage != "active":
            return f"experiment {name} is not active after restore_experiment"
        try:
            client.create_experiment(name)
        except MlflowException:
            continue
        return f"the name {name!r} is free: the restored experiment does not hold it"
    for run_id in fingerprint["runs"]:
        if client.get_run(run_id).info.lifecycle_stage != "active":
            return f"run {run_id} is not active after its restore"
    return None


def check_restored(state_dir):
    expected = json.loads((Path(state_dir) / EXPECTED_FILE).read_text())
    fingerprint = json.loads((Path(state_dir) / DELETED_FILE).read_text())
    checks = [
        ("deleted entities restored as fingerprinted", lambda: check_restored_as_fingerprinted(expected, fingerprint)),
        ("live data unchanged", lambda: check_live_unchanged(expected)),
        ("MLflow restores them", lambda: check_mlflow_restores_them(expected, fingerprint)),
    ]
    return run_checks("check-restored", checks)


# Each command returns how many checks failed (seeding returns None: nothing to check).
COMMANDS = {
    "seed": seed_store,
    "verify": verify_store,
    "seed-every-kind": seed_every_kind,
    "check-fresh": check_fresh_store,
    "fingerprint": write_fingerprint,
    "check-restored": check_restored,
    "add-bulk": add_bulk,
}


def main(argv):
    if len(argv) != 4 or argv[1] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    command, uri, state_dir = argv[1:]
    mlflow.set_tracking_uri(uri)
    # Prompts and webhooks live in the model registry: pin it to this store too,
    # whatever MLFLOW_REGISTRY_URI says.
    mlflow.set_registry_uri(uri)
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    failed = COMMANDS[command](state_dir) or 0
    print(f"{command} took {time.monotonic() - started:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
