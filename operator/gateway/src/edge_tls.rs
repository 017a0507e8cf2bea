//! TLS towards the edge agents: the link crosses networks, so the gateway can check the
//! agents' certificates against a CA and, for mutual TLS, present its own certificate.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// Where the PEM files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeTlsFiles {
    /// CA that signed the agents' server certificates.
    pub ca: PathBuf,
    /// The gateway's client certificate and key, for mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Name to expect in the agents' certificates (agents are dialled by IP address).
    pub domain: Option<String>,
}

impl EdgeTlsFiles {
    /// Reads the files into tonic's client TLS configuration.
    pub fn client_config(&self) -> Result<ClientTlsConfig, String> {
        pice_wire::crypto::install_default_provider();
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&self.ca)?));
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        Ok(config)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
