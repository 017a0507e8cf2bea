//! What B1 measures: the systems under test and one system's results across load levels.

use super::link::LinkSetting;
use super::stats::Summary;

/// A system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    /// Every token on the cloud.
    CloudOnly,
    /// Sketch and expansions on the cloud (Skeleton-of-Thought).
    Sot,
    /// PICE, progressive for every request.
    Progressive,
    /// PICE, the gateway deciding per request.
    Auto,
}

impl System {
    pub fn label(self) -> &'static str {
        match self {
            Self::CloudOnly => "cloud-only",
            Self::Sot => "SoT-on-cloud",
            Self::Progressive => "PICE progressive",
            Self::Auto => "PICE auto",
        }
    }

    /// The `x-pice-mode` header that selects it on its gateway.
    pub fn mode(self) -> &'static str {
        match self {
            Self::CloudOnly => "cloud",
            Self::Sot | Self::Progressive => "progressive",
            Self::Auto => "auto",
        }
    }
}

/// One system at one link setting (`None`: the link plays no part).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub system: System,
    pub link: Option<LinkSetting>,
    /// One summary per load level run, ascending rate.
    pub points: Vec<(f64, Summary)>,
}

impl Series {
    pub fn name(&self) -> String {
        match &self.link {
            Some(link) => format!("{} ({})", self.system.label(), link.name),
            None => self.system.label().to_owned(),
        }
    }
}
