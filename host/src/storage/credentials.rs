//! Where the native host's S3 credentials come from: fixed keys, or AWS's default credential
//! chain (environment, shared config and credentials files with `AWS_PROFILE`, web identity,
//! ECS / EKS Pod Identity container credentials, EC2 IMDSv2, SSO), refreshed before they
//! expire so that a long `run` outlives any one set of temporary credentials.

use super::StorageError;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, error::CredentialsError};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use s3lect_s3::{Bucket, S3Config};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{Mutex, OnceCell};

/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// A signer's view of the bucket: the address, signed with the current credentials.
pub(crate) enum Signer {
    Fixed(Arc<Bucket>),
    Refreshing(Box<Refreshing>),
}

pub(crate) struct Refreshing {
    cfg: S3Config,
    /// The provider given, or else the default chain, built on first use (it reads files).
    provider: OnceCell<SharedCredentialsProvider>,
    current: Mutex<Option<(Credentials, Arc<Bucket>)>>,
}

impl Signer {
    pub(crate) fn fixed(cfg: S3Config) -> Result<Signer, String> {
        Ok(Signer::Fixed(Arc::new(Bucket::new(cfg)?)))
    }

    /// Credentials from `provider`, or from AWS's default chain when `None`.
    pub(crate) fn refreshing(cfg: S3Config, provider: Option<SharedCredentialsProvider>) -> Result<Signer, String> {
        Bucket::new(cfg.clone())?; // the address is checked now, not at the first request
        Ok(Signer::Refreshing(Box::new(Refreshing { cfg, provider: OnceCell::new_with(provider), current: Mutex::new(None) })))
    }

    /// The bucket signed with credentials valid for a while yet.
    pub(crate) async fn bucket(&self) -> Result<Arc<Bucket>, StorageError> {
        match self {
            Signer::Fixed(b) => Ok(b.clone()),
            Signer::Refreshing(r) => r.bucket().await,
        }
    }
}

impl Refreshing {
    async fn bucket(&self) -> Result<Arc<Bucket>, StorageError> {
        let mut current = self.current.lock().await;
        if let Some((creds, bucket)) = current.as_ref()
            && !expires_soon(creds)
        {
            return Ok(bucket.clone());
        }
        // Boxed: the credential chain's futures take kilobytes, which every request's future
        // would otherwise carry (and allocate) for a refresh due once an hour or so.
        Box::pin(self.refresh(&mut current)).await
    }

    /// New credentials into `current`, or the current ones while they last if that fails.
    async fn refresh(&self, current: &mut Option<(Credentials, Arc<Bucket>)>) -> Result<Arc<Bucket>, StorageError> {
        let provider = self
            .provider
            .get_or_try_init(|| async {
                // Keys in the environment are the chain's first answer. Taking them straight
                // from its first link skips building the rest (its other providers, the STS and
                // SSO clients among them), which a node would otherwise keep resident
                // (BENCHMARKS.md).
                let env = aws_config::environment::EnvironmentVariableCredentialsProvider::new();
                if env.provide_credentials().await.is_ok() {
                    return Ok(SharedCredentialsProvider::new(env));
                }
                // The region is known (S3Config's): left unset, the chain would look it up —
                // through EC2's instance metadata service, which off EC2 costs a timeout and a
                // warning on every start.
                let region = aws_config::Region::new(self.cfg.region.clone());
                let mut chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder().region(region);
                if let Some(client) = ca_bundle_client().map_err(StorageError::Invalid)? {
                    chain = chain.configure(aws_config::provider_config::ProviderConfig::default().with_http_client(client));
                }
                Ok(SharedCredentialsProvider::new(chain.build().await))
            })
            .await?;
        match provider.provide_credentials().await {
            Ok(creds) => {
                let cfg = self.cfg.with_credentials(creds.access_key_id(), creds.secret_access_key(), creds.session_token());
                let bucket = Arc::new(Bucket::new(cfg).map_err(StorageError::Invalid)?);
                if current.as_ref().is_some_and(|(old, _)| old.access_key_id() != creds.access_key_id()) {
                    tracing::info!(expires = ?creds.expiry(), "S3 credentials rotated");
                }
                *current = Some((creds, bucket.clone()));
                Ok(bucket)
            }
            // Fetching failed, but the credentials we have are still valid: use them.
            Err(e) if current.as_ref().is_some_and(|(c, _)| !expired(c)) => {
                tracing::warn!(error = %crate::error::chain(&e), "refreshing S3 credentials failed; using the current ones until they expire");
                Ok(current.as_ref().unwrap().1.clone())
            }
            Err(e) => Err(credentials_error(e)),
        }
    }
}

/// The chain's HTTPS client when `AWS_CA_BUNDLE` names a bundle: it trusts that bundle besides
/// the system's roots, as AWS's CLI and its other SDKs do (the Rust SDK reads no such
/// variable). Behind a TLS-inspecting proxy, STS and SSO answer with the proxy's certificate.
fn ca_bundle_client() -> Result<Option<SharedHttpClient>, String> {
    use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let Some(pem) = crate::tls::aws_ca_bundle()? else { return Ok(None) };
    let named = |e: &dyn std::fmt::Display| format!("the CA bundle AWS_CA_BUNDLE names: {e}");
    let anchors = crate::tls::anchors_pem(&pem).map_err(|e| named(&e))?;
    let store = anchors.into_iter().fold(TrustStore::default(), TrustStore::with_pem_certificate);
    let tls = TlsContext::builder().with_trust_store(store).build().map_err(|e| named(&e))?;
    Ok(Some(aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::AwsLc)).tls_context(tls).build_https()))
}

fn expires_soon(c: &Credentials) -> bool {
    c.expiry().is_some_and(|t| t <= SystemTime::now() + REFRESH_BEFORE_EXPIRY)
}

fn expired(c: &Credentials) -> bool {
    c.expiry().is_some_and(|t| t <= SystemTime::now())
}

/// No credentials anywhere is a configuration problem; a provider that failed to answer
/// (IMDS or STS down) may answer next time. A credentials endpoint whose certificate is refused
/// will not be trusted on a retry either: invalid, as a refused S3 certificate is.
fn credentials_error(e: CredentialsError) -> StorageError {
    let text = format!("no AWS credentials: {}", crate::error::chain(&e));
    if crate::tls::refused_certificate(&e).is_some() {
        return StorageError::Invalid(format!(
            "{text} (a credentials endpoint's certificate was refused: AWS_CA_BUNDLE names a CA bundle to trust)"
        ));
    }
    match e {
        CredentialsError::CredentialsNotLoaded(_) | CredentialsError::InvalidConfiguration(_) => StorageError::Denied(text),
        _ => StorageError::Unavailable(text),
    }
}
