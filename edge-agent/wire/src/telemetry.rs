//! Logging set-up for every binary: one `--log-format` flag and one `init`, text or JSON lines
//! on stderr.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The logging flag every binary flattens into its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, env = "PICE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl LogArgs {
    /// Installs the global subscriber in the chosen format (see [`init`]).
    pub fn init(self) {
        init(self.log_format);
    }
}

/// Installs the global subscriber; the level comes from `RUST_LOG` (default `info`, and `warn`
/// for llama.cpp, which logs every model key and every context it creates at info). A second
/// call (tests) leaves the first subscriber in place.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,llama-cpp-2=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _already_set = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
