"""Seeds artifacts for live and soft-deleted MLflow data, then checks `purge --artifacts`.

Driven by the Rust end-to-end tests, with the real MLflow client:

    python mlflow_artifacts.py seed   <STORE_URI> <ARTIFACT_ROOT> <STATE_DIR> \
                                      [--live-model-version-in-deleted-run]
    python mlflow_artifacts.py verify <STORE_URI> <ARTIFACT_ROOT> <STATE_DIR>

STORE_URI is an empty SQL store. ARTIFACT_ROOT is an absolute local directory or
`s3://bucket/prefix`, holding nothing but what `seed` writes (STATE_DIR lies
outside it); for S3 the client reads MLFLOW_S3_ENDPOINT_URL and the AWS_*
variables from the environment.

`seed` makes experiments under ARTIFACT_ROOT: `kept` (file:// location locally)
with live and soft-deleted runs and logged models and a live trace; `gone`
(plain-path location locally) with runs, a logged model and a trace, then
deleted; and `gone-twin`, a live experiment whose location starts with the
same characters as `gone`'s, so a purge that treats `gone` as a bare string
prefix deletes live files. With --live-model-version-in-deleted-run, a run in
`kept` also holds the files of a live model version and is then deleted: the
purge must keep it. `seed` writes STATE_DIR/expected.json:

- "gone": artifact locations, as MLflow stored them, that must be empty after
  the purge;
- "kept_runs": soft-deleted runs the purge must keep (and their files);
- "live": every object under ARTIFACT_ROOT that must survive, key relative to
  ARTIFACT_ROOT -> sha256;
- "live_runs", "live_models", "live_traces": id -> artifact location;
- "model_versions": "name/version" of the live model versions.

`verify` runs after the purge and exits non-zero, naming each failed check,
unless the gone locations are empty, every live object is unchanged, nothing
else is left under ARTIFACT_ROOT, the live artifacts still download through
the client and the kept runs are still there, deleted.
"""

import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

# Trace export is asynchronous by default, and then racy on a SQL store: the
# spans go to the `spans` table and, when the trace row is written before the
# spans, a second copy goes to <trace location>/traces.json. Synchronous export
# never writes traces.json; each trace gets an attachment instead, which goes to
# <trace location>/attachments/<id> whatever the mode, so every trace location
# holds exactly one known file. Read when the first trace is exported.
os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import LoggedModelStatus  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracing.attachments import Attachment  # noqa: E402

EXPECTED_FILE = "expected.json"
REGISTERED_MODEL = "model-in-deleted-run"
FLAG = "--live-model-version-in-deleted-run"


# ------------------------------------------------------- the artifact root


class LocalRoot:
    """ARTIFACT_ROOT as a local directory."""

    def __init__(self, root):
        self.path = Path(root)
        if not self.path.is_absolute():
            raise SystemExit(f"ARTIFACT_ROOT must be absolute: {root}")

    def location(self, name, as_uri):
        """An experiment location: a file:// URI, or a plain absolute path."""
        path = self.path / name
        return path.as_uri() if as_uri else str(path)

    def key(self, location):
        """The key of a stored location relative to the root ('' for the root itself)."""
        parsed = urlparse(location)
        path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(location)
        key = path.relative_to(self.path).as_posix()
        return "" if key == "." else key

    def objects(self):
        """Every file under the root: relative key -> sha256.

        Directories are not objects: a purge may leave empty ones behind (S3 has
        none to leave), and they hold nothing, so they do not count.
        """
        if not self.path.exists():
            return {}
        return {
            path.relative_to(self.path).as_posix(): sha256(path.read_bytes())
            for path in self.path.rglob("*")
            if not path.is_dir()
        }


class S3Root:
    """ARTIFACT_ROOT as s3://bucket/prefix, read with boto3."""

    def __init__(self, root):
        parsed = urlparse(root)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        import boto3  # only S3 roots need it (MLflow's S3 store needs it too)

        self.s3 = boto3.client("s3", endpoint_url=os.environ.get("MLFLOW_S3_ENDPOINT_URL"))

    def _full(self, key):
        return f"{self.prefix}/{key}" if self.prefix else key

    def location(self, name, as_uri):
        return f"s3://{self.bucket}/{self._full(name)}"

    def key(self, location):
        parsed = urlparse(location)
        full = parsed.path.strip("/")
        if parsed.scheme != "s3" or parsed.netloc != self.bucket:
            raise ValueError(f"{location} is not in bucket {self.bucket}")
        if not self.prefix:
            return full
        if full == self.prefix:
            return ""
        if not full.startswith(self.prefix + "/"):
            raise ValueError(f"{location} is not under s3://{self.bucket}/{self.prefix}")
        return full[len(self.prefix) + 1 :]

    def objects(self):
        """Every object under the root: relative key -> sha256."""
        listed = self.prefix + "/" if self.prefix else ""
        found = {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=listed
        )
        for page in pages:
            for item in page.get("Contents", []):
                body = self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                found[item["Key"][len(listed) :]] = sha256(body)
        return found


def artifact_root(root):
    return S3Root(root) if root.startswith("s3://") else LocalRoot(root)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def under(key, prefix):
    """Whether object `key` lies in the tree at `prefix` (a whole path segment match)."""
    return prefix == "" or key == prefix or key.startswith(prefix + "/")


def tree(objects, prefix):
    """The objects under `prefix`, keyed relative to it."""
    return {
        key[len(prefix) + 1 :] if prefix else key: digest
        for key, digest in objects.items()
        if under(key, prefix) and key != prefix
    }


# ---------------------------------------------------------------- seeding


def write_files(base, files):
    """Writes {relative path: bytes} under `base`; returns `base`."""
    for name, data in files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return base


def log_run(scratch, name, binary=False):
    """A finished run with a text file, a nested directory and maybe a ~200 KB binary."""
    with mlflow.start_run(run_name=name) as run:
        notes = write_files(scratch / name, {"notes.txt": f"notes of {name}\n".encode()})
        mlflow.log_artifact(str(notes / "notes.txt"))
        data = write_files(
            scratch / name / "data",
            {
                "top.csv": b"x,y\n1,2\n",
                "sub/inner.json": json.dumps({"run": name}).encode(),
                "sub/deeper/leaf with space.txt": f"leaf of {name}\n".encode(),
            },
        )
        mlflow.log_artifacts(str(data), artifact_path="data")
        if binary:
            blob = random.Random(name).randbytes(200 * 1024)
            path = write_files(scratch / name / "bin", {"weights.bin": blob}) / "weights.bin"
            mlflow.log_artifact(str(path), artifact_path="bin")
    return run.info


def model_files(scratch, name):
    """A directory that looks like a saved model, without any flavor's packages."""
    return write_files(
        scratch / f"model-{name}",
        {
            "MLmodel": f"artifact_path: {name}\nflavors: {{}}\n".encode(),
            "data/params.json": json.dumps({"model": name}).encode(),
        },
    )


def log_model(client, scratch, experiment_id, name, run_id=None):
    """A READY logged model with files under its artifact_location."""
    model = mlflow.initialize_logged_model(
        name=name, experiment_id=experiment_id, source_run_id=run_id
    )
    client.log_model_artifacts(model.model_id, str(model_files(scratch, name)))
    mlflow.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return client.get_logged_model(model.model_id)


def log_trace(client, name):
    """A two-span trace whose inner span carries an attachment; returns its TraceInfo."""
    with mlflow.start_span(name=name) as outer:
        outer.set_inputs({"question": name})
        with mlflow.start_span(name=f"{name}-inner") as inner:
            blob = Attachment(content_type="text/plain", content_bytes=f"{name}\n".encode())
            inner.set_inputs({"file": blob})
    mlflow.flush_trace_async_logging()
    return client.get_trace(outer.trace_id).info


def trace_location(info):
    return info.tags["mlflow.artifactLocation"]


def seed_kept(client, root, scratch, live_version):
    """`kept`: live and soft-deleted runs and models, and a live trace."""
    experiment_id = mlflow.create_experiment("kept", artifact_location=root.location("kept", True))
    mlflow.set_experiment(experiment_id=experiment_id)
    live_runs = [log_run(scratch, "kept-live-1", binary=True), log_run(scratch, "kept-live-2")]
    deleted_run = log_run(scratch, "kept-deleted")
    client.delete_run(deleted_run.run_id)
    live_model = log_model(client, scratch, experiment_id, "kept-model", live_runs[0].run_id)
    deleted_model = log_model(client, scratch, experiment_id, "kept-deleted-model")
    client.delete_logged_model(deleted_model.model_id)
    trace = log_trace(client, "kept-trace")
    state = {
        "gone": [deleted_run.artifact_uri, deleted_model.artifact_location],
        "kept_runs": [],
        "live_runs": {run.run_id: run.artifact_uri for run in live_runs},
        "live_models": {live_model.model_id: live_model.artifact_location},
        "live_traces": {trace.trace_id: trace_location(trace)},
        "model_versions": [],
    }
    if live_version:
        add_live_version_in_deleted_run(client, scratch, state)
    return state


def add_live_version_in_deleted_run(client, scratch, state):
    """A run whose files are a live model version's, then deleted: it must stay."""
    with mlflow.start_run(run_name="kept-registered") as run:
        mlflow.log_artifacts(str(model_files(scratch, "registered")), artifact_path="model")
    # The registry resolves runs:/ to the run's artifact directory, stored as
    # both source and storage_location of the version.
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", REGISTERED_MODEL)
    client.delete_run(run.info.run_id)
    state["kept_runs"].append(run.info.run_id)
    state["model_versions"].append(f"{version.name}/{version.version}")


def seed_gone(client, root, scratch):
    """`gone`: runs, a logged model and a trace with files; then deleted."""
    location = root.location("gone", False)
    experiment_id = mlflow.create_experiment("gone", artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    runs = [log_run(scratch, "gone-1", binary=True), log_run(scratch, "gone-2")]
    model = log_model(client, scratch, experiment_id, "gone-model", runs[0].run_id)
    trace = log_trace(client, "gone-trace")
    mlflow.delete_experiment(experiment_id)
    stored = client.get_experiment(experiment_id).artifact_location
    runs = [run.artifact_uri for run in runs]
    return [stored, *runs, model.artifact_location, trace_location(trace)]


def seed_twin(root, scratch):
    """`gone-twin`: a live run in a location that `gone`'s is a string prefix of."""
    location = root.location("gone-twin", False)
    experiment_id = mlflow.create_experiment("gone-twin", artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    run = log_run(scratch, "gone-twin-1")
    return {run.run_id: run.artifact_uri}


def seed(root_uri, state_dir, live_version=False):
    root = artifact_root(root_uri)
    client = MlflowClient()
    with tempfile.TemporaryDirectory(dir=state_dir) as scratch:
        state = seed_kept(client, root, Path(scratch), live_version)
        state["gone"] += seed_gone(client, root, Path(scratch))
        state["live_runs"].update(seed_twin(root, Path(scratch)))
    objects = root.objects()
    gone_keys = [root.key(location) for location in state["gone"]]
    empty = [loc for loc, key in zip(state["gone"], gone_keys) if not tree(objects, key)]
    if empty:
        raise SystemExit(f"seed: nothing was written under {empty}")
    state["live"] = {
        key: digest
        for key, digest in objects.items()
        if not any(under(key, gone) for gone in gone_keys)
    }
    (Path(state_dir) / EXPECTED_FILE).write_text(json.dumps(state, indent=2, sort_keys=True))
    print(
        f"seeded: {len(objects)} objects, {len(state['live'])} live, "
        f"{len(state['gone'])} gone locations, {len(state['kept_runs'])} kept runs"
    )


# --------------------------------------------------------------- verifying


def check_gone(root, expected, objects):
    """No object is left under a gone location."""
    left = {
        location: sorted(tree(objects, root.key(location)))
        for location in expected["gone"]
    }
    left = {location: keys for location, keys in left.items() if keys}
    return f"still there: {left}" if left else None


def check_live(expected, objects):
    """Every live object is there with its seeded content."""
    live = expected["live"]
    missing = sorted(live.keys() - objects.keys())
    changed = sorted(key for key in live.keys() & objects.keys() if live[key] != objects[key])
    if missing or changed:
        return f"missing {missing}, changed {changed}"
    return None


def check_nothing_else(root, expected, objects):
    """Nothing but the live objects is under ARTIFACT_ROOT (those under gone
    locations are named by check_gone; empty directories do not count)."""
    gone = [root.key(location) for location in expected["gone"]]
    extra = sorted(
        key
        for key in objects.keys() - expected["live"].keys()
        if not any(under(key, prefix) for prefix in gone)
    )
    return f"unexpected objects {extra}" if extra else None


def downloaded(**kwargs):
    """Downloads through the client; returns relative path -> sha256."""
    with tempfile.TemporaryDirectory() as dst:
        local = Path(mlflow.artifacts.download_artifacts(dst_path=dst, **kwargs))
        files = {
            path.relative_to(local).as_posix(): sha256(path.read_bytes())
            for path in local.rglob("*")
            if path.is_file()
        }
    if kwargs.get("artifact_uri", "").startswith("models:/"):
        # The client writes this next to a downloaded model; the store never held it.
        files.pop("registered_model_meta", None)
    return files


def check_downloads(root, expected):
    """Live runs' and models', kept runs' and model versions' files download intact."""
    wanted = [
        *((f"run {i}", {"run_id": i}, loc) for i, loc in expected["live_runs"].items()),
        *(
            (f"model {i}", {"artifact_uri": f"models:/{i}"}, loc)
            for i, loc in expected["live_models"].items()
        ),
    ]
    for run_id in expected["kept_runs"]:
        location = MlflowClient().get_run(run_id).info.artifact_uri
        wanted.append((f"kept run {run_id}", {"run_id": run_id}, location))
    for version in expected["model_versions"]:
        name, number = version.split("/")
        location = MlflowClient().get_model_version(name, number).source
        source = {"artifact_uri": f"models:/{version}"}
        wanted.append((f"model version {version}", source, location))
    problems = []
    for label, source, location in wanted:
        files = tree(expected["live"], root.key(location))
        got = downloaded(**source)
        if not files or got != files:
            differ = sorted(k for k in files.keys() & got.keys() if files[k] != got[k])
            problems.append(
                f"{label}: missing {sorted(files.keys() - got.keys())}, "
                f"extra {sorted(got.keys() - files.keys())}, differing {differ}"
            )
    return "; ".join(problems) or None


def check_kept_runs(expected):
    """Each kept run still exists, soft-deleted."""
    client = MlflowClient()
    wrong = {}
    for run_id in expected["kept_runs"]:
        try:
            stage = client.get_run(run_id).info.lifecycle_stage
        except MlflowException as err:
            stage = f"error {err.error_code}"
        if stage != "deleted":
            wrong[run_id] = stage
    return f"not there as deleted: {wrong}" if wrong else None


def verify(root_uri, state_dir):
    expected = json.loads((Path(state_dir) / EXPECTED_FILE).read_text())
    root = artifact_root(root_uri)
    objects = root.objects()
    checks = [
        ("gone locations are empty", lambda: check_gone(root, expected, objects)),
        ("live objects unchanged", lambda: check_live(expected, objects)),
        ("nothing else under the root", lambda: check_nothing_else(root, expected, objects)),
        ("live artifacts download", lambda: check_downloads(root, expected)),
        ("kept runs still there", lambda: check_kept_runs(expected)),
    ]
    failed = 0
    for label, check in checks:
        try:
            problem = check()
        except Exception as err:  # an unexpected error fails this check, not the rest
            problem = f"{type(err).__name__}: {err}"
        print(f"{'FAIL' if problem else 'ok  '} {label}" + (f": {problem}" if problem else ""))
        failed += bool(problem)
    print(f"verify: {failed} of {len(checks)} checks failed" if failed else "ok")
    return failed


def main(argv):
    args = [a for a in argv[1:] if a != FLAG]
    flagged = len(args) != len(argv) - 1
    if len(args) != 4 or args[0] not in ("seed", "verify") or (flagged and args[0] != "seed"):
        print(__doc__, file=sys.stderr)
        return 2
    command, uri, root_uri, state_dir = args
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if command == "seed":
        seed(root_uri, state_dir, live_version=flagged)
        failed = 0
    else:
        failed = verify(root_uri, state_dir)
    print(f"{command} took {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
