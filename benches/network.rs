//! `cargo bench --bench network`: the purge and `mlflow gc` against a PostgreSQL across a network.
//!
//! Seeds a store small enough that `mlflow gc` finishes (10 experiments, 4,000 runs, 400,000
//! metric rows; 2 experiments and 1,440 runs soft-deleted), then purges copies of it, each
//! timed from spawn to exit, directly and through a TCP proxy on loopback that holds every
//! chunk 2.5 ms each way (5 ms of round trip; this kernel has no netem): the release binary
//! (`purge --yes --artifacts`), and MLflow's own `mlflow gc` (with its artifacts). The store's
//! artifact locations are moved under an empty local directory first: `mlflow gc` resolves
//! `mlflow-artifacts:` only through a tracking server. `mlflow gc` comes from the
//! 3.18.0 venv `.ci/run` makes (`target/venvs/mlflow-3.18.0`, or `MLFLOW_JANITOR_BENCH_MLFLOW`).

mod bench_store;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bench_store::{
    checkpoint, counts, janitor_binary, run_janitor, BenchResult, Copies, ServerLog, Shape,
};
use diesel::connection::SimpleConnection;
use mlflow_janitor::test_store::TestStore;
use mlflow_janitor::StoreUri;

/// Each way: the round trip gains twice this.
const ONE_WAY_DELAY: Duration = Duration::from_micros(2500);

const SHAPE: Shape = Shape { experiments: 10, deleted_experiments: 2, runs: 4_000, ..Shape::BENCH };

fn main() -> ExitCode {
    bench_store::exit_code(run())
}

fn run() -> BenchResult<bool> {
    let janitor = janitor_binary()?;
    let mlflow = bench_store::mlflow_venv("mlflow", "MLFLOW_JANITOR_BENCH_MLFLOW")?;
    let seeded = TestStore::new()?;
    let artifacts = tempfile::tempdir()?;
    {
        let root = format!("file://{}", artifacts.path().display());
        let mut conn = seeded.connect()?;
        conn.batch_execute(&SHAPE.seed_sql())?;
        conn.batch_execute(&format!(
            "UPDATE runs SET artifact_uri = replace(artifact_uri, 'mlflow-artifacts:', '{root}');
             UPDATE experiments
                SET artifact_location = replace(artifact_location, 'mlflow-artifacts:', '{root}');"
        ))?;
        conn.batch_execute("VACUUM ANALYZE")?;
    }
    let mut copies = Copies { server: seeded.uri().clone(), names: Vec::new() };
    let proxy = DelayProxy::start(server_address(seeded.uri())?, ONE_WAY_DELAY)?;
    let expected = SHAPE.expected_counts();
    println!(
        "store: {} runs to purge of {}; proxy on port {} adds {:?} of round trip",
        SHAPE.runs - SHAPE.kept_runs(),
        SHAPE.runs,
        proxy.port,
        2 * ONE_WAY_DELAY
    );
    let mut ok = true;
    let mut walls = Vec::new();
    for (contender, delayed) in
        [("janitor", false), ("janitor", true), ("mlflow gc", false), ("mlflow gc", true)]
    {
        let copy = copies.create(&seeded.uri().database(), &format!("c{}", walls.len()))?;
        let reached = if delayed { proxy.uri(&copy)? } else { copy.clone() };
        checkpoint(&copies.server);
        let log = ServerLog::start(&copies.server, &copy.database(), &[("log_statement", "all")])?;
        let wall = if contender == "janitor" {
            run_janitor(&janitor, &reached, &["--artifacts"])?.wall
        } else {
            let started = Instant::now();
            let output = Command::new(&mlflow)
                .args(["gc", "--backend-store-uri", reached.given()])
                // gc asks for a tracking URI (it resolves artifacts through it): the same store.
                .env("MLFLOW_TRACKING_URI", reached.given())
                .output()?;
            if !output.status.success() {
                return Err(format!(
                    "mlflow gc failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                )
                .into());
            }
            started.elapsed()
        };
        let statements = log.map(|log| log.statements()).transpose()?;
        let left = counts(&mut copy.establish()?)?;
        let leaves = if left == expected {
            String::new()
        } else {
            ok &= contender != "janitor";
            format!("  <-- leaves {left:?}")
        };
        println!(
            "  {contender:<9} {:<20} {:>8.2} s  statements {}{leaves}",
            if delayed { "through the proxy" } else { "direct" },
            wall.as_secs_f64(),
            statements.map_or("?".to_owned(), |n| n.to_string()),
        );
        walls.push(wall);
        copies.drop_all();
    }
    println!(
        "\nat {:?} of round trip: janitor {:.2} s, mlflow gc {:.2} s ({:.0} times the janitor's)",
        2 * ONE_WAY_DELAY,
        walls[1].as_secs_f64(),
        walls[3].as_secs_f64(),
        walls[3].as_secs_f64() / walls[1].as_secs_f64()
    );
    Ok(ok)
}

/// The server's address, from the test server's URI (`postgresql://user@host:port/db`).
fn server_address(uri: &StoreUri) -> BenchResult<SocketAddr> {
    let authority = authority(uri.given()).ok_or("the test server's URI names no host")?;
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let with_port =
        if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:5432") };
    Ok(with_port.to_socket_addrs()?.next().ok_or("the test server's host has no address")?)
}

/// The `user@host:port` part of a URI.
fn authority(uri: &str) -> Option<&str> {
    let rest = uri.split_once("://")?.1;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// A TCP proxy on loopback that holds every chunk it relays `delay` before passing it on, each
/// way, as a network between the database and its client would.
struct DelayProxy {
    port: u16,
}

impl DelayProxy {
    fn start(upstream: SocketAddr, delay: Duration) -> BenchResult<DelayProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                let (Ok(client_in), Ok(server_in)) = (client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                relay(client_in, server, delay);
                relay(server_in, client, delay);
            }
        });
        Ok(DelayProxy { port })
    }

    /// `uri` reached through the proxy.
    fn uri(&self, uri: &StoreUri) -> BenchResult<StoreUri> {
        let given = uri.given();
        let authority = authority(given).ok_or("a URI without a host")?;
        let user = authority.rsplit_once('@').map_or(String::new(), |(user, _)| format!("{user}@"));
        let through = given.replacen(authority, &format!("{user}127.0.0.1:{}", self.port), 1);
        Ok(StoreUri::parse(&through)?)
    }
}

/// Copies `from` to `to`, each chunk `delay` after it arrived; a reader and a writer thread, so
/// that the delay holds back every chunk by the same time and not the stream's throughput.
fn relay(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let _ = to.set_nodelay(true);
    let (chunks, due) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buffer = vec![0; 1 << 16];
        while let Ok(n @ 1..) = from.read(&mut buffer) {
            if chunks.send((Instant::now() + delay, buffer[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for (at, chunk) in due {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
