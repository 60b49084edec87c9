//! Database servers of a test's own: in a temporary folder, on a free port, stopped when
//! dropped. A test that restarts its server, configures it (TLS) or puts it on another host (a
//! network namespace) cannot use the shared servers.

use std::cell::RefCell;
use std::time::Duration;

use mlflow_janitor::Backend;

/// A PostgreSQL or MariaDB server of the test's own.
pub struct OwnServer {
    backend: Backend,
    data: tempfile::TempDir,
    port: u16,
    /// The address it listens on, and the namespace it runs in (none: this host's loopback).
    host: String,
    netns: Option<String>,
    /// More server options (`--ssl-cert=...` for mariadbd, `-c ssl=on` for postgres).
    extra_args: Vec<String>,
    mariadb: RefCell<Option<std::process::Child>>,
}

impl OwnServer {
    /// A new server on 127.0.0.1.
    pub fn start(backend: Backend) -> OwnServer {
        OwnServer::start_with(backend, None, &[])
    }

    /// A new server, in `host`'s network namespace when given (listening on its address), with
    /// more server options.
    pub fn start_with(backend: Backend, host: Option<&Netns>, extra_args: &[&str]) -> OwnServer {
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Neither server runs as root: their files and processes belong to their own user then.
        let owner = if backend == Backend::Postgresql { "postgres" } else { "mysql" };
        if unsafe { libc::geteuid() } == 0 {
            let chown = std::process::Command::new("chown")
                .args(["-R", &format!("{owner}:{owner}")])
                .arg(data.path())
                .status()
                .unwrap();
            assert!(chown.success());
        }
        let server = OwnServer {
            backend,
            data,
            port,
            host: host.map_or_else(|| "127.0.0.1".to_owned(), |h| h.address.clone()),
            netns: host.map(|h| h.name.clone()),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            mariadb: Default::default(),
        };
        let db = server.data.path().join("db");
        let db = db.to_str().unwrap();
        if backend == Backend::Postgresql {
            server.run("postgres", &["initdb", "-A", "trust", "-U", "postgres", "-D", db]);
            if host.is_some() {
                // Clients come from the other end of the veth pair, not from loopback.
                let hba = server.data.path().join("db/pg_hba.conf");
                let mut rules = std::fs::read_to_string(&hba).unwrap();
                rules += "host all all 0.0.0.0/0 trust\n";
                std::fs::write(&hba, rules).unwrap();
            }
        } else {
            let datadir = format!("--datadir={db}");
            let tmpdir = format!("--tmpdir={}", server.data.path().display());
            let auth = "--auth-root-authentication-method=normal";
            let install = ["mariadb-install-db", &datadir, &tmpdir, auth, "--skip-test-db"];
            server.run("mysql", &install);
        }
        server.start_again();
        server
    }

    /// A hot standby of `primary` (a PostgreSQL server of the test's own), streaming from it,
    /// on a free port of its own: its sessions are read-only, as on a production replica.
    pub fn standby_of(primary: &OwnServer) -> OwnServer {
        assert_eq!(primary.backend, Backend::Postgresql);
        assert!(primary.netns.is_none());
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if unsafe { libc::geteuid() } == 0 {
            let chown = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(data.path())
                .status()
                .unwrap();
            assert!(chown.success());
        }
        let standby = OwnServer {
            backend: Backend::Postgresql,
            data,
            port,
            host: primary.host.clone(),
            netns: None,
            extra_args: Vec::new(),
            mariadb: Default::default(),
        };
        let db = standby.data.path().join("db");
        let (host, primary_port) = (primary.host.as_str(), primary.port.to_string());
        // initdb's trust rules let loopback replicate; -R writes standby.signal and the
        // connection to the primary; a fast checkpoint starts the copy at once.
        let basebackup = ["pg_basebackup", "-h", host, "-p", &primary_port, "-U", "postgres"];
        let mut args = basebackup.to_vec();
        args.extend(["-D", db.to_str().unwrap(), "-R", "-X", "stream", "-c", "fast"]);
        standby.run("postgres", &args);
        standby.start_again();
        standby
    }

    /// Runs a server tool as the server's user (when the test runs as root).
    fn run(&self, user: &str, program_and_args: &[&str]) {
        let output = self.command(user, program_and_args).output().unwrap();
        assert!(
            output.status.success(),
            "{program_and_args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn command(&self, user: &str, program_and_args: &[&str]) -> std::process::Command {
        let (program, args) = program_and_args.split_first().unwrap();
        match &self.netns {
            Some(netns) => {
                let mut command = std::process::Command::new("ip");
                command.args(["netns", "exec", netns, "runuser", "-u", user, "--", program]);
                command.args(args);
                command
            }
            None => {
                let mut command = crate::as_user(user, program);
                command.args(args);
                command
            }
        }
    }

    fn pg_ctl(&self, action: &str) {
        let db = self.data.path().join("db");
        let mut options = format!("-p {} -c listen_addresses={} -k /tmp", self.port, self.host);
        for arg in &self.extra_args {
            options += &format!(" {arg}");
        }
        let args = ["pg_ctl", "-w", "-m", "fast", "-l", "/dev/null", "-D", db.to_str().unwrap()];
        let mut args = args.to_vec();
        args.extend(["-o", &options, action]);
        self.run("postgres", &args);
    }

    pub fn start_again(&self) {
        if self.backend == Backend::Postgresql {
            return self.pg_ctl("start");
        }
        let path = self.data.path();
        let mut args = vec![
            "/usr/sbin/mariadbd".to_owned(),
            "--no-defaults".to_owned(),
            format!("--datadir={}", path.join("db").display()),
            // Its own: a starting mariadbd deletes every `#sql` temporary table file of its
            // tmpdir, and another server's install (bootstrap) may be using one in /tmp.
            format!("--tmpdir={}", path.display()),
            format!("--port={}", self.port),
            format!("--bind-address={}", self.host),
            format!("--socket={}", path.join("sock").display()),
            format!("--log-error={}", path.join("error.log").display()),
            format!("--pid-file={}", path.join("pid").display()),
        ];
        args.extend(self.extra_args.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = self.command("mysql", &args).spawn().unwrap();
        *self.mariadb.borrow_mut() = Some(child);
        for _ in 0..100 {
            if self.answers() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(path.join("error.log")).unwrap_or_default();
        panic!("mariadbd did not start:\n{log}");
    }

    /// Whether the server accepts a session (from its own host: a namespace's server may be
    /// one this host cannot vouch for).
    fn answers(&self) -> bool {
        let ping = format!("--socket={}", self.data.path().join("sock").display());
        let mut command = self.command("mysql", &["mariadb-admin", &ping, "-u", "root", "ping"]);
        command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        command.status().is_ok_and(|status| status.success())
    }

    pub fn stop(&self) {
        if self.backend == Backend::Postgresql {
            return self.pg_ctl("stop");
        }
        if let Some(mut child) = self.mariadb.borrow_mut().take() {
            // mariadbd itself (runuser's child when run as root) shuts down cleanly on SIGTERM.
            let pid = std::fs::read_to_string(self.data.path().join("pid")).unwrap();
            unsafe { libc::kill(pid.trim().parse().unwrap(), libc::SIGTERM) };
            child.wait().unwrap();
        }
    }

    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// The server's address and port.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URI of database `database` on this server, as its superuser.
    pub fn uri_of(&self, database: &str) -> String {
        match self.backend {
            Backend::Postgresql => {
                format!("postgresql://postgres@{}:{}/{database}", self.host, self.port)
            }
            _ => format!("mysql://root@{}:{}/{database}", self.host, self.port),
        }
    }

    /// The URI of its `mlflow` database.
    pub fn uri(&self) -> String {
        self.uri_of("mlflow")
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.stop()));
    }
}

/// Another host on this machine: a network namespace joined to this one by a veth pair on a
/// private /30 of its own. Removed when dropped.
pub struct Netns {
    pub name: String,
    /// The namespace's address, which this host reaches over the veth pair.
    pub address: String,
}

impl Netns {
    pub fn new() -> Netns {
        // Unique per process and call: namespaces and interfaces are machine-wide.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = (std::process::id() % 250) * 4 + n;
        let name = format!("mj{}x{n}", std::process::id());
        let (outside, inside) = (format!("{name}a"), format!("{name}b"));
        let subnet = format!("10.{}.{}", 200 + (tag / 250) % 50, tag % 250);
        let ip = |args: &[&str]| {
            let status = std::process::Command::new("ip").args(args).status().unwrap();
            assert!(status.success(), "ip {args:?}");
        };
        ip(&["netns", "add", &name]);
        let netns = Netns { name: name.clone(), address: format!("{subnet}.2") };
        ip(&["link", "add", &outside, "type", "veth", "peer", "name", &inside]);
        ip(&["link", "set", &inside, "netns", &name]);
        ip(&["addr", "add", &format!("{subnet}.1/30"), "dev", &outside]);
        ip(&["link", "set", &outside, "up"]);
        ip(&["-n", &name, "addr", "add", &format!("{subnet}.2/30"), "dev", &inside]);
        ip(&["-n", &name, "link", "set", &inside, "up"]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        netns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and with it the other.
        let _ = std::process::Command::new("ip").args(["netns", "delete", &self.name]).status();
    }
}
