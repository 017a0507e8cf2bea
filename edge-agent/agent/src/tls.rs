//! TLS for the agent's gRPC port: a server certificate, and with a client CA, mutual TLS (only
//! callers with a certificate signed by that CA get through; the cloud–edge link crosses
//! networks).

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::Error;
use pice_wire::crypto;

/// Where the PEM files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// With it, clients must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Reads the files into tonic's server TLS configuration.
    pub fn server_config(&self) -> Result<ServerTlsConfig, Error> {
        crypto::install_default_provider();
        let identity = Identity::from_pem(read(&self.cert)?, read(&self.key)?);
        let config = ServerTlsConfig::new().identity(identity);
        Ok(match &self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(read(ca)?)),
            None => config,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::ReadFile { path: path.to_owned(), source })
}
