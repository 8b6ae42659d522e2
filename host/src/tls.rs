//! TLS configuration (rustls with the ring provider, TLS 1.2 and 1.3 only): client configs for
//! S3 and the peer probe, the server config for the health endpoint, and certificate
//! generation for demos and tests.

use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// A TLS set-up failure: what was being done, and why.
#[derive(Debug)]
pub struct TlsError {
    context: String,
    source: Option<crate::error::BoxError>,
}

impl TlsError {
    fn new(context: impl Into<String>) -> TlsError {
        TlsError { context: context.into(), source: None }
    }
}

fn because<E: Into<crate::error::BoxError>>(context: &str) -> impl FnOnce(E) -> TlsError + '_ {
    move |e| TlsError { context: context.to_string(), source: Some(e.into()) }
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Some(s) => write!(f, "{}: {s}", self.context),
            None => f.write_str(&self.context),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Parses every certificate in a PEM bundle; an empty bundle is an error.
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().map_err(because("certificate PEM is invalid"))?;
    if certs.is_empty() {
        return Err(TlsError::new("no CERTIFICATE block found in the PEM data"));
    }
    Ok(certs)
}

/// The CA bundle `AWS_CA_BUNDLE` names, as AWS's own tools read it: none when the variable is
/// unset or empty, an error naming the variable and the path when the file cannot be read.
pub fn aws_ca_bundle() -> Result<Option<Vec<u8>>, String> {
    let Some(path) = std::env::var_os("AWS_CA_BUNDLE").filter(|v| !v.is_empty()) else { return Ok(None) };
    let path = std::path::Path::new(&path);
    std::fs::read(path).map(Some).map_err(|e| format!("cannot read the CA bundle AWS_CA_BUNDLE names, {}: {e}", path.display()))
}

/// The certificate error in `e`'s chain, if a TLS handshake refused the server's certificate:
/// what S3's and the credential chain's errors are classified by.
pub(crate) fn refused_certificate<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(tls @ rustls::Error::InvalidCertificate(_)) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // An io::Error's source() is the source of the error it wraps, skipping that error:
        // step into it instead.
        next = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// A client config trusting `extra_ca_pem` and, if `webpki_roots`, the Mozilla roots.
///
/// `extra_ca_pem` may be a whole bundle (a system's, as `AWS_CA_BUNDLE` often names): a
/// certificate in it that cannot serve as a trust anchor is skipped with a warning, as other
/// TLS clients do, but a bundle with none usable is an error.
pub fn client_config(extra_ca_pem: Option<&[u8]>, webpki_roots: bool) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    if webpki_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(pem) = extra_ca_pem {
        add_anchors(&mut roots, pem)?;
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(because("TLS versions"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The certificates of a PEM bundle that can serve as trust anchors, each as PEM, for clients
/// that take PEM and refuse the whole bundle on one they cannot use (AWS's HTTP client panics).
/// The bundle's rules are [`client_config`]'s.
pub fn anchors_pem(bundle: &[u8]) -> Result<Vec<String>, TlsError> {
    let anchors = add_anchors(&mut RootCertStore::empty(), bundle)?;
    Ok(anchors.iter().map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))).collect())
}

/// Adds to `roots` the certificates of a PEM bundle that can serve as trust anchors, and returns
/// them: the others are skipped with a warning, and a bundle with none is an error.
fn add_anchors(roots: &mut RootCertStore, bundle: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = parse_certs(bundle)?;
    let given = certs.len();
    let usable: Vec<_> = certs.into_iter().filter(|c| roots.add(c.clone()).is_ok()).collect();
    if usable.is_empty() {
        return Err(TlsError::new(format!("none of the {given} CA certificates given can serve as a trust anchor")));
    }
    if usable.len() < given {
        tracing::warn!(
            added = usable.len(),
            skipped = given - usable.len(),
            "CA certificates that cannot serve as trust anchors were skipped"
        );
    }
    Ok(usable)
}

/// A server config from a PEM certificate chain and its PEM private key.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerConfig, TlsError> {
    let certs = parse_certs(cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(because("private key PEM is invalid"))?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(because("TLS versions"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(because("certificate and key do not form a usable pair"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// A private CA and one server certificate it signed, all PEM.
pub struct GeneratedPki {
    /// The CA certificate, PEM.
    pub ca_cert_pem: String,
    /// The server certificate, PEM.
    pub server_cert_pem: String,
    /// The server's private key, PEM.
    pub server_key_pem: String,
}

/// Makes a CA and a server certificate for `names` (DNS names or IP addresses).
pub fn generate_pki(names: &[&str]) -> Result<GeneratedPki, TlsError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let err = |e: rcgen::Error| TlsError { context: "generating certificates".into(), source: Some(e.into()) };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "s3lect peer CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).map_err(err)?;
    let key = KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    Ok(GeneratedPki { ca_cert_pem: ca_cert.pem(), server_cert_pem: cert.pem(), server_key_pem: key.serialize_pem() })
}

/// SHA-256 of a DER certificate, as lowercase hex: the pin a leader publishes in its record.
pub fn sha256_hex(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A self-signed certificate for the health endpoint (zero-config peer mode), PEM, with the pin
/// followers check it against.
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// SHA-256 of the certificate (hex), for the record.
    pub sha256: String,
}

/// Makes a key and a self-signed certificate for `names`. Names matter little: followers pin
/// the certificate itself.
pub fn self_signed(names: &[&str]) -> Result<SelfSigned, TlsError> {
    let err = |e: rcgen::Error| TlsError { context: "generating the health endpoint's certificate".into(), source: Some(e.into()) };
    let params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).map_err(err)?;
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let cert = params.self_signed(&key).map_err(err)?;
    Ok(SelfSigned { sha256: sha256_hex(cert.der()), cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

/// A client config that accepts exactly the server certificate whose SHA-256 is `pin`, whoever
/// signed it and whatever name it carries; the handshake signature is still verified, so the
/// peer must hold the certificate's key.
pub fn pinned_client_config(pin: &str) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let verifier = Arc::new(Pinned { pin: pin.to_string(), algorithms: provider.signature_verification_algorithms });
    Ok(ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(because("TLS versions"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[derive(Debug)]
struct Pinned {
    pin: String,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if sha256_hex(end_entity.as_ref()) == self.pin {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("the peer's certificate is not the one its lock record names".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUNK: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_bundle_keeps_its_usable_anchors_and_one_with_none_is_refused() {
        let pki = generate_pki(&["127.0.0.1"]).unwrap();
        let bundle = format!("{JUNK}{}", pki.ca_cert_pem);
        assert!(client_config(Some(bundle.as_bytes()), false).is_ok(), "a bundle with one unusable certificate was refused");
        let only_junk = client_config(Some(format!("{JUNK}{JUNK}").as_bytes()), true).expect_err("a bundle of no anchors was accepted");
        assert!(only_junk.to_string().contains("none of the 2 CA certificates"), "{only_junk}");
        // As PEM, for AWS's client: the usable certificate alone, unchanged.
        let kept = anchors_pem(bundle.as_bytes()).unwrap();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(parse_certs(kept[0].as_bytes()).unwrap(), parse_certs(pki.ca_cert_pem.as_bytes()).unwrap());
        assert!(anchors_pem(JUNK.as_bytes()).is_err());
    }
}
