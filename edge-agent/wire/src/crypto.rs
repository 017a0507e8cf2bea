//! The process's TLS crypto provider: rustls' ring provider, chosen explicitly.
//!
//! reqwest is built without a provider of its own (workspace feature `rustls-no-provider`) and
//! asks for the process default when a client is built, as tonic's TLS server does; several
//! providers may be compiled into one binary, so neither can be left to pick one.

/// Installs ring as the process default unless a provider is already installed (then the
/// first one stays, which is what a second call, or a test binary running many agents, needs).
pub fn install_default_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}
