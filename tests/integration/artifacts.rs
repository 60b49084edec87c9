//! Artifact deletion (`mlflow_janitor::artifacts`) on real stores: a local tree, and S3 on moto's
//! S3-compatible server (from PyPI, in a venv made on first use), each test with its own server.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use mlflow_janitor::artifacts::{ArtifactError, ArtifactStore, CloudConfig, Resolver, Usage};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// The moto release whose enforcement the failure test relies on (see
/// tests/artifacts/moto_buckets.py).
const MOTO: &str = "moto[server]==5.2.5";

pub(crate) fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Every file under `root` (links as their target's path), with its bytes.
pub(crate) fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            let path = entry.path();
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                files.insert(path, target.into_os_string().into_encoded_bytes());
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn a_local_tree_is_sized_then_deleted_and_its_siblings_stay_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    // A space in the root: MLflow's file:// URIs percent-encode it.
    let mlruns = dir.path().join("ml runs");
    let artifacts = mlruns.join("1/0a1b/artifacts");
    let mut objects = 0;
    let mut bytes = 0;
    for (name, size) in [
        ("model/MLmodel", 120),
        ("model/data/weights.bin", 70_000),
        ("model/requirements.txt", 0),
        ("plots/a/b/c/d/loss.png", 3_000),
        ("notes.txt", 11),
    ] {
        write(&artifacts.join(name), &vec![b'x'; size]);
        objects += 1;
        bytes += size as u64;
    }
    // What lies beside it: the run's other files, a run whose id extends this one's, another run,
    // and a file that a link inside the tree points at.
    write(&mlruns.join("1/0a1b/meta.yaml"), b"run_id: 0a1b\n");
    write(&mlruns.join("1/0a1bc/artifacts/model/MLmodel"), b"sibling");
    write(&mlruns.join("1/ffff/artifacts/x.txt"), b"other run");
    write(&mlruns.join("outside.txt"), b"a link's target");
    std::os::unix::fs::symlink(mlruns.join("outside.txt"), artifacts.join("model/link")).unwrap();
    std::os::unix::fs::symlink(mlruns.join("1/ffff"), artifacts.join("plots/linked-run")).unwrap();
    objects += 2; // the links themselves, 0 bytes each
    let before = files(&mlruns);

    let resolver = Resolver::new(None).unwrap();
    let uri = format!("file://{}", artifacts.to_str().unwrap().replace(' ', "%20"));
    let location = resolver.resolve(&uri).unwrap();
    assert_eq!(location, resolver.resolve(artifacts.to_str().unwrap()).unwrap());
    let store = ArtifactStore::new(CloudConfig::default()).unwrap();
    let expected = Usage { objects, bytes };
    assert_eq!(store.size(&location).unwrap(), expected);
    assert!(artifacts.exists(), "sizing deleted something");

    assert_eq!(store.delete_tree(&location).unwrap(), expected);
    assert!(!artifacts.exists());
    let mut left = before;
    left.retain(|path, _| !path.starts_with(&artifacts));
    assert_eq!(files(&mlruns), left);
    assert!(mlruns.join("1/0a1b").is_dir(), "the run's folder goes with its rows, not here");

    // Gone is deleted: a rerun finds nothing and succeeds.
    assert_eq!(store.size(&location).unwrap(), Usage::default());
    assert_eq!(store.delete_tree(&location).unwrap(), Usage::default());
}

#[test]
fn a_missing_location_or_a_single_file_is_counted_as_it_is_and_a_linked_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::new(CloudConfig::default()).unwrap();
    let resolver = Resolver::new(None).unwrap();
    let never = resolver.resolve(dir.path().join("never/made").to_str().unwrap()).unwrap();
    assert_eq!(store.size(&never).unwrap(), Usage::default());
    assert_eq!(store.delete_tree(&never).unwrap(), Usage::default());

    let file = dir.path().join("1/model.pkl");
    write(&file, b"12345");
    let location = resolver.resolve(file.to_str().unwrap()).unwrap();
    assert_eq!(store.size(&location).unwrap(), Usage { objects: 1, bytes: 5 });
    assert_eq!(store.delete_tree(&location).unwrap(), Usage { objects: 1, bytes: 5 });
    assert!(!file.exists() && dir.path().join("1").is_dir());

    // A location that is a link to a tree elsewhere: neither the link nor the tree goes.
    write(&dir.path().join("elsewhere/big.bin"), b"12345");
    let link = dir.path().join("1/linked");
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
    let location = resolver.resolve(link.to_str().unwrap()).unwrap();
    let err = store.delete_tree(&location).unwrap_err().to_string();
    assert!(err.contains("is a symbolic link"), "{err}");
    assert!(link.is_symlink() && dir.path().join("elsewhere/big.bin").exists());
}

/// moto's `moto_server`, from a venv made on first use (tests run in parallel: one makes it, the
/// others wait on the lock).
fn moto_server() -> PathBuf {
    let venvs = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venvs");
    let venv = venvs.join("moto");
    std::fs::create_dir_all(&venvs).unwrap();
    let lock = File::create(venvs.join("moto.lock")).unwrap();
    lock.lock().unwrap();
    if !venv.join("bin/moto_server").exists() {
        let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().unwrap();
        assert!(made.success(), "python3 -m venv failed");
        let installed =
            Command::new(venv.join("bin/pip")).args(["install", "--quiet", MOTO]).status().unwrap();
        assert!(installed.success(), "pip install {MOTO} failed");
    }
    venv.join("bin/moto_server")
}

/// A moto S3 server on a free loopback port, killed when dropped.
pub(crate) struct Moto {
    child: Child,
    port: u16,
    log: tempfile::TempDir,
}

impl Moto {
    pub(crate) fn start() -> Moto {
        let server = moto_server();
        // The port is free when chosen, and may be taken before moto binds it: try again then.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let log = tempfile::tempdir().unwrap();
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(File::create(log.path().join("out")).unwrap())
                .stderr(File::create(log.path().join("err")).unwrap())
                .spawn()
                .unwrap();
            let mut moto = Moto { child, port, log };
            let deadline = Instant::now() + Duration::from_secs(30);
            while !moto.answers() {
                if moto.child.try_wait().unwrap().is_some() {
                    break;
                }
                assert!(Instant::now() < deadline, "moto_server did not answer in 30 s");
                std::thread::sleep(Duration::from_millis(100));
            }
            if moto.child.try_wait().unwrap().is_none() {
                return moto;
            }
            let err = std::fs::read_to_string(moto.log.path().join("err")).unwrap();
            eprintln!("moto_server on port {port} exited:\n{err}");
        }
        panic!("moto_server did not start (its output is above)");
    }

    /// Whether the server answers HTTP (its own API's page).
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let request = "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        let mut status = [0; 12];
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_exact(&mut status).is_ok()
            && status.ends_with(b" 200")
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes buckets and objects: `NAME`, `NAME:deny-delete`, `NAME/KEY`
    /// (tests/artifacts/moto_buckets.py).
    pub(crate) fn buckets(&self, specs: &[&str]) {
        let python = moto_server().with_file_name("python3");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts/moto_buckets.py");
        let out =
            Command::new(python).arg(script).arg(self.endpoint()).args(specs).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// The environment MLflow's users set for MinIO or any other S3-compatible server.
    pub(crate) fn env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
            ("MLFLOW_S3_ENDPOINT_URL", self.endpoint()),
        ]
    }

    /// The settings the janitor reads from that environment.
    pub(crate) fn config(&self) -> CloudConfig {
        CloudConfig::from_vars(self.env())
    }

    /// The test's own client, for writing and reading back objects.
    pub(crate) fn client(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        let client = AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_bucket_name(bucket)
            .build()
            .unwrap();
        Arc::new(client)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Writes `count` objects of `size` bytes under `prefix`, a few at a time.
fn put(client: &Arc<dyn ObjectStore>, prefix: &str, count: usize, size: usize) -> Usage {
    runtime().block_on(async {
        futures_util::stream::iter(0..count)
            .map(|i| {
                let client = Arc::clone(client);
                // Nested a little, as artifacts are.
                let path = ObjectPath::parse(format!("{prefix}/d{}/f{i:05}", i % 7)).unwrap();
                async move { client.put(&path, PutPayload::from(vec![b'x'; size])).await }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await
            .unwrap();
    });
    Usage { objects: count as u64, bytes: (count * size) as u64 }
}

/// The objects of a bucket outside `prefix` (every one without), with their bytes.
fn objects(client: &Arc<dyn ObjectStore>, but: Option<&str>) -> BTreeMap<String, Vec<u8>> {
    let but = but.map(|prefix| ObjectPath::parse(prefix).unwrap());
    runtime().block_on(async {
        let metas: Vec<_> = client.list(None).try_collect().await.unwrap();
        let mut objects = BTreeMap::new();
        for meta in metas {
            if but.as_ref().is_some_and(|prefix| meta.location.prefix_matches(prefix)) {
                continue;
            }
            let bytes = client.get(&meta.location).await.unwrap().bytes().await.unwrap();
            objects.insert(meta.location.to_string(), bytes.to_vec());
        }
        objects
    })
}

#[test]
fn an_s3_prefix_is_sized_then_deleted_and_the_sibling_prefixes_stay() {
    let moto = Moto::start();
    moto.buckets(&["mlflow"]);
    let client = moto.client("mlflow");
    // Past one listing page and one bulk delete (1,000 keys each).
    let expected = put(&client, "mlruns/1/0a1b/artifacts", 1_001, 3);
    put(&client, "mlruns/1/0a1bc/artifacts", 5, 7);
    put(&client, "mlruns/1/ffff/artifacts", 5, 11);
    put(&client, "mlruns/1/0a1b/meta", 1, 5);
    let siblings = objects(&client, Some("mlruns/1/0a1b/artifacts"));
    assert_eq!(siblings.len(), 11);

    // Through the tracking server's proxy: --artifacts-destination s3://mlflow/mlruns.
    let resolver = Resolver::new(Some("s3://mlflow/mlruns")).unwrap();
    let location = resolver.resolve("mlflow-artifacts:/1/0a1b/artifacts").unwrap();
    assert_eq!(location, resolver.resolve("s3://mlflow/mlruns/1/0a1b/artifacts").unwrap());
    let store = ArtifactStore::new(moto.config()).unwrap();
    assert_eq!(store.size(&location).unwrap(), expected);
    assert_eq!(store.delete_tree(&location).unwrap(), expected);

    assert_eq!(objects(&client, None), siblings);
    assert_eq!(store.size(&location).unwrap(), Usage::default());
    assert_eq!(store.delete_tree(&location).unwrap(), Usage::default());
}

#[test]
fn a_bucket_that_refuses_deletes_fails_its_location_and_the_next_one_is_deleted() {
    let moto = Moto::start();
    moto.buckets(&["locked:deny-delete", "open", "open/2/odd/artifacts/a//b"]);
    let locked = moto.client("locked");
    let open = moto.client("open");
    let in_locked = put(&locked, "1/0a1b/artifacts", 20, 4);
    let in_open = put(&open, "1/0a1b/artifacts", 20, 4);
    let locked_before = objects(&locked, None);

    let resolver = Resolver::new(None).unwrap();
    let store = ArtifactStore::new(moto.config()).unwrap();
    let refusing = resolver.resolve("s3://locked/1/0a1b/artifacts").unwrap();
    let missing = resolver.resolve("s3://no-such-bucket/1/0a1b/artifacts").unwrap();
    let fine = resolver.resolve("s3://open/1/0a1b/artifacts").unwrap();
    let odd = resolver.resolve("s3://open/2/odd/artifacts").unwrap();

    assert_eq!(store.size(&refusing).unwrap(), in_locked);
    let err = store.delete_tree(&refusing).unwrap_err();
    assert!(matches!(err, ArtifactError::Delete { deleted: 0, .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("s3://locked/1/0a1b/artifacts"), "{message}");
    assert!(message.contains("AccessDenied"), "{message}");
    assert!(message.contains("rerun to finish"), "{message}");
    assert_eq!(objects(&locked, None), locked_before);

    // A bucket that is not there is an error too, never "nothing to delete": the settings may
    // point at the wrong server.
    let err = store.size(&missing).unwrap_err();
    assert!(err.to_string().contains("no-such-bucket"), "{err}");
    let err = store.delete_tree(&missing).unwrap_err();
    assert!(matches!(err, ArtifactError::Delete { deleted: 0, .. }), "{err:?}");

    // A key object_store cannot address fails its location, and says so.
    let err = store.delete_tree(&odd).unwrap_err();
    assert!(err.to_string().contains("delete that object with the store's own tools"), "{err}");

    // The same store goes on with the next location.
    assert_eq!(store.delete_tree(&fine).unwrap(), in_open);
    let left = runtime().block_on(open.list(Some(&ObjectPath::from("1"))).count());
    assert_eq!(left, 0);
}
