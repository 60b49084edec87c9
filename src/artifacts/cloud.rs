//! The object stores' settings, read from the environment as MLflow reads them, and their
//! clients.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::{ClientConfigKey, ObjectStore, RetryConfig};

use super::Cloud;

/// The settings of the object store clients, read from the environment as MLflow reads them.
#[derive(Debug, Clone, Default)]
pub struct CloudConfig {
    s3: Vec<(AmazonS3ConfigKey, String)>,
    gcs: Vec<(GoogleConfigKey, String)>,
}

impl CloudConfig {
    /// The process's environment: see [`CloudConfig::from_vars`].
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// S3: every `AWS_*` variable object_store knows (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_DEFAULT_REGION`,
    /// `AWS_ENDPOINT_URL`, web identity and container credentials, ...), then MLflow's own:
    /// `MLFLOW_S3_ENDPOINT_URL` (an S3-compatible server; it wins over `AWS_ENDPOINT_URL*`, as
    /// in MLflow), `MLFLOW_S3_IGNORE_TLS`, `MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE`. An `http://`
    /// endpoint is allowed. GCS: every `GOOGLE_*` variable object_store knows
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT`, ...).
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars: BTreeMap<String, String> =
            vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let mut config = CloudConfig::default();
        for (name, value) in &vars {
            let key = name.to_ascii_lowercase();
            if name.starts_with("AWS_") {
                if let Ok(key) = key.parse() {
                    config.s3.push((key, value.clone()));
                }
            } else if name.starts_with("GOOGLE_") {
                if let Ok(key) = key.parse() {
                    config.gcs.push((key, value.clone()));
                }
            }
        }
        if let Some(endpoint) = vars.get("MLFLOW_S3_ENDPOINT_URL").filter(|e| !e.is_empty()) {
            config.s3.retain(|(key, _)| {
                !matches!(key, AmazonS3ConfigKey::Endpoint | AmazonS3ConfigKey::S3Endpoint)
            });
            config.s3.push((AmazonS3ConfigKey::Endpoint, endpoint.clone()));
        }
        let endpoint_is_http = config.s3.iter().any(|(key, value)| {
            matches!(key, AmazonS3ConfigKey::Endpoint | AmazonS3ConfigKey::S3Endpoint)
                && value.to_ascii_lowercase().starts_with("http://")
        });
        if endpoint_is_http {
            config.s3.push((AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp), "true".into()));
        }
        if vars.get("MLFLOW_S3_IGNORE_TLS").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            let key = AmazonS3ConfigKey::Client(ClientConfigKey::AllowInvalidCertificates);
            config.s3.push((key, "true".into()));
        }
        let style = vars.get("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE").map(|s| s.to_ascii_lowercase());
        if let Some(virtual_hosted) = match style.as_deref() {
            Some("virtual") => Some("true"),
            Some("path") => Some("false"),
            _ => None,
        } {
            let key = AmazonS3ConfigKey::VirtualHostedStyleRequest;
            config.s3.push((key, virtual_hosted.into()));
        }
        config
    }

    pub(crate) fn client(
        &self,
        cloud: Cloud,
        bucket: &str,
    ) -> object_store::Result<Arc<dyn ObjectStore>> {
        // A store that does not answer fails its location in about half a minute, not the
        // default three.
        let retry = RetryConfig {
            max_retries: 4,
            retry_timeout: Duration::from_secs(30),
            ..RetryConfig::default()
        };
        Ok(match cloud {
            Cloud::S3 => {
                let builder = self
                    .s3
                    .iter()
                    .fold(AmazonS3Builder::new(), |builder, (k, v)| builder.with_config(*k, v));
                Arc::new(builder.with_bucket_name(bucket).with_retry(retry).build()?)
            }
            Cloud::Gcs => {
                let builder =
                    self.gcs.iter().fold(GoogleCloudStorageBuilder::new(), |builder, (k, v)| {
                        builder.with_config(*k, v)
                    });
                Arc::new(builder.with_bucket_name(bucket).with_retry(retry).build()?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_s3_settings_as_mlflow_does() {
        let config = CloudConfig::from_vars([
            ("AWS_ACCESS_KEY_ID", "key"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_DEFAULT_REGION", "eu-west-3"),
            ("AWS_ENDPOINT_URL", "https://elsewhere.example"),
            ("AWS_PROFILE", "ignored"),
            ("MLFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("MLFLOW_S3_IGNORE_TLS", "true"),
            ("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "virtual"),
            ("GOOGLE_APPLICATION_CREDENTIALS", "/etc/gcs.json"),
            ("HOME", "/root"),
        ]);
        let s3: Vec<(String, &str)> =
            config.s3.iter().map(|(k, v)| (k.as_ref().to_owned(), v.as_str())).collect();
        let expected = [
            ("aws_access_key_id", "key"),
            ("aws_default_region", "eu-west-3"),
            ("aws_secret_access_key", "secret"),
            ("aws_endpoint", "http://127.0.0.1:9000"),
            ("allow_http", "true"),
            ("allow_invalid_certificates", "true"),
            ("aws_virtual_hosted_style_request", "true"),
        ];
        let expected: Vec<(String, &str)> =
            expected.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        assert_eq!(s3, expected);
        assert_eq!(config.gcs.len(), 1);
        // Without MLflow's endpoint, AWS's own applies, and an https one needs nothing more.
        let aws = CloudConfig::from_vars([("AWS_ENDPOINT_URL_S3", "https://minio.example")]);
        assert_eq!(aws.s3.len(), 1);
        let http = CloudConfig::from_vars([("AWS_ENDPOINT_URL", "HTTP://minio:9000")]);
        assert_eq!(http.s3.len(), 2);
    }
}
