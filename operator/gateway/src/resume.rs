//! Resuming a point whose attempt failed after some of its text was sent.
//!
//! Text already streamed to the client cannot be taken back. A retry (another replica, or the
//! cloud) writes the point again from its start, usually the same text (the gateway passes the
//! same seed); this filter skips what was already sent and forwards the rest. If the retry
//! writes something else, the filter starts a new line and forwards the retry's whole text, so
//! the answer holds a cut-off first try and then a complete one rather than a spliced sentence.

/// What one point has sent, and how far the current attempt has caught up with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    sent: String,
    /// Bytes of `sent` the current attempt has repeated so far.
    matched: usize,
    diverged: bool,
}

impl Resume {
    /// A new attempt starts writing the point from its beginning.
    pub fn restart(&mut self) {
        self.matched = 0;
        self.diverged = false;
    }

    /// Whether any text of this point was sent.
    pub fn has_sent(&self) -> bool {
        !self.sent.is_empty()
    }

    /// Takes the current attempt's next `delta`; returns what to send, if anything.
    pub fn accept(&mut self, delta: &str) -> Option<String> {
        let pending = &self.sent[self.matched..];
        if self.diverged || pending.is_empty() {
            self.sent.push_str(delta);
            self.matched = self.sent.len();
            return (!delta.is_empty()).then(|| delta.to_owned());
        }
        if let Some(rest) = delta.strip_prefix(pending) {
            self.sent.push_str(rest);
            self.matched = self.sent.len();
            return (!rest.is_empty()).then(|| rest.to_owned());
        }
        if pending.starts_with(delta) {
            self.matched += delta.len();
            return None;
        }
        let attempt = format!("\n{}{delta}", &self.sent[..self.matched]);
        self.diverged = true;
        self.sent.push_str(&attempt);
        self.matched = self.sent.len();
        Some(attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(resume: &mut Resume, deltas: &[&str]) -> String {
        deltas.iter().filter_map(|d| resume.accept(d)).collect()
    }

    #[test]
    fn a_first_attempt_passes_through() {
        let mut resume = Resume::default();
        assert!(!resume.has_sent());
        assert_eq!(feed(&mut resume, &["Bees", " make", " honey."]), "Bees make honey.");
        assert!(resume.has_sent());
    }

    #[test]
    fn a_retry_that_repeats_the_sent_text_continues_where_it_stopped() {
        let mut resume = Resume::default();
        feed(&mut resume, &["Bees", " make"]);
        resume.restart();
        assert_eq!(feed(&mut resume, &["Bees", " make", " honey", " from nectar."]), " honey from nectar.");
    }

    #[test]
    fn a_delta_that_straddles_the_sent_text_forwards_only_its_new_part() {
        let mut resume = Resume::default();
        feed(&mut resume, &["Bees make"]);
        resume.restart();
        assert_eq!(feed(&mut resume, &["Bees", " make honey"]), " honey");
    }

    #[test]
    fn a_retry_that_writes_something_else_starts_a_new_line_with_its_whole_text() {
        let mut resume = Resume::default();
        feed(&mut resume, &["Bees", " make", " wax"]);
        resume.restart();
        assert_eq!(
            feed(&mut resume, &["Bees", " turn", " nectar", " into honey."]),
            "\nBees turn nectar into honey."
        );
    }

    #[test]
    fn a_second_failure_after_a_divergence_resumes_against_everything_sent() {
        let mut resume = Resume::default();
        feed(&mut resume, &["A"]);
        resume.restart();
        feed(&mut resume, &["B", " c"]);
        resume.restart();
        assert_eq!(feed(&mut resume, &["A", "\nB", " c", " d"]), " d");
    }
}
