//! MLflow's backend store URI as a value: parsed as `mlflow server --backend-store-uri` takes
//! it, its MySQL TLS options translated into the client's, its secrets redacted. No I/O here:
//! connecting is [`super::connection`]'s.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::Backend;
use crate::error::{Error, Result};

/// The URI schemes MLflow's store takes (SQLAlchemy's, with the driver suffixes MLflow users
/// write), and the backend each names.
const SCHEMES: &[(&str, Backend)] = &[
    ("postgresql", Backend::Postgresql),
    ("postgresql+psycopg2", Backend::Postgresql),
    ("postgresql+psycopg", Backend::Postgresql),
    ("postgresql+pg8000", Backend::Postgresql),
    ("mysql", Backend::Mysql),
    ("mysql+pymysql", Backend::Mysql),
    ("mysql+mysqldb", Backend::Mysql),
    ("mysql+mysqlconnector", Backend::Mysql),
    ("mariadb", Backend::Mysql),
    ("mariadb+pymysql", Backend::Mysql),
    ("mariadb+mysqldb", Backend::Mysql),
    ("mariadb+mariadbconnector", Backend::Mysql),
    ("sqlite", Backend::Sqlite),
    ("sqlite+pysqlite", Backend::Sqlite),
];

/// The store when none is given: MLflow 3's default, `./mlflow.db`.
pub const DEFAULT_URI: &str = "sqlite:///mlflow.db";

/// A backend store URI as `mlflow server --backend-store-uri` takes it, with what the database
/// driver needs to connect.
#[derive(Clone)]
pub struct StoreUri {
    pub(super) backend: Backend,
    /// What the user gave, to show in messages with the password hidden.
    pub(super) given: String,
    pub(super) target: Target,
    /// How long connecting to a server may take; zero waits for ever.
    pub(super) connect_timeout: Duration,
}

/// How long connecting may take when neither the URI (`connect_timeout=`, in seconds, as libpq
/// and MySQL's Python drivers read it) nor `--connect-timeout` says: a server that accepts the
/// connection and never answers must not hang a nightly job.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub(super) enum Target {
    /// A database server, as its driver's URL: SQLAlchemy's `+driver` suffix dropped, a MySQL
    /// URI's TLS options in the MySQL client's spelling ([`translate_mysql_tls`]).
    Server(Url),
    /// A SQLite database file.
    File(PathBuf),
}

impl StoreUri {
    pub fn parse(uri: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidUri { uri: redact(uri), reason: reason.into() };
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(invalid("it has no scheme, such as postgresql:// or sqlite:///"));
        };
        let Some(&(_, backend)) =
            SCHEMES.iter().find(|(known, _)| known.eq_ignore_ascii_case(scheme))
        else {
            let accepted: Vec<String> = SCHEMES.iter().map(|(s, _)| format!("{s}://")).collect();
            return Err(Error::UnsupportedScheme {
                scheme: scheme.to_owned(),
                accepted: accepted.join(", "),
            });
        };
        let target = match backend {
            Backend::Sqlite => {
                // SQLAlchemy's form: `sqlite:///relative.db`, `sqlite:////absolute.db`.
                let path = rest.split_once('?').map_or(rest, |(path, _)| path);
                let Some(path) = path.strip_prefix('/') else {
                    return Err(invalid(
                        "a SQLite URI has three slashes before a relative path \
                         (sqlite:///mlflow.db) and four before an absolute one",
                    ));
                };
                if path.is_empty() {
                    return Err(invalid("it names no database file (sqlite:///mlflow.db)"));
                }
                // Percent-decoded, as SQLAlchemy reads the database part (`with%20space.db`);
                // an invalid escape stays as written, as there.
                let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
                Target::File(PathBuf::from(path.as_ref()))
            }
            Backend::Postgresql | Backend::Mysql => {
                let mut url = Url::parse(uri).map_err(|e| invalid(&e.to_string()))?;
                let (driver_scheme, example) = match backend {
                    Backend::Postgresql => ("postgresql", "postgresql://HOST/DATABASE"),
                    _ => ("mysql", "mysql://HOST/DATABASE"),
                };
                url.set_scheme(driver_scheme).map_err(|()| invalid("cannot rewrite the scheme"))?;
                if url.path().trim_start_matches('/').is_empty() {
                    return Err(invalid(&format!("it names no database ({example})")));
                }
                if backend == Backend::Mysql {
                    translate_mysql_tls(&mut url).map_err(|reason| invalid(&reason))?;
                }
                Target::Server(url)
            }
        };
        let connect_timeout = match &target {
            Target::Server(url) => match url.query_pairs().find(|(k, _)| k == "connect_timeout") {
                Some((_, seconds)) => {
                    Duration::from_secs(seconds.trim().parse().map_err(|_| {
                        invalid("connect_timeout is a whole number of seconds (0: no limit)")
                    })?)
                }
                None => DEFAULT_CONNECT_TIMEOUT,
            },
            Target::File(_) => DEFAULT_CONNECT_TIMEOUT,
        };
        Ok(StoreUri { backend, given: uri.to_owned(), target, connect_timeout })
    }

    /// The same store, connected to within `timeout` (zero: no limit) whatever the URI says.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The store MLflow uses when given none: `./mlflow.db`.
    pub fn default_store() -> Self {
        StoreUri::parse(DEFAULT_URI).expect("the default URI is valid")
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URI as given, password included: to hand to another program (MLflow, a child).
    pub fn given(&self) -> &str {
        &self.given
    }

    /// The database name, percent-decoded as SQLAlchemy and libpq read it (`my%20db` is `my db`),
    /// or a SQLite store's file name.
    pub fn database(&self) -> Cow<'_, str> {
        match &self.target {
            Target::Server(url) => {
                percent_encoding::percent_decode_str(url.path().trim_start_matches('/'))
                    .decode_utf8_lossy()
            }
            Target::File(path) => {
                path.file_name().map_or(Cow::Borrowed(""), |n| n.to_string_lossy())
            }
        }
    }

    /// A MySQL database whose name the URI percent-encodes: diesel would hand the MySQL client
    /// the name as written, so the session connects without one and then `USE`s it.
    pub(super) fn mysql_database_to_use(&self) -> Option<Cow<'_, str>> {
        match &self.target {
            Target::Server(url) if self.backend == Backend::Mysql && url.path().contains('%') => {
                Some(self.database())
            }
            _ => None,
        }
    }

    /// A SQLite store's file.
    pub fn sqlite_file(&self) -> Option<&Path> {
        match &self.target {
            Target::File(path) => Some(path),
            Target::Server(_) => None,
        }
    }

    /// What the driver connects with.
    pub(super) fn connection_url(&self) -> String {
        match &self.target {
            // libpq bounds the whole connection, TLS and authentication included, in seconds.
            Target::Server(url) if self.backend == Backend::Postgresql => {
                let mut url = url.clone();
                let others: Vec<(String, String)> = url
                    .query_pairs()
                    .filter(|(k, _)| k != "connect_timeout")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let seconds = self.connect_timeout.as_secs_f64().ceil().to_string();
                url.query_pairs_mut()
                    .clear()
                    .extend_pairs(others)
                    .append_pair("connect_timeout", &seconds);
                url.to_string()
            }
            Target::Server(url) => {
                let mut url = url.clone();
                if self.mysql_database_to_use().is_some() {
                    url.set_path("");
                }
                url.to_string()
            }
            // `mode=rw`: never create a missing file (a typo would make an empty store).
            Target::File(path) => {
                let path = path.to_string_lossy();
                let escaped = path.replace('%', "%25").replace('?', "%3f").replace('#', "%23");
                format!("file:{escaped}?mode=rw")
            }
        }
    }

    /// The same server with another database (a SQLite store: another file in its folder):
    /// used to reach the server's maintenance database, or a sibling test database.
    pub fn with_database(&self, database: &str) -> StoreUri {
        match &self.target {
            Target::Server(url) => {
                let mut url = url.clone();
                url.set_path(&format!("/{database}"));
                let given = match Url::parse(&self.given) {
                    Ok(mut given) => {
                        given.set_path(&format!("/{database}"));
                        given.into()
                    }
                    Err(_) => url.to_string(),
                };
                StoreUri { given, target: Target::Server(url), ..self.clone() }
            }
            Target::File(path) => {
                let path = path.with_file_name(database);
                let given = format!("sqlite:///{}", path.display());
                StoreUri { given, target: Target::File(path), ..self.clone() }
            }
        }
    }
}

/// How a MySQL session is encrypted: the MySQL client's `ssl_mode`, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum SslMode {
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

impl SslMode {
    const ALL: [SslMode; 5] = [
        SslMode::Disabled,
        SslMode::Preferred,
        SslMode::Required,
        SslMode::VerifyCa,
        SslMode::VerifyIdentity,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Preferred => "PREFERRED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyCa => "VERIFY_CA",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }

    fn parse(value: &str) -> Option<SslMode> {
        SslMode::ALL.into_iter().find(|mode| mode.name().eq_ignore_ascii_case(value))
    }

    /// The mode a translated MySQL URL asks for; none: the client's default, PREFERRED.
    pub(super) fn of(url: &Url) -> Option<SslMode> {
        url.query_pairs().find(|(key, _)| key == "ssl_mode").and_then(|(_, v)| SslMode::parse(&v))
    }
}

/// The files of a TLS session, passed to the MySQL client as they are: the CA that verifies the
/// server, the client's certificate and its key.
const TLS_FILES: [&str; 3] = ["ssl_ca", "ssl_cert", "ssl_key"];

/// The Python MySQL drivers' TLS switches, which MLflow users write instead of `ssl_mode`:
/// PyMySQL's and mysql-connector's `ssl_disabled`, `ssl_verify_cert`, `ssl_verify_identity`,
/// SQLAlchemy's `ssl_check_hostname`, MariaDB Connector/Python's `ssl`.
const TLS_SWITCHES: [&str; 5] =
    ["ssl", "ssl_disabled", "ssl_verify_cert", "ssl_verify_identity", "ssl_check_hostname"];

/// Rewrites a MySQL URI's TLS options, in each spelling MLflow's MySQL drivers take, into the
/// MySQL client's own (`ssl_mode`, `ssl_ca`, `ssl_cert`, `ssl_key`: what diesel hands it), so
/// that each takes effect. An option that would not, or that contradicts another, is the error.
fn translate_mysql_tls(url: &mut Url) -> std::result::Result<(), String> {
    let mut mode = None;
    let mut switches: Vec<(&str, bool)> = Vec::new();
    let mut files: Vec<(&str, String)> = Vec::new();
    let mut others: Vec<(String, String)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in url.query_pairs() {
        let tls = key.starts_with("ssl") || key.starts_with("tls");
        if tls && seen.contains(&key.to_string()) {
            return Err(format!("`{key}` is given twice: keep one"));
        }
        if key == "ssl_mode" {
            mode = Some(SslMode::parse(&value).ok_or_else(|| {
                let modes: Vec<&str> = SslMode::ALL.iter().map(|m| m.name()).collect();
                format!("ssl_mode is one of {}, not `{value}`", modes.join(", "))
            })?);
        } else if let Some(switch) = TLS_SWITCHES.into_iter().find(|s| *s == key) {
            let on = match value.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(format!("{switch} is true or false, not `{value}`")),
            };
            switches.push((switch, on));
        } else if let Some(file) = TLS_FILES.into_iter().find(|f| *f == key) {
            files.push((file, value.into_owned()));
        } else if tls {
            return Err(format!(
                "mlflow-janitor cannot apply the TLS option `{key}`: remove it, or use those it \
                 takes: ssl_mode, ssl_ca, ssl_cert, ssl_key, {}",
                TLS_SWITCHES.join(", ")
            ));
        } else {
            others.push((key.into_owned(), value.into_owned()));
            continue;
        }
        seen.push(key.into_owned());
    }
    let has = |file: &str| files.iter().any(|(f, _)| *f == file);
    if has("ssl_key") && !has("ssl_cert") {
        return Err("ssl_key is the key of the client certificate ssl_cert: give both".into());
    }
    let mode = match mode {
        Some(_) if !switches.is_empty() => {
            return Err(format!(
                "give either ssl_mode or the Python drivers' switches ({}), not both",
                TLS_SWITCHES.join(", ")
            ));
        }
        Some(SslMode::Disabled) if !files.is_empty() => {
            return Err("ssl_mode=DISABLED turns TLS off, and ssl_ca, ssl_cert and ssl_key \
                        need it: remove one or the other"
                .into());
        }
        Some(mode) if has("ssl_ca") && mode < SslMode::VerifyCa => {
            return Err(format!(
                "ssl_ca verifies the server only with ssl_mode=VERIFY_CA or VERIFY_IDENTITY, \
                 not {}",
                mode.name()
            ));
        }
        Some(mode) => Some(mode),
        None => {
            let switch = |name: &str| switches.iter().find(|(s, _)| *s == name).map(|(_, on)| *on);
            drivers_ssl_mode(switch, has("ssl_ca"), has("ssl_cert"))?
        }
    };
    if mode.is_some_and(|mode| mode >= SslMode::VerifyCa) && !has("ssl_ca") {
        return Err("verifying the server needs the CA certificate file, ssl_ca=PATH (the \
                    MySQL client takes no default; the system's CAs are in a file such as \
                    /etc/ssl/certs/ca-certificates.crt)"
            .into());
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(others);
    if let Some(mode) = mode {
        query.append_pair("ssl_mode", mode.name());
    }
    query.extend_pairs(files);
    let query = query.finish();
    url.set_query(Some(&query).filter(|q| !q.is_empty()).map(String::as_str));
    Ok(())
}

/// The mode the Python drivers' switches and files ask for, as PyMySQL, the driver MLflow's
/// documentation names, reads them: a CA verifies the server's certificate and its host name
/// (`ssl_check_hostname=false` or `ssl_verify_identity=false`: the certificate only); a client
/// certificate, `ssl=true` or a verify switch require TLS; `ssl_disabled=true` or `ssl=false`
/// turn it off. None when nothing is asked: the client's default, PREFERRED.
fn drivers_ssl_mode(
    switch: impl Fn(&str) -> Option<bool>,
    ca: bool,
    client_certificate: bool,
) -> std::result::Result<Option<SslMode>, String> {
    let (identity, hostname) = (switch("ssl_verify_identity"), switch("ssl_check_hostname"));
    if identity.is_some() && hostname.is_some() && identity != hostname {
        return Err("ssl_verify_identity and ssl_check_hostname disagree: keep one".into());
    }
    let check_host = identity.or(hostname);
    let verify_cert = switch("ssl_verify_cert");
    if verify_cert == Some(false) && (ca || check_host == Some(true)) {
        return Err("ssl_verify_cert=false turns off the verification that ssl_ca or \
                    ssl_verify_identity ask for: keep one"
            .into());
    }
    let asked = if check_host == Some(true) || (ca && check_host.is_none()) {
        Some(SslMode::VerifyIdentity)
    } else if ca || verify_cert == Some(true) {
        Some(SslMode::VerifyCa)
    } else if client_certificate || switch("ssl") == Some(true) {
        Some(SslMode::Required)
    } else {
        None
    };
    let off = switch("ssl_disabled") == Some(true) || switch("ssl") == Some(false);
    match (off, asked) {
        (true, Some(_)) => Err("the URI turns TLS off (ssl_disabled=true or ssl=false) and asks \
                                for it: keep one"
            .into()),
        (true, None) => Ok(Some(SslMode::Disabled)),
        (false, asked) => Ok(asked),
    }
}

impl fmt::Display for StoreUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.given))
    }
}

impl fmt::Debug for StoreUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Hides the secrets of a URI that may not even parse, for messages and reports: the password
/// of `user:password@`, and the value of every query parameter named like a secret
/// (`password=`, `sslpassword=`, `passfile=`, `token=`, ...).
pub fn redact(uri: &str) -> String {
    let (uri, fragment) = uri.split_once('#').map_or((uri, None), |(u, f)| (u, Some(f)));
    let (base, query) = uri.split_once('?').map_or((uri, None), |(b, q)| (b, Some(q)));
    let mut redacted = match (base.find("://"), base.rfind('@')) {
        // The password is what follows the first `:` of the user info.
        (Some(start), Some(at)) if at > start => match base[start + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &base[..start + 3], &base[at..]),
            None => base.to_owned(),
        },
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if names_a_secret(key) => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        redacted += &format!("?{}", pairs.join("&"));
    }
    if let Some(fragment) = fragment {
        redacted += &format!("#{fragment}");
    }
    redacted
}

/// A query parameter that holds a secret, or says where one is: masked in every message.
fn names_a_secret(key: &str) -> bool {
    let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy().to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "credential", "auth"].iter().any(|word| key.contains(word))
        // An API or access key; `ssl_key`/`sslkey` only name the client key's file.
        || (key.ends_with("key") && !key.starts_with("ssl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_spelling_of_mlflow() {
        let servers = [
            ("postgresql", Backend::Postgresql, "postgresql"),
            ("postgresql+psycopg2", Backend::Postgresql, "postgresql"),
            ("postgresql+psycopg", Backend::Postgresql, "postgresql"),
            ("mysql", Backend::Mysql, "mysql"),
            ("mysql+pymysql", Backend::Mysql, "mysql"),
            ("mysql+mysqldb", Backend::Mysql, "mysql"),
            ("mariadb", Backend::Mysql, "mysql"),
        ];
        for (scheme, backend, driver) in servers {
            let uri =
                StoreUri::parse(&format!("{scheme}://u:p%40ss@db.example:6543/mlflow?charset=x"))
                    .unwrap();
            assert_eq!(uri.backend(), backend);
            // libpq is given the connect timeout; MySQL's is kept by this side.
            let timeout = if backend == Backend::Postgresql { "&connect_timeout=10" } else { "" };
            assert_eq!(
                uri.connection_url(),
                format!("{driver}://u:p%40ss@db.example:6543/mlflow?charset=x{timeout}")
            );
            assert_eq!(uri.database(), "mlflow");
        }
        let relative = StoreUri::parse("sqlite:///mlflow.db").unwrap();
        assert_eq!(relative.backend(), Backend::Sqlite);
        assert_eq!(relative.sqlite_file(), Some(Path::new("mlflow.db")));
        assert_eq!(relative.connection_url(), "file:mlflow.db?mode=rw");
        let absolute = StoreUri::parse("sqlite:////var/lib/mlflow/a?b.db").unwrap();
        assert_eq!(absolute.sqlite_file(), Some(Path::new("/var/lib/mlflow/a")));
        let odd = StoreUri::parse("sqlite:////tmp/50%#1.db").unwrap();
        assert_eq!(odd.connection_url(), "file:/tmp/50%25%231.db?mode=rw");
        // Percent-decoded as SQLAlchemy does, so the file MLflow's client opens.
        let spaced = StoreUri::parse("sqlite:///with%20space%2Fx.db").unwrap();
        assert_eq!(spaced.sqlite_file(), Some(Path::new("with space/x.db")));
        assert_eq!(StoreUri::default_store().sqlite_file(), Some(Path::new("mlflow.db")));
    }

    #[test]
    fn rejects_what_mlflow_would_not_take() {
        let err = StoreUri::parse("mongodb://localhost/mlflow").unwrap_err();
        assert!(err.to_string().contains("`mongodb`"), "{err}");
        assert!(err.to_string().contains("mysql+pymysql://"), "{err}");
        assert!(err.to_string().contains("sqlite://"), "{err}");
        for (uri, says) in [
            ("postgresql://localhost", "names no database"),
            ("mysql+pymysql://root@localhost", "names no database"),
            ("sqlite://", "three slashes"),
            ("sqlite:///", "names no database file"),
            ("sqlite://host/mlflow.db", "three slashes"),
            ("/var/lib/mlflow.db", "no scheme"),
        ] {
            let err = StoreUri::parse(uri).unwrap_err();
            assert!(err.to_string().contains(says), "{uri}: {err}");
        }
    }

    #[test]
    fn hides_the_password() {
        let uri = StoreUri::parse("postgresql+psycopg2://me:secret@localhost/mlflow").unwrap();
        assert_eq!(uri.to_string(), "postgresql+psycopg2://me:***@localhost/mlflow");
        assert_eq!(uri.given(), "postgresql+psycopg2://me:secret@localhost/mlflow");
        let err = StoreUri::parse("mongodb://me:secret@localhost/mlflow").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = StoreUri::parse("mysql://me:secret@localhost").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn hides_every_secret_of_the_query() {
        let uri = StoreUri::parse(
            "postgresql://me@db/mlflow?password=s1&sslmode=require&sslpassword=s2&passfile=s3\
             &sslkey=/k.pem&aws_secret_access_key=s4&Password=s5&api_key=s6",
        )
        .unwrap();
        let shown = uri.to_string();
        assert_eq!(
            shown,
            "postgresql://me@db/mlflow?password=***&sslmode=require&sslpassword=***\
             &passfile=***&sslkey=/k.pem&aws_secret_access_key=***&Password=***&api_key=***"
        );
        // In errors too, from a URI that does not even parse.
        let err = StoreUri::parse("mysql://me:pw@[::1/m?password=s1").unwrap_err();
        assert!(!err.to_string().contains("s1") && !err.to_string().contains("pw"), "{err}");
    }

    #[test]
    fn takes_the_connect_timeout_from_the_uri_else_ten_seconds() {
        let default = StoreUri::parse("postgresql://h/m").unwrap();
        assert_eq!(default.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        let own = StoreUri::parse("mysql://h/m?connect_timeout=3").unwrap();
        assert_eq!(own.connect_timeout, Duration::from_secs(3));
        let flag = own.with_connect_timeout(Duration::from_millis(1500));
        assert_eq!(flag.connect_timeout, Duration::from_millis(1500));
        let pg = StoreUri::parse("postgresql://h/m?connect_timeout=0&sslmode=require").unwrap();
        assert_eq!(pg.connection_url(), "postgresql://h/m?sslmode=require&connect_timeout=0");
        let err = StoreUri::parse("postgresql://h/m?connect_timeout=soon").unwrap_err();
        assert!(err.to_string().contains("whole number of seconds"), "{err}");
    }

    /// The query of the URL the MySQL client is given for a MySQL URI's query.
    fn mysql_tls(query: &str) -> String {
        let uri = StoreUri::parse(&format!("mysql+pymysql://u@h/m?{query}")).unwrap();
        let url = uri.connection_url();
        url.split_once('?').map_or("", |(_, q)| q).to_owned()
    }

    #[test]
    fn translates_every_tls_spelling_of_mysql_uris_into_the_clients() {
        for (given, client) in [
            // The MySQL client's own, as written.
            ("ssl_mode=required", "ssl_mode=REQUIRED"),
            ("ssl_mode=VERIFY_CA&ssl_ca=/c/ca.pem", "ssl_mode=VERIFY_CA&ssl_ca=%2Fc%2Fca.pem"),
            ("ssl_mode=DISABLED&charset=utf8mb4", "charset=utf8mb4&ssl_mode=DISABLED"),
            // Nothing asked: the client's default, PREFERRED.
            ("charset=utf8mb4&ssl_disabled=false", "charset=utf8mb4"),
            // PyMySQL's reading of a CA: certificate and host name verified.
            ("ssl_ca=ca.pem", "ssl_mode=VERIFY_IDENTITY&ssl_ca=ca.pem"),
            ("ssl_ca=ca.pem&ssl_check_hostname=false", "ssl_mode=VERIFY_CA&ssl_ca=ca.pem"),
            ("ssl_ca=ca.pem&ssl_verify_identity=false", "ssl_mode=VERIFY_CA&ssl_ca=ca.pem"),
            ("ssl_verify_cert=true&ssl_ca=ca.pem", "ssl_mode=VERIFY_IDENTITY&ssl_ca=ca.pem"),
            (
                "ssl_verify_cert=true&ssl_verify_identity=0&ssl_ca=ca.pem",
                "ssl_mode=VERIFY_CA&ssl_ca=ca.pem",
            ),
            ("ssl_cert=c.pem&ssl_key=k.pem", "ssl_mode=REQUIRED&ssl_cert=c.pem&ssl_key=k.pem"),
            ("ssl=true", "ssl_mode=REQUIRED"),
            ("ssl=false", "ssl_mode=DISABLED"),
            ("ssl_disabled=True", "ssl_mode=DISABLED"),
        ] {
            assert_eq!(mysql_tls(given), client, "{given}");
        }
    }

    #[test]
    fn refuses_a_mysql_tls_option_that_would_not_take_effect() {
        for (query, says) in [
            ("ssl_mode=ALWAYS", "ssl_mode is one of DISABLED, PREFERRED"),
            ("ssl_capath=/etc/ssl/certs", "cannot apply the TLS option `ssl_capath`"),
            ("ssl_cipher=AES256-SHA", "cannot apply the TLS option `ssl_cipher`"),
            ("tls_version=TLSv1.3", "cannot apply the TLS option `tls_version`"),
            ("ssl-mode=REQUIRED", "cannot apply the TLS option `ssl-mode`"),
            ("ssl_mode=REQUIRED&ssl_mode=DISABLED", "`ssl_mode` is given twice"),
            ("ssl=maybe", "ssl is true or false, not `maybe`"),
            ("ssl_mode=REQUIRED&ssl_verify_identity=true", "either ssl_mode or"),
            ("ssl_mode=DISABLED&ssl_cert=c.pem", "ssl_mode=DISABLED turns TLS off"),
            ("ssl_mode=REQUIRED&ssl_ca=ca.pem", "only with ssl_mode=VERIFY_CA or"),
            ("ssl_mode=PREFERRED&ssl_ca=ca.pem", "only with ssl_mode=VERIFY_CA or"),
            ("ssl_key=k.pem", "give both"),
            ("ssl_mode=VERIFY_CA", "needs the CA certificate file, ssl_ca=PATH"),
            ("ssl_verify_cert=true", "needs the CA certificate file, ssl_ca=PATH"),
            ("ssl_verify_identity=1", "needs the CA certificate file, ssl_ca=PATH"),
            ("ssl_disabled=true&ssl_ca=ca.pem", "turns TLS off"),
            ("ssl=false&ssl_verify_cert=true", "turns TLS off"),
            ("ssl_ca=ca.pem&ssl_verify_cert=false", "ssl_verify_cert=false turns off"),
            ("ssl_verify_identity=true&ssl_check_hostname=false", "disagree"),
        ] {
            let uri = format!("mysql+pymysql://me:pw@db/mlflow?{query}");
            let err = StoreUri::parse(&uri).unwrap_err();
            assert!(matches!(err, Error::InvalidUri { .. }), "{query}: {err}");
            assert!(err.to_string().contains(says), "{query}: {err}");
            assert!(!err.to_string().contains("pw"), "{err}");
        }
        // PostgreSQL's options are libpq's, which checks them itself.
        assert!(StoreUri::parse("postgresql://h/m?sslmode=verify-full&sslrootcert=system").is_ok());
    }

    #[test]
    fn names_a_sibling_database() {
        let pg = StoreUri::parse("postgresql+psycopg2://u:pw@h/one").unwrap().with_database("two");
        assert_eq!(pg.given(), "postgresql+psycopg2://u:pw@h/two");
        assert_eq!(pg.database(), "two");
        let sqlite = StoreUri::parse("sqlite:////tmp/x/one.db").unwrap().with_database("two.db");
        assert_eq!(sqlite.given(), "sqlite:////tmp/x/two.db");
        assert_eq!(sqlite.database(), "two.db");
    }
}
