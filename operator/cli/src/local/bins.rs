//! Where `pice local` finds the binaries it starts: next to the running `pice` executable
//! (`target/<profile>/` after `cargo build`, or wherever they were installed together).

use std::path::{Path, PathBuf};

use super::LocalError;

/// The cloud simulator and the edge model simulator.
pub const SIM: &str = "pice-sim";
/// The edge agent.
pub const EDGE_AGENT: &str = "pice-edge-agent";
/// The gateway.
pub const GATEWAY: &str = "pice-gateway";

/// A directory holding PICE's binaries.
#[derive(Clone, Debug)]
pub struct Bins {
    dir: PathBuf,
}

impl Bins {
    /// `dir` if given, else the directory of the running executable.
    pub fn locate(dir: Option<&Path>) -> Result<Self, LocalError> {
        let dir = match dir {
            Some(dir) => dir.to_owned(),
            None => {
                std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_owned)).ok_or_else(
                    || LocalError::Usage("cannot tell where the pice executable lies; pass --bin-dir".into()),
                )?
            }
        };
        Ok(Self { dir })
    }

    /// The path of binary `name`, which must exist.
    pub fn path(&self, name: &str) -> Result<PathBuf, LocalError> {
        let path = self.dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
        let package = if name == GATEWAY { "pice-operator" } else { "pice-edge-agent" };
        let release = if self.dir.ends_with("release") { " --release" } else { "" };
        let hint = format!("build it with `cargo build{release} -p {package} --bins` (or pass --bin-dir)");
        Err(LocalError::MissingBinary { name: name.to_owned(), path, hint })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_missing_binary_is_named_with_the_command_that_builds_it() {
        let bins = Bins::locate(Some(Path::new("/nonexistent/target/release"))).unwrap();
        let error = bins.path(EDGE_AGENT).unwrap_err().to_string();
        assert!(error.contains("/nonexistent/target/release/pice-edge-agent"), "{error}");
        assert!(error.contains("cargo build --release -p pice-edge-agent --bins"), "{error}");
    }
}
