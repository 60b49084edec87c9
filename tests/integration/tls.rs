//! TLS that takes effect: each MySQL TLS option of MLflow's URIs (the client's `ssl_mode`, the
//! Python drivers' spellings) against a MariaDB without TLS and one with a self-signed
//! certificate, and libpq's `sslmode` against a PostgreSQL with one. Each server is the test's
//! own; the binary connects with the client libraries built into it.

use std::path::{Path, PathBuf};

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use mlflow_janitor::error::exit_code;
use mlflow_janitor::{Backend, DbConnection, StoreUri};

use crate::own_server::OwnServer;
use crate::{fails_with, janitor};

/// A certificate authority of the test's own, a server certificate it signed for 127.0.0.1, and
/// another authority that signed nothing: in a folder the server's user owns.
struct Certificates {
    folder: tempfile::TempDir,
}

impl Certificates {
    fn new(server_user: &str) -> Certificates {
        let folder = tempfile::tempdir().unwrap();
        let openssl = |command: &str| {
            let args: Vec<&str> = command.split_whitespace().collect();
            let output = std::process::Command::new("openssl")
                .args(&args)
                .current_dir(folder.path())
                .output()
                .unwrap();
            assert!(output.status.success(), "openssl {command}: {output:?}");
        };
        let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        for ca in ["ca", "wrong-ca"] {
            openssl(&format!("req -x509 {new_key} -keyout {ca}.key -out {ca}.pem -subj /CN={ca}"));
        }
        openssl(&format!("req {new_key} -keyout server.key -out server.csr -subj /CN=127.0.0.1"));
        std::fs::write(folder.path().join("san.ext"), "subjectAltName = IP:127.0.0.1\n").unwrap();
        openssl(
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
             -extfile san.ext",
        );
        // PostgreSQL refuses a key others may read; both servers read theirs as their own user.
        std::fs::set_permissions(
            folder.path().join("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        if unsafe { libc::geteuid() } == 0 {
            let owner = format!("{server_user}:{server_user}");
            let chown = std::process::Command::new("chown")
                .args(["-R", &owner])
                .arg(folder.path())
                .status()
                .unwrap();
            assert!(chown.success());
        }
        Certificates { folder }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.folder.path().join(file)
    }

    fn arg(&self, option: &str, file: &str) -> String {
        format!("{option}{}", self.path(file).display())
    }
}

/// `uri` with `query` appended.
fn with_query(uri: &str, query: &str) -> String {
    format!("{uri}?{query}")
}

fn file(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[derive(QueryableByName)]
struct Status {
    #[diesel(sql_type = Text, column_name = "Value")]
    value: String,
}

#[derive(QueryableByName)]
struct Encrypted {
    #[diesel(sql_type = Bool)]
    ssl: bool,
}

/// Whether the server sees the session of this connection encrypted.
fn encrypted(conn: &mut DbConnection) -> bool {
    match conn {
        DbConnection::Mysql(mysql) => !diesel::sql_query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .get_result::<Status>(mysql)
            .unwrap()
            .value
            .is_empty(),
        DbConnection::Postgresql(pg) => {
            diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .get_result::<Encrypted>(pg)
                .unwrap()
                .ssl
        }
        DbConnection::Sqlite(_) => unreachable!("a file has no session to encrypt"),
    }
}

#[test]
fn mysql_tls_that_a_server_without_it_cannot_give_is_refused() {
    let server = OwnServer::start(Backend::Mysql);
    let uri = server.uri().replacen("mysql://", "mysql+pymysql://", 1);
    janitor().args(["init", "--backend-store-uri", &uri]).assert().success();
    let ca = Certificates::new("mysql").path("ca.pem");
    // Each asks for TLS, in the client's spelling or a Python driver's.
    for query in [
        "ssl_mode=REQUIRED".to_owned(),
        format!("ssl_mode=VERIFY_IDENTITY&ssl_ca={}", file(&ca)),
        "ssl=true".to_owned(),
        format!("ssl_ca={}", file(&ca)),
    ] {
        let stderr = fails_with(
            janitor().args(["status", "--backend-store-uri", &with_query(&uri, &query)]),
            exit_code::STORE,
            "cannot connect to",
        );
        assert!(stderr.contains("SSL"), "{query}: {stderr}");
    }
    // TLS when the server offers it, or none: this server's session is plain.
    for query in ["ssl_mode=PREFERRED", "ssl_mode=DISABLED", "ssl_disabled=true", "charset=utf8mb4"]
    {
        let uri = with_query(&uri, query);
        janitor().args(["status", "--backend-store-uri", &uri]).assert().success();
        assert!(!encrypted(&mut StoreUri::parse(&uri).unwrap().establish().unwrap()), "{query}");
    }
}

#[test]
fn mysql_tls_options_take_effect_on_a_server_with_a_self_signed_certificate() {
    let certificates = Certificates::new("mysql");
    let server = OwnServer::start_with(
        Backend::Mysql,
        None,
        &[
            &certificates.arg("--ssl-ca=", "ca.pem"),
            &certificates.arg("--ssl-cert=", "server.pem"),
            &certificates.arg("--ssl-key=", "server.key"),
        ],
    );
    let uri = server.uri().replacen("mysql://", "mysql+pymysql://", 1);
    let (ca, wrong_ca) = (certificates.path("ca.pem"), certificates.path("wrong-ca.pem"));
    let required = with_query(&uri, "ssl_mode=REQUIRED");
    janitor().args(["init", "--backend-store-uri", &required]).assert().success();
    let connects = [
        required,
        with_query(&uri, &format!("ssl_mode=VERIFY_CA&ssl_ca={}", file(&ca))),
        // PyMySQL's reading: the certificate and the host name (127.0.0.1) verified.
        with_query(&uri, &format!("ssl_ca={}", file(&ca))),
        with_query(&uri, &format!("ssl_mode=VERIFY_IDENTITY&ssl_ca={}", file(&ca))),
    ];
    for uri in &connects {
        janitor().args(["status", "--backend-store-uri", uri]).assert().success();
        assert!(encrypted(&mut StoreUri::parse(uri).unwrap().establish().unwrap()), "{uri}");
    }
    for query in [
        format!("ssl_mode=VERIFY_CA&ssl_ca={}", file(&wrong_ca)),
        format!("ssl_ca={}&ssl_check_hostname=false", file(&wrong_ca)),
    ] {
        let stderr = fails_with(
            janitor().args(["status", "--backend-store-uri", &with_query(&uri, &query)]),
            exit_code::STORE,
            "cannot connect to",
        );
        assert!(stderr.contains("certificate verify failed"), "{query}: {stderr}");
    }
    // Asked for no verification, the CA cannot take effect: refused before connecting.
    let ignored_ca = with_query(&uri, &format!("ssl_mode=REQUIRED&ssl_ca={}", file(&ca)));
    fails_with(
        janitor().args(["status", "--backend-store-uri", &ignored_ca]),
        exit_code::USAGE,
        "ssl_ca verifies the server only with ssl_mode=VERIFY_CA or VERIFY_IDENTITY",
    );
}

#[test]
fn postgresql_sslmode_takes_effect_on_a_server_with_a_self_signed_certificate() {
    let certificates = Certificates::new("postgres");
    let server = OwnServer::start_with(
        Backend::Postgresql,
        None,
        &[
            "-c",
            "ssl=on",
            "-c",
            &certificates.arg("ssl_cert_file=", "server.pem"),
            "-c",
            &certificates.arg("ssl_key_file=", "server.key"),
        ],
    );
    let uri = server.uri().replacen("postgresql://", "postgresql+psycopg2://", 1);
    let required = with_query(&uri, "sslmode=require");
    janitor().args(["init", "--backend-store-uri", &required]).assert().success();
    let verified = with_query(
        &uri,
        &format!("sslmode=verify-full&sslrootcert={}", file(&certificates.path("ca.pem"))),
    );
    for uri in [&required, &verified] {
        janitor().args(["status", "--backend-store-uri", uri]).assert().success();
        assert!(encrypted(&mut StoreUri::parse(uri).unwrap().establish().unwrap()), "{uri}");
    }
    // libpq's `system`: the CA certificates OpenSSL is told are the system's.
    janitor()
        .args([
            "status",
            "--backend-store-uri",
            &with_query(&uri, "sslmode=verify-full&sslrootcert=system"),
        ])
        .env("SSL_CERT_FILE", certificates.path("ca.pem"))
        .assert()
        .success();
    let wrong_ca = certificates.path("wrong-ca.pem");
    let stderr = fails_with(
        janitor().args([
            "status",
            "--backend-store-uri",
            &with_query(&uri, &format!("sslmode=verify-full&sslrootcert={}", file(&wrong_ca))),
        ]),
        exit_code::STORE,
        "cannot connect to",
    );
    assert!(stderr.contains("certificate verify failed"), "{stderr}");
}
