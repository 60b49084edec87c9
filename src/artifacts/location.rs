//! Where an entity's artifacts are: the URI the store names, resolved into a local path or a
//! bucket prefix, and refused where deleting it would not be safe. Pure: no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use object_store::path::Path as ObjectPath;
use percent_encoding::percent_decode_str;

use super::ArtifactError;

/// The object stores besides the local filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cloud {
    S3,
    Gcs,
}

impl Cloud {
    fn scheme(self) -> &'static str {
        match self {
            Cloud::S3 => "s3",
            Cloud::Gcs => "gs",
        }
    }
}

/// A resolved artifact location: an absolute local path, or a prefix in a bucket, with no `.`
/// or `..` segment. Prefixes are whole path segments: `s3://b/1/abc` holds `s3://b/1/abc/x`,
/// never `s3://b/1/abcd`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    Local(PathBuf),
    Cloud { cloud: Cloud, bucket: String, prefix: ObjectPath },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::Cloud { cloud, bucket, prefix } => {
                write!(f, "{}://{bucket}/{prefix}", cloud.scheme())
            }
        }
    }
}

impl Location {
    /// A text that orders locations so that those inside this one follow it and start with
    /// it: `file:///a/b/` holds `file:///a/b/c/`, never `file:///a/bc/`.
    pub fn key(&self) -> String {
        let mut key = match self {
            Location::Local(path) => format!("file://{}", path.display()),
            Location::Cloud { cloud, bucket, prefix } => {
                format!("{}://{bucket}/{prefix}", cloud.scheme())
            }
        };
        if !key.ends_with('/') {
            key.push('/');
        }
        key
    }

    /// Whether `other` is this location or lies inside it, segment by segment: `/a/b` holds
    /// `/a/b` and `/a/b/c`, not `/a/bc`; locations in different buckets or stores never do.
    pub fn contains(&self, other: &Location) -> bool {
        match (self, other) {
            (Location::Local(outer), Location::Local(inner)) => inner.starts_with(outer),
            (
                Location::Cloud { cloud, bucket, prefix },
                Location::Cloud { cloud: other_cloud, bucket: other_bucket, prefix: other_prefix },
            ) => {
                cloud == other_cloud
                    && bucket == other_bucket
                    && other_prefix.prefix_matches(prefix)
            }
            _ => false,
        }
    }
}

/// Locations, counted with repeats, so that "which of them lie inside this one?" is one ordered
/// range: a purge indexes every artifact location its store names, and forgets an entity's as
/// its rows go.
#[derive(Debug, Default)]
pub struct LocationIndex {
    counts: BTreeMap<String, u32>,
}

impl LocationIndex {
    pub fn insert(&mut self, location: &Location) {
        *self.counts.entry(location.key()).or_default() += 1;
    }

    pub fn remove(&mut self, location: &Location) {
        let key = location.key();
        if let Some(count) = self.counts.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&key);
            }
        }
    }

    /// The indexed locations inside `location`, itself included, as keys ([`Location::key`])
    /// with how many times each was indexed.
    pub fn inside(&self, location: &Location) -> impl Iterator<Item = (&str, u32)> {
        let key = location.key();
        self.counts
            .range(key.clone()..)
            .take_while(move |(inner, _)| inner.starts_with(&key))
            .map(|(inner, count)| (inner.as_str(), *count))
    }
}

/// A root that files are kept under (the server's `--artifacts-destination`, an archive's
/// directory): a path, relative to the current directory or absolute, or a `file://`, `s3://`
/// or `gs://` URI.
pub fn root(given: &str) -> Result<Location, ArtifactError> {
    let invalid = |why| ArtifactError::InvalidDestination { destination: given.to_owned(), why };
    match parse(given) {
        Ok(Parsed::Location(location)) => Ok(location),
        Ok(Parsed::Proxied(_)) => Err(invalid("it must be where the server stores artifacts")),
        Ok(Parsed::Unsupported(_)) => Err(invalid("use a path, a file://, s3:// or gs:// URI")),
        Err(Why::Relative) => {
            let absolute =
                std::path::absolute(given).map_err(|_| invalid("it cannot be made absolute"))?;
            match parse(&absolute.to_string_lossy()) {
                Ok(Parsed::Location(location)) => Ok(location),
                Err(why) => Err(invalid(why.text())),
                Ok(_) => Err(invalid("it cannot be made absolute")),
            }
        }
        Err(why) => Err(invalid(why.text())),
    }
}

/// Turns the artifact URIs MLflow stores into [`Location`]s, refusing those that are not safe
/// to delete. Pure: it touches no store.
#[derive(Debug, Clone)]
pub struct Resolver {
    destination: Option<Location>,
    home: Option<PathBuf>,
}

impl Resolver {
    /// `artifacts_destination` is the root `mlflow server --artifacts-destination` stores
    /// proxied artifacts in (a path, relative to the current directory or absolute, a `file://`,
    /// `s3://` or `gs://` URI); `None` makes every `mlflow-artifacts:` URI an error.
    pub fn new(artifacts_destination: Option<&str>) -> Result<Self, ArtifactError> {
        let destination = artifacts_destination.map(root).transpose()?;
        Ok(Resolver { destination, home: std::env::home_dir() })
    }

    /// The location `uri` names, if it is one mlflow-janitor may delete: never the filesystem
    /// root, a top-level directory, a home directory or a bucket's root, never a relative path
    /// or one with a `..` segment (percent-encoded or not).
    pub fn resolve(&self, uri: &str) -> Result<Location, ArtifactError> {
        let location = self.locate(uri)?;
        self.check_deletable(&location)
            .map_err(|why| ArtifactError::Refused { uri: uri.to_owned(), why: why.text() })?;
        Ok(location)
    }

    /// The location `uri` names, deletable or not: what a live entity points at.
    pub fn locate(&self, uri: &str) -> Result<Location, ArtifactError> {
        let refused = |why: Why| ArtifactError::Refused { uri: uri.to_owned(), why: why.text() };
        let location = match parse(uri).map_err(refused)? {
            Parsed::Location(location) => location,
            Parsed::Unsupported(scheme) => {
                return Err(ArtifactError::Unsupported { uri: uri.to_owned(), scheme });
            }
            Parsed::Proxied(segments) => match &self.destination {
                None => return Err(ArtifactError::NoDestination { uri: uri.to_owned() }),
                Some(_) if segments.is_empty() => return Err(refused(Why::DestinationRoot)),
                Some(Location::Local(root)) => {
                    Location::Local(segments.iter().fold(root.clone(), |path, s| path.join(s)))
                }
                Some(Location::Cloud { cloud, bucket, prefix }) => {
                    let mut key = prefix.as_ref().to_owned();
                    for segment in &segments {
                        if !key.is_empty() {
                            key.push('/');
                        }
                        key.push_str(segment);
                    }
                    let prefix = ObjectPath::parse(&key).map_err(|_| refused(Why::BadKey))?;
                    Location::Cloud { cloud: *cloud, bucket: bucket.clone(), prefix }
                }
            },
        };
        Ok(location)
    }

    fn check_deletable(&self, location: &Location) -> Result<(), Why> {
        match location {
            Location::Local(path) => {
                let depth = path.components().count() - 1; // the root, then the segments
                let parent = path.parent().and_then(Path::file_name);
                if depth < 2 {
                    Err(Why::TopLevel)
                } else if self.home.as_deref() == Some(path.as_path())
                    || (depth == 2
                        && matches!(parent.and_then(|p| p.to_str()), Some("home" | "Users")))
                {
                    Err(Why::Home)
                } else {
                    Ok(())
                }
            }
            Location::Cloud { prefix, .. } if prefix.as_ref().is_empty() => Err(Why::BucketRoot),
            Location::Cloud { .. } => Ok(()),
        }
    }
}

/// Why a URI cannot be deleted; the texts end the [`ArtifactError::Refused`] message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Empty,
    Relative,
    DotSegment,
    EmptySegment,
    NotUtf8,
    QueryOrFragment,
    OtherHost,
    NoBucket,
    BadKey,
    TopLevel,
    Home,
    BucketRoot,
    DestinationRoot,
}

impl Why {
    fn text(self) -> &'static str {
        match self {
            Why::Empty => "the location is empty",
            Why::Relative => {
                "it is a relative path, and which directory it was relative to is unknown"
            }
            Why::DotSegment => "it has a `.` or `..` segment",
            Why::EmptySegment => "it has an empty segment (`//`) in an object key",
            Why::NotUtf8 => "it percent-encodes bytes that are not UTF-8",
            Why::QueryOrFragment => "it has a query or a fragment (`?`, `#`)",
            Why::OtherHost => "it is a file on another host",
            Why::NoBucket => "it names no bucket",
            Why::BadKey => "it is not a valid object key (control characters)",
            Why::TopLevel => "it is the filesystem root or a top-level directory",
            Why::Home => "it is a home directory",
            Why::BucketRoot => "it is the root of a bucket",
            Why::DestinationRoot => "it is the root of --artifacts-destination",
        }
    }
}

enum Parsed {
    Location(Location),
    /// The segments of an `mlflow-artifacts:` URI's path, decoded, to join to the destination.
    Proxied(Vec<String>),
    Unsupported(String),
}

/// Parses a location as MLflow stores it, with no check of what it points at.
fn parse(uri: &str) -> Result<Parsed, Why> {
    if uri.is_empty() {
        return Err(Why::Empty);
    }
    let Some((scheme, rest)) = uri.split_once(':').filter(|(scheme, _)| is_scheme(scheme)) else {
        // A plain path: MLflow's local store percent-decodes it too (`url2pathname`).
        if !uri.starts_with('/') {
            return Err(Why::Relative);
        }
        return Ok(local(segments(uri, true)?));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "mlflow-artifacts" && rest.contains(['?', '#']) {
        return Err(Why::QueryOrFragment);
    }
    match scheme.as_str() {
        "file" => {
            let path = match rest.strip_prefix("//") {
                Some(authority_path) => {
                    let (host, path) = split_authority(authority_path);
                    if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
                        return Err(Why::OtherHost);
                    }
                    path
                }
                None => rest,
            };
            if !path.starts_with('/') {
                return Err(Why::Relative);
            }
            Ok(local(segments(path, true)?))
        }
        "s3" | "gs" => {
            let cloud = if scheme == "s3" { Cloud::S3 } else { Cloud::Gcs };
            let (bucket, key) = split_authority(rest.strip_prefix("//").ok_or(Why::NoBucket)?);
            if bucket.is_empty() {
                return Err(Why::NoBucket);
            }
            // boto3 and google-cloud-storage take the key as written, less the path's first
            // `/`: no decoding, and `s3://b//k` is the key `/k`, which object_store cannot
            // address.
            let key = key.strip_prefix('/').unwrap_or(key).trim_end_matches('/');
            if key.split('/').any(str::is_empty) && !key.is_empty() {
                return Err(Why::EmptySegment);
            }
            segments(key, false)?;
            let prefix = ObjectPath::parse(key).map_err(|_| Why::BadKey)?;
            Ok(Parsed::Location(Location::Cloud { cloud, bucket: bucket.to_owned(), prefix }))
        }
        "mlflow-artifacts" => {
            // `mlflow-artifacts:/PATH` or `mlflow-artifacts://HOST/PATH`: the server decodes PATH
            // (it arrives in a request URL) and stores it under its destination.
            let path = match rest.strip_prefix("//") {
                Some(authority_path) => split_authority(authority_path).1,
                None => rest,
            };
            let path = path.split(['?', '#']).next().unwrap_or_default();
            Ok(Parsed::Proxied(segments(path, true)?))
        }
        _ => Ok(Parsed::Unsupported(scheme)),
    }
}

/// A URI scheme of two letters or more (`C:` is a Windows drive, not a scheme).
fn is_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    scheme.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `host/path` → (`host`, `/path`).
fn split_authority(authority_path: &str) -> (&str, &str) {
    match authority_path.find('/') {
        Some(slash) => authority_path.split_at(slash),
        None => (authority_path, ""),
    }
}

/// The non-empty segments of `path`, percent-decoded first if `decode` (so `a%2Fb` is two).
/// A `.` or `..` segment is refused, in the path as written and decoded, whatever `decode` says:
/// `..`, `%2E%2E`, `a%2F..%2Fb` alike.
fn segments(path: &str, decode: bool) -> Result<Vec<String>, Why> {
    let decoded = percent_decode_str(path).decode_utf8().map_err(|_| Why::NotUtf8);
    let dots = |path: &str| path.split('/').any(|s| s == "." || s == "..");
    if dots(path) || decoded.as_deref().is_ok_and(dots) {
        return Err(Why::DotSegment);
    }
    let path = if decode { decoded? } else { path.into() };
    Ok(path.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect())
}

fn local(segments: Vec<String>) -> Parsed {
    let root = PathBuf::from("/");
    Parsed::Location(Location::Local(segments.iter().fold(root, |path, s| path.join(s))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(cloud: Cloud, bucket: &str, prefix: &str) -> Location {
        Location::Cloud { cloud, bucket: bucket.into(), prefix: ObjectPath::parse(prefix).unwrap() }
    }

    fn local(path: &str) -> Location {
        Location::Local(PathBuf::from(path))
    }

    #[test]
    fn resolves_the_locations_mlflow_stores() {
        let plain = Resolver::new(None).unwrap();
        let run = "1/0123abcd/artifacts";
        let cases = [
            ("file:///srv/mlruns/1/0123abcd/artifacts", local("/srv/mlruns/1/0123abcd/artifacts")),
            ("file://localhost/srv/mlruns/1", local("/srv/mlruns/1")),
            ("file:/srv/mlruns/1", local("/srv/mlruns/1")),
            // pathlib's as_uri() percent-encodes; MLflow decodes plain paths as well.
            ("file:///srv/my%20runs/1", local("/srv/my runs/1")),
            ("file:///srv/mlruns%2F1/abc", local("/srv/mlruns/1/abc")),
            ("/srv/my%20runs/1", local("/srv/my runs/1")),
            ("/srv/mlruns//1/", local("/srv/mlruns/1")),
            (
                "s3://bucket/prefix/1/0123abcd/artifacts",
                cloud(Cloud::S3, "bucket", &format!("prefix/{run}")),
            ),
            ("s3://bucket/1/", cloud(Cloud::S3, "bucket", "1")),
            ("s3://bucket/a%20b/1", cloud(Cloud::S3, "bucket", "a%20b/1")),
            ("gs://bucket/mlruns/1", cloud(Cloud::Gcs, "bucket", "mlruns/1")),
        ];
        for (uri, expected) in cases {
            assert_eq!(plain.resolve(uri).unwrap(), expected, "{uri}");
        }
        let s3 = Resolver::new(Some("s3://b/root")).unwrap();
        let on_disk = Resolver::new(Some("file:///srv/mlartifacts")).unwrap();
        let bucket_root = Resolver::new(Some("s3://b")).unwrap();
        let proxied = [
            (
                &s3,
                "mlflow-artifacts:/1/abc/artifacts",
                cloud(Cloud::S3, "b", "root/1/abc/artifacts"),
            ),
            (&s3, "mlflow-artifacts://tracking:5000/1/abc", cloud(Cloud::S3, "b", "root/1/abc")),
            (
                &on_disk,
                "mlflow-artifacts:/1/abc/artifacts",
                local("/srv/mlartifacts/1/abc/artifacts"),
            ),
            (&on_disk, "mlflow-artifacts:/1/a%20b", local("/srv/mlartifacts/1/a b")),
            (&bucket_root, "mlflow-artifacts:/1", cloud(Cloud::S3, "b", "1")),
        ];
        for (resolver, uri, expected) in proxied {
            assert_eq!(resolver.resolve(uri).unwrap(), expected, "{uri}");
        }
        // A relative destination is taken from the current directory, as the server does.
        let cwd = std::env::current_dir().unwrap();
        for relative in ["mlartifacts", "./mlartifacts"] {
            let relative = Resolver::new(Some(relative)).unwrap();
            assert_eq!(
                relative.resolve("mlflow-artifacts:/3/x").unwrap(),
                Location::Local(cwd.join("mlartifacts/3/x"))
            );
        }
    }

    #[test]
    fn refuses_what_is_not_safe_to_delete() {
        let resolver = Resolver::new(Some("s3://b/root")).unwrap();
        let refused = [
            ("", Why::Empty),
            ("mlruns/1/abc/artifacts", Why::Relative),
            ("./mlruns/1", Why::Relative),
            ("~/mlruns/1", Why::Relative),
            (r"C:\mlruns\1", Why::Relative),
            ("file:mlruns/1", Why::Relative),
            ("/srv/mlruns/1/../../etc", Why::DotSegment),
            ("/srv/mlruns/./1", Why::DotSegment),
            ("file:///srv/mlruns/%2E%2E/x", Why::DotSegment),
            ("file:///srv/mlruns/%2e./x", Why::DotSegment),
            ("file:///srv/mlruns/a%2F..%2F..%2Fetc", Why::DotSegment),
            ("mlflow-artifacts:/1/a%2F..%2F..%2Fb", Why::DotSegment),
            ("s3://bucket/1/a%2F..%2Fb", Why::DotSegment),
            ("s3://bucket/1/../2", Why::DotSegment),
            ("s3://bucket/1/%2E%2E/2", Why::DotSegment),
            ("mlflow-artifacts:/1/%2E%2E/%2E%2E", Why::DotSegment),
            ("file:///srv/%FF/1", Why::NotUtf8),
            ("s3://bucket", Why::BucketRoot),
            ("s3://bucket/", Why::BucketRoot),
            ("s3://bucket//", Why::BucketRoot),
            ("gs://bucket", Why::BucketRoot),
            ("s3://", Why::NoBucket),
            ("s3:/bucket/1", Why::NoBucket),
            ("s3://bucket/a//b", Why::EmptySegment),
            ("s3://bucket//1/abc", Why::EmptySegment),
            ("/srv/mlruns/%2E%2E/x", Why::DotSegment),
            ("s3://bucket/1?versionId=2", Why::QueryOrFragment),
            ("file://otherhost/srv/mlruns/1", Why::OtherHost),
            ("/", Why::TopLevel),
            ("file:///", Why::TopLevel),
            ("/srv", Why::TopLevel),
            ("/C:", Why::TopLevel),
            ("file:///C:/", Why::TopLevel),
            ("/home/alice", Why::Home),
            ("/Users/alice/", Why::Home),
        ];
        for (uri, why) in refused {
            match resolver.resolve(uri) {
                Err(ArtifactError::Refused { why: text, .. }) => {
                    assert_eq!(text, why.text(), "{uri}")
                }
                other => panic!("{uri}: {other:?}"),
            }
        }
        // The destination's root itself is no entity's location.
        for root in ["mlflow-artifacts:/", "mlflow-artifacts://tracking:5000/", "mlflow-artifacts:"]
        {
            let err = resolver.resolve(root).unwrap_err();
            assert!(err.to_string().contains("the root of --artifacts-destination"), "{err}");
        }
        if let Some(home) = std::env::home_dir().filter(|h| h.components().count() > 2) {
            let err = resolver.resolve(&home.to_string_lossy()).unwrap_err();
            assert!(err.to_string().contains("a home directory"), "{err}");
        }
    }

    #[test]
    fn proxied_uris_need_a_destination_and_other_stores_are_named() {
        let resolver = Resolver::new(None).unwrap();
        let err = resolver.resolve("mlflow-artifacts:/1/abc/artifacts").unwrap_err();
        assert!(matches!(err, ArtifactError::NoDestination { .. }), "{err:?}");
        assert!(err.to_string().contains("pass --artifacts-destination"), "{err}");
        for (uri, scheme) in [
            ("wasbs://c@acct.blob.core.windows.net/1", "wasbs"),
            ("hdfs://nn/mlruns/1", "hdfs"),
            ("dbfs:/databricks/mlflow/1", "dbfs"),
            ("HTTP://host/1", "http"),
        ] {
            match resolver.resolve(uri) {
                Err(ArtifactError::Unsupported { scheme: named, .. }) => assert_eq!(named, scheme),
                other => panic!("{uri}: {other:?}"),
            }
        }
        for (destination, why) in [
            ("mlflow-artifacts:/x", "where the server stores"),
            ("s3://", "names no bucket"),
            ("/srv/../x", "`..`"),
            ("dbfs:/x", "use a path"),
        ] {
            let err = Resolver::new(Some(destination)).unwrap_err();
            assert!(
                matches!(&err, ArtifactError::InvalidDestination { .. })
                    && err.to_string().contains(why),
                "{destination}: {err}"
            );
        }
    }

    #[test]
    fn containment_is_by_whole_segments() {
        let outer = local("/a/b");
        assert!(outer.contains(&local("/a/b")));
        assert!(outer.contains(&local("/a/b/c/d")));
        assert!(!outer.contains(&local("/a/bc")));
        assert!(!outer.contains(&local("/a")));
        assert!(!local("/a/b/c").contains(&outer));
        let exp = cloud(Cloud::S3, "b", "mlruns/1");
        assert!(exp.contains(&cloud(Cloud::S3, "b", "mlruns/1/abc/artifacts")));
        assert!(exp.contains(&cloud(Cloud::S3, "b", "mlruns/1")));
        assert!(!exp.contains(&cloud(Cloud::S3, "b", "mlruns/10/abc")));
        assert!(!exp.contains(&cloud(Cloud::S3, "other", "mlruns/1/abc")));
        assert!(!exp.contains(&cloud(Cloud::Gcs, "b", "mlruns/1/abc")));
        assert!(!exp.contains(&local("/b/mlruns/1/abc")));

        // Resolved from different spellings, the same folder is the same location.
        let resolver = Resolver::new(Some("/srv/mlartifacts")).unwrap();
        let mut index = LocationIndex::default();
        for uri in [
            "file:///srv/mlartifacts/1/run-a/artifacts",
            "mlflow-artifacts:/1/run-b/artifacts",
            "/srv/mlartifacts/1/run-b/artifacts",
            "/srv/mlartifacts/10/run-c/artifacts",
            "/srv/mlartifacts/1",
            "s3://srv/mlartifacts/1/run-d",
        ] {
            index.insert(&resolver.locate(uri).unwrap());
        }
        let inside = |index: &LocationIndex, uri: &str| -> Vec<(String, u32)> {
            let location = resolver.resolve(uri).unwrap();
            index.inside(&location).map(|(key, n)| (key.to_owned(), n)).collect()
        };
        assert_eq!(
            inside(&index, "mlflow-artifacts:/1"),
            [
                ("file:///srv/mlartifacts/1/".to_owned(), 1),
                ("file:///srv/mlartifacts/1/run-a/artifacts/".to_owned(), 1),
                ("file:///srv/mlartifacts/1/run-b/artifacts/".to_owned(), 2),
            ]
        );
        assert_eq!(
            inside(&index, "/srv/mlartifacts/1/run-b"),
            [inside(&index, "/srv/mlartifacts/1")[2].clone()]
        );
        assert!(inside(&index, "/srv/mlartifacts/1/run-bb").is_empty());
        index.remove(&resolver.locate("/srv/mlartifacts/1/run-b/artifacts").unwrap());
        assert_eq!(inside(&index, "/srv/mlartifacts/1/run-b")[0].1, 1);
        index.remove(&resolver.locate("mlflow-artifacts:/1/run-b/artifacts").unwrap());
        assert!(inside(&index, "/srv/mlartifacts/1/run-b").is_empty());
    }
}
