#!/usr/bin/env bash
# Makes the venv of one MLflow version that schema/generate.sh, the tests and .ci/run use: MLflow
# with the database drivers, pytest and boto3 (tests/e2e), from PyPI. Does nothing when VENV
# already holds exactly these requirements.
# Usage: schema/mlflow-venv.sh MLFLOW_VERSION VENV
set -euo pipefail

version="$1" venv="$2"

# The pins that let a version import its SQL store on Python 3.11 with today's PyPI: up to 3.4,
# mlflow.store.db.utils imports a pool class that SQLAlchemy 2.1 removed (1.30.1 caps
# SQLAlchemy below 2 itself; 3.10 no longer imports it).
pins() {
  case "$1" in
    2.* | 3.0.* | 3.4.*) echo "sqlalchemy<2.1" ;;
  esac
}

# PyPI serves the full `mlflow` wheel of these releases but not the `mlflow-skinny` and
# `mlflow-tracing` it requires. The full wheel holds the whole `mlflow` package, so it goes in
# without dependencies over the release named here, which brings them (importing then warns of
# the version mismatch).
installed_over() {
  case "$1" in
    3.18.0) echo 3.17.2 ;;
  esac
}

base="$(installed_over "$version")"
# shellcheck disable=SC2207 # pins prints a list of requirement specifiers
reqs=("mlflow==${base:-$version}" psycopg2-binary 'psycopg[binary]' pymysql pytest boto3
  $(pins "$version"))
spec="${reqs[*]}${base:+ then --no-deps mlflow==$version}"

if [ -x "$venv/bin/mlflow" ] && [ "$(cat "$venv/mlflow-venv.spec" 2>/dev/null)" = "$spec" ]; then
  exit 0
fi
echo "installing $spec into $venv" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "${reqs[@]}"
if [ -n "$base" ]; then
  "$venv/bin/pip" install --quiet --no-deps "mlflow==$version"
fi
echo "$spec" >"$venv/mlflow-venv.spec"
