//! TLS of the `pice.edge.v1` link between the gateway and the edge agents, which crosses
//! networks: the agent's server side (a certificate, and with a client CA, mutual TLS) and the
//! gateway's client side (the CA that signed the agents, and its own certificate for mutual TLS),
//! both read from PEM files.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// A PEM file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {source}", path.display())]
pub struct TlsFileError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The agent's PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// With it, clients must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
}

impl ServerTlsFiles {
    /// Reads the files into tonic's server TLS configuration.
    pub fn server_config(&self) -> Result<ServerTlsConfig, TlsFileError> {
        crate::crypto::install_default_provider();
        let config = ServerTlsConfig::new().identity(identity(&self.cert, &self.key)?);
        Ok(match &self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(read(ca)?)),
            None => config,
        })
    }
}

/// The gateway's PEM files for dialling the agents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// CA that signed the agents' server certificates.
    pub ca: PathBuf,
    /// The gateway's client certificate and key, for mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Name to expect in the agents' certificates (agents are dialled by IP address).
    pub domain: Option<String>,
}

impl ClientTlsFiles {
    /// Reads the files into tonic's client TLS configuration.
    pub fn client_config(&self) -> Result<ClientTlsConfig, TlsFileError> {
        crate::crypto::install_default_provider();
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&self.ca)?));
        if let Some((cert, key)) = &self.identity {
            config = config.identity(identity(cert, key)?);
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        Ok(config)
    }
}

fn identity(cert: &Path, key: &Path) -> Result<Identity, TlsFileError> {
    Ok(Identity::from_pem(read(cert)?, read(key)?))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError { path: path.to_owned(), source })
}
