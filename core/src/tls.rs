//! TLS (feature `tls`, on by default): rustls with the ring provider, for the client's
//! `https://` and `wss://` connections ([`TlsOptions`], in
//! [`crate::client::ClientOptions::tls`]) and polysio's own listener ([`ServerTls`], with
//! [`crate::server::Server::listen_tls`] or [`crate::engine::EngineServer::serve_tls`]).
//!
//! The client trusts the system's roots (read once per process) plus the CA certificates it is
//! given. A certificate it does not trust fails the connection with an error that says so
//! ([`crate::Error::Tls`]).
//!
//! ```no_run
//! # fn main() -> polysio::Result<()> {
//! use polysio::client::{ClientBuilder, ClientOptions};
//! use polysio::tls::TlsOptions;
//! let ca = std::fs::read("ca.pem")?;
//! let opts = ClientOptions {
//!     tls: TlsOptions { ca_pem: Some(ca), ..TlsOptions::default() },
//!     ..ClientOptions::default()
//! };
//! let _builder = ClientBuilder::new("https://example.internal:8443").options(opts);
//! # Ok(()) }
//! ```

use std::sync::{Arc, OnceLock, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

pub use crate::client::TlsOptions;
use crate::error::{Error, Result};

/// The one crypto provider polysio uses (ring), whatever else the process installed. rustls
/// 0.23.48 deprecates ring's provider for lacking post-quantum key exchange (aws-lc-rs has
/// it); ring is kept on purpose: it builds with the C compiler alone, aws-lc-rs needs cmake
/// (and more) on every machine that builds a binding.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn bad(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{what}: {e}"))
}

/// Every certificate of a PEM bundle (at least one).
fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(what, e))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!("{what}: no PEM certificate found")));
    }
    Ok(certs)
}

fn key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| bad(what, e))
}

/// The system's trusted roots, read once (a missing or unreadable store gives none: a CA
/// bundle can still be given).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        if !found.errors.is_empty() {
            tracing::debug!("system roots: {:?}", found.errors);
        }
        found.certs
    })
}

impl TlsOptions {
    /// The rustls configuration these options describe (roots, client identity, verification).
    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("TLS versions", e))?;
        let builder = if self.danger_accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider())))
        } else {
            let mut roots = RootCertStore::empty();
            let (_added, _ignored) =
                roots.add_parsable_certificates(system_roots().iter().cloned());
            if let Some(pem) = &self.ca_pem {
                for c in certs(pem, "CA certificates (ca_pem)")? {
                    roots
                        .add(c)
                        .map_err(|e| bad("CA certificates (ca_pem)", e))?;
                }
            }
            builder.with_root_certificates(roots)
        };
        let config = match (&self.client_cert_pem, &self.client_key_pem) {
            (Some(cert), Some(k)) => builder
                .with_client_auth_cert(
                    certs(cert, "client certificate (client_cert_pem)")?,
                    key(k, "client key (client_key_pem)")?,
                )
                .map_err(|e| bad("client certificate and key", e))?,
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(Error::InvalidArgument(
                    "client_cert_pem and client_key_pem go together".into(),
                ))
            }
        };
        // No ALPN here: hyper-rustls sets it for polling (http/1.1); a WebSocket needs none.
        Ok(Arc::new(config))
    }
}

/// `danger_accept_invalid_certs`: any certificate passes (signatures are still checked, so
/// the connection is encrypted, but to whoever answers).
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client-side TLS failure found anywhere in `e`'s chain of sources, as the error a user can
/// act on: an untrusted or mismatched certificate says so.
pub(crate) fn client_error(e: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(tls_error(r));
        }
        // An io::Error's `source` skips the error it wraps (hyper-rustls wraps twice).
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

fn tls_error(inner: &rustls::Error) -> Error {
    match inner {
        rustls::Error::InvalidCertificate(c) => Error::Tls(format!(
            "the server's certificate is not trusted: {}",
            cert_reason(c)
        )),
        other => Error::Tls(other.to_string()),
    }
}

fn cert_reason(c: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match c {
        C::UnknownIssuer => "unknown issuer (not signed by a trusted CA)".into(),
        C::Expired | C::ExpiredContext { .. } => "expired".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "not valid for this host name".into()
        }
        C::BadSignature => "bad signature".into(),
        other => format!("{other:?}"),
    }
}

/// The certificate and key of polysio's own TLS listener, replaceable while it serves
/// ([`ServerTls::reload`]: new connections get the new certificate, open ones keep theirs).
///
/// ```no_run
/// # async fn run() -> polysio::Result<()> {
/// use polysio::server::{Server, ServerConfig};
/// use polysio::tls::ServerTls;
/// let tls = ServerTls::from_pem(&std::fs::read("cert.pem")?, &std::fs::read("key.pem")?)?;
/// let io = Server::new(ServerConfig::default());
/// let addr = io.listen_tls(("0.0.0.0", 8443), tls.clone()).await?;
/// // later, a renewed certificate:
/// tls.reload(&std::fs::read("cert.pem")?, &std::fs::read("key.pem")?)?;
/// # let _ = addr; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServerTls {
    resolver: Arc<Resolver>,
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|k| k.clone())
    }
}

fn certified(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>> {
    let chain = certs(cert_pem, "certificate chain")?;
    let key = key(key_pem, "private key")?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad("private key", e))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| bad("certificate and key", e))?;
    Ok(Arc::new(ck))
}

impl ServerTls {
    /// From a PEM certificate chain (the server's first) and its PEM private key (PKCS#8,
    /// PKCS#1 or SEC1).
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<ServerTls> {
        let resolver = Arc::new(Resolver(RwLock::new(certified(cert_chain_pem, key_pem)?)));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("TLS versions", e))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            resolver,
            config: Arc::new(config),
        })
    }

    /// From PEM files.
    pub fn from_pem_files(
        cert_chain: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Result<ServerTls> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| Error::Tls(format!("{}: {e}", p.display())))
        };
        ServerTls::from_pem(&read(cert_chain.as_ref())?, &read(key.as_ref())?)
    }

    /// Replaces the certificate and key for the connections accepted from now on; on an error
    /// the current ones stay.
    pub fn reload(&self, cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<()> {
        let ck = certified(cert_chain_pem, key_pem)?;
        if let Ok(mut cur) = self.resolver.0.write() {
            *cur = ck;
        }
        Ok(())
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }
}
