//! Hostile and careless input: where a connection really goes, two writers at once, a file
//! that is no database, a server that never answers, secrets in the URI, odd SQLite paths.
//! Each gets one clear line, with its exit code, and touches nothing.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use mlflow_janitor::error::exit_code;
use mlflow_janitor::schema::experiments;
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::{Backend, StoreUri};
use test_case::test_case;

use crate::own_server::{Netns, OwnServer};
use crate::{fails_with, fixtures, janitor, snapshot};

#[test]
fn reset_refuses_a_server_on_another_host_however_the_connection_got_there() {
    // The other host: a network namespace with its own PostgreSQL, holding a store.
    let other_host = Netns::new();
    let server = OwnServer::start_with(Backend::Postgresql, Some(&other_host), &[]);
    janitor().args(["init", "--backend-store-uri", &server.uri()]).assert().success();
    let mut remote = StoreUri::parse(&server.uri()).unwrap().establish().unwrap();
    fixtures::live(&mut remote);
    let before = snapshot(&mut remote);
    let (address, port) = (server.host(), server.port().to_string());

    // Each names this machine, or nothing, and libpq goes to the other host.
    let redirects: [(String, &[(&str, &str)]); 3] = [
        (format!("postgresql://postgres@127.0.0.1:{port}/mlflow?hostaddr={address}"), &[]),
        (
            "postgresql:///mlflow?user=postgres".to_owned(),
            &[("PGHOST", address), ("PGPORT", &port)],
        ),
        (
            "postgresql:///mlflow?user=postgres".to_owned(),
            &[("PGHOSTADDR", address), ("PGPORT", &port)],
        ),
    ];
    for (uri, environment) in &redirects {
        let mut reset = janitor();
        reset
            .args(["reset", "--yes", "--backend-store-uri", uri])
            .envs(environment.iter().copied());
        let stderr = fails_with(&mut reset, exit_code::USAGE, "is not on this machine");
        assert!(stderr.contains(&format!("went over {address}")), "{stderr}");
        assert_eq!(snapshot(&mut remote), before, "{uri} {environment:?}");
    }
    // Said so, it goes on: the refusal came from where the connection went.
    janitor()
        .args(["reset", "--yes", "--allow-remote", "--backend-store-uri", &redirects[0].0])
        .assert()
        .success();
    let experiments: i64 = experiments::table.count().get_result(&mut remote).unwrap();
    assert_eq!(experiments, 1, "only experiment 0 is left");
}

#[test_case(Backend::Postgresql; "postgresql")]
#[test_case(Backend::Mysql; "mysql")]
#[test_case(Backend::Sqlite; "sqlite")]
fn every_writer_waits_for_no_other_and_touches_nothing_while_a_purge_runs(backend: Backend) {
    let (store, _) = fixtures::seeded_store(backend);
    let uri = crate::as_mlflow_spells_it(&store);
    let before = snapshot(&mut store.connect().unwrap());
    // A purge in the middle of a batch: it holds the store's lock and the database's write
    // lock (SQLite: the whole file; a server: the rows of the batch).
    let mut purging = store.connect().unwrap();
    let _lock = mlflow_janitor::store::lock_store(&mut purging, store.uri()).unwrap();
    mlflow_janitor::store::write_transaction(&mut purging, |conn| {
        diesel::update(experiments::table)
            .set(experiments::last_update_time.eq(experiments::last_update_time))
            .execute(conn)?;
        let writers: [&[&str]; 3] =
            [&["purge", "--yes"], &["reset", "--yes"], &["doctor", "--fix", "--yes"]];
        for args in writers {
            let started = Instant::now();
            fails_with(
                janitor().args(args).args(["--backend-store-uri", &uri]),
                exit_code::ALREADY_RUNNING,
                "holds the store's lock",
            );
            // At once, not after the database's own lock wait (5 s by default).
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "{args:?}: {:?}",
                started.elapsed()
            );
        }
        Err::<(), _>(diesel::result::Error::RollbackTransaction)
    })
    .unwrap_err();
    assert_eq!(snapshot(&mut store.connect().unwrap()), before);
}

#[test]
fn a_file_that_is_no_database_is_one_line_at_once() {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("mlflow.db");
    let text = "not a database, but a page of text\n".repeat(200);
    std::fs::write(&file, &text).unwrap();
    let uri = format!("sqlite:///{}", file.display());
    let commands: [&[&str]; 4] =
        [&["purge", "--yes"], &["status"], &["doctor"], &["reset", "--yes"]];
    for command in commands {
        let started = Instant::now();
        let stderr = fails_with(
            janitor().args(command).args(["--backend-store-uri", &uri]).env("RUST_LOG", "info"),
            exit_code::STORE,
            "file is not a database",
        );
        assert!(stderr.len() < 1000, "{command:?}: {} bytes of stderr", stderr.len());
        assert!(started.elapsed() < Duration::from_secs(5), "{command:?}: {:?}", started.elapsed());
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text, "the file changed");
}

/// A server that accepts connections and never says a word: every connection hangs there.
fn silent_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepting = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(8) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    (port, accepting)
}

#[test_case("postgresql", "postgresql+psycopg2"; "postgresql")]
#[test_case("mysql", "mysql+pymysql"; "mysql")]
fn a_server_that_never_answers_is_given_up_on_after_the_connect_timeout(
    _backend: &str,
    scheme: &str,
) {
    let (port, _server) = silent_server();
    let uri = format!("{scheme}://u:pw@127.0.0.1:{port}/mlflow");
    // The flag, then the URI's own setting: each bounds the wait.
    let waits = [
        (vec!["--connect-timeout", "1s"], uri.clone()),
        (vec![], format!("{uri}?connect_timeout=1")),
    ];
    for (flag, uri) in waits {
        let started = Instant::now();
        fails_with(
            janitor().args(["status", "--backend-store-uri", &uri]).args(&flag),
            exit_code::STORE,
            "cannot connect to",
        );
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(8), "{flag:?} {uri}: waited {waited:?}");
    }
}

#[test]
fn a_password_in_the_query_is_never_printed() {
    // PostgreSQL's trust authentication ignores the password: the purge runs with it.
    let (store, _) = fixtures::seeded_store(Backend::Postgresql);
    let uri = format!("{}?password=hunter2&sslpassword=hunter3", store.uri().given());
    let output = janitor()
        .args(["purge", "--dry-run", "--output", "json", "--backend-store-uri", &uri])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let shown = report["store"].as_str().unwrap();
    assert!(shown.ends_with("?password=***&sslpassword=***"), "{shown}");
    // Nor in an error.
    let unreachable = "postgresql://me:pw1@127.0.0.1:1/mlflow?password=hunter2&passfile=/p";
    let stderr = fails_with(
        janitor().args(["status", "--backend-store-uri", unreachable]),
        exit_code::STORE,
        "cannot connect to",
    );
    for secret in ["hunter2", "pw1", "/p"] {
        assert!(!stderr.contains(secret), "{secret}: {stderr}");
    }
}

#[test]
fn a_sqlite_path_is_percent_decoded_as_mlflow_reads_it() {
    let folder = tempfile::tempdir().unwrap();
    let encoded = format!("sqlite:///{}/with%20space.db", folder.path().display());
    janitor().args(["init", "--backend-store-uri", &encoded]).assert().success();
    assert!(folder.path().join("with space.db").is_file());
    janitor().args(["purge", "--yes", "--backend-store-uri", &encoded]).assert().success();
    janitor().args(["status", "--backend-store-uri", &encoded]).assert().success();
    assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 1, "one file, the store");
}

#[test]
fn a_test_store_is_local_and_reset_leaves_it_fresh() {
    // The positive side of the remote check, on every kind of local address.
    for backend in [Backend::Postgresql, Backend::Mysql] {
        let store = TestStore::on(backend).unwrap();
        let mut conn = store.connect().unwrap();
        assert_eq!(mlflow_janitor::store::remote_address(&mut conn).unwrap(), None);
    }
    let socket = TestStore::on(Backend::Postgresql).unwrap();
    let over_socket =
        format!("postgresql:///{}?host=/var/run/postgresql&user=postgres", socket.uri().database());
    janitor().args(["reset", "--yes", "--backend-store-uri", &over_socket]).assert().success();
}

/// A store with soft-deleted experiments whose names hold commas, and their runs.
fn store_with_names(names: &[&str]) -> (TestStore, String) {
    let store = TestStore::on(Backend::Sqlite).unwrap();
    let mut conn = store.connect().unwrap();
    for (id, name) in (1..).zip(names) {
        fixtures::experiment(&mut conn, id, name, Some(fixtures::now_ms()));
        fixtures::run(&mut conn, id, &format!("run-{id}"), Some(Some(fixtures::now_ms())));
    }
    let uri = crate::as_mlflow_spells_it(&store);
    (store, uri)
}

fn experiment_names(store: &TestStore) -> Vec<String> {
    let mut conn = store.connect().unwrap();
    experiments::table.select(experiments::name).order(experiments::name).load(&mut conn).unwrap()
}

#[test]
fn an_experiment_name_with_a_comma_is_one_name() {
    let (store, uri) = store_with_names(&["a", "b", "a,b"]);
    let purge = |names: &[&str]| {
        let mut cmd = janitor();
        cmd.args(["purge", "--yes", "--backend-store-uri", &uri]);
        for name in names {
            cmd.args(["--experiment-names", name]);
        }
        cmd.assert().success();
    };
    purge(&["a,b"]);
    assert_eq!(experiment_names(&store), ["a", "b"]);
    // Several names: the flag again (or its singular spelling).
    janitor()
        .args(["purge", "--yes", "--backend-store-uri", &uri])
        .args(["--experiment-name", "a", "--experiment-names", "b"])
        .assert()
        .success();
    assert!(experiment_names(&store).is_empty());
}

#[test]
fn spaces_around_listed_ids_are_ignored() {
    let (store, uri) = store_with_names(&["x", "y", "z"]);
    janitor()
        .args(["purge", "--yes", "--backend-store-uri", &uri])
        .args(["--run-ids", "run-1, run-2 ", "--run-ids", " run-3"])
        .assert()
        .success();
    let mut conn = store.connect().unwrap();
    let runs: i64 = mlflow_janitor::schema::runs::table.count().get_result(&mut conn).unwrap();
    assert_eq!(runs, 0);
    // Experiment ids likewise; an empty one is a mistake, said so before anything is touched.
    fails_with(
        janitor().args(["purge", "--yes", "--backend-store-uri", &uri, "--experiment-ids", "1,,2"]),
        exit_code::USAGE,
        "an empty id",
    );
    janitor()
        .args(["purge", "--yes", "--backend-store-uri", &uri, "--experiment-ids", " 1 , 2"])
        .assert()
        .success();
    assert_eq!(experiment_names(&store), ["z"]);
}

#[test]
fn a_metrics_file_is_checked_before_the_work_and_its_late_failure_is_a_warning() {
    let (store, _) = fixtures::seeded_store(Backend::Sqlite);
    let uri = crate::as_mlflow_spells_it(&store);
    let before = snapshot(&mut store.connect().unwrap());
    let folder = tempfile::tempdir().unwrap();
    let missing = folder.path().join("missing/mlflow_janitor.prom");
    let purge = |metrics_file: &std::path::Path| {
        let mut cmd = janitor();
        cmd.args(["purge", "--yes", "--output", "json", "--backend-store-uri", &uri]);
        cmd.arg("--metrics-file").arg(metrics_file);
        cmd
    };
    fails_with(&mut purge(&missing), exit_code::USAGE, "cannot write the metrics file");
    assert_eq!(snapshot(&mut store.connect().unwrap()), before, "touched");
    // Writable when checked, not when written: a folder took its name meanwhile (here: before,
    // a folder with a file in it, which the rename cannot replace).
    let taken = folder.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("inside"), "").unwrap();
    let output = purge(&taken).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("the metrics are not written"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["entities"]["experiment"], 2, "{report}");
}

#[test]
fn the_policy_file_names_the_store_before_the_environment() {
    let (store, _) = fixtures::seeded_store(Backend::Sqlite);
    let uri = crate::as_mlflow_spells_it(&store);
    let folder = tempfile::tempdir().unwrap();
    let policy = folder.path().join("policy.toml");
    std::fs::write(&policy, format!("backend_store_uri = \"{uri}\"\nyes = true\n")).unwrap();
    let elsewhere = format!("sqlite:///{}/elsewhere.db", folder.path().display());
    let output = janitor()
        .args(["purge", "--output", "json", "--config"])
        .arg(&policy)
        .env("MLFLOW_BACKEND_STORE_URI", &elsewhere)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("MLFLOW_BACKEND_STORE_URI is set but"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["entities"]["experiment"], 2, "{report}");
    // The flag outranks both.
    fails_with(
        janitor()
            .args(["purge", "--config"])
            .arg(&policy)
            .args(["--backend-store-uri", &elsewhere])
            .env("MLFLOW_BACKEND_STORE_URI", &uri),
        exit_code::STORE,
        "no SQLite store at",
    );
}

#[test]
fn a_stop_signal_ends_a_purge_between_batches_with_its_report() {
    use std::io::BufRead;
    let (store, _) = fixtures::seeded_store(Backend::Sqlite);
    let uri = crate::as_mlflow_spells_it(&store);
    let folder = tempfile::tempdir().unwrap();
    let metrics = folder.path().join("mlflow_janitor.prom");
    let mut purge = std::process::Command::new(assert_cmd::cargo::cargo_bin("mlflow-janitor"));
    purge
        .args(["--log-format", "json", "purge", "--yes", "--output", "json"])
        .args(["--batch-size", "1", "--throttle", "30s", "--backend-store-uri", &uri])
        .arg("--metrics-file")
        .arg(&metrics)
        .env_remove("MLFLOW_BACKEND_STORE_URI")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = purge.spawn().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    // The first batch is committed: the purge is in its throttle's pause.
    let mut logs = Vec::new();
    for line in stderr.by_ref() {
        let line = line.unwrap();
        let first_batch = line.contains("batch done");
        logs.push(line);
        if first_batch {
            break;
        }
    }
    let started = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    logs.extend(stderr.map(Result::unwrap));
    let output = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "the pause was not cut short");
    assert_eq!(output.status.code(), Some(i32::from(exit_code::INTERRUPTED)), "{logs:#?}");
    let last: serde_json::Value = serde_json::from_str(logs.last().unwrap()).unwrap();
    assert_eq!(last["exit_code"], exit_code::INTERRUPTED, "{last}");
    assert!(last["message"].as_str().unwrap().contains("stopped by SIGTERM after 1 batches"));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["batches"], 1, "{report}");
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(prom.contains("mlflow_janitor_last_run_exit_code 10"), "{prom}");
    assert!(prom.contains("mlflow_janitor_batches 1"), "{prom}");
    // Whole entities only: the next run finishes the job.
    janitor().args(["purge", "--yes", "--backend-store-uri", &uri]).assert().success();
    janitor().args(["doctor", "--backend-store-uri", &uri]).assert().success();
    assert_eq!(experiment_names(&store), ["live-1", "live-2"]);
}
