//! An expansion's deadline: the earliest of the gRPC deadline (`grpc-timeout`), the request's
//! `deadline_ms` and the agent's default, all counted from when the request arrived.

use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;

/// When an expansion that arrived at `received` must be finished.
pub fn effective(received: Instant, metadata: &MetadataMap, deadline_ms: u32, default: Duration) -> Instant {
    let mut budget = default;
    if let Some(grpc) =
        metadata.get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout)
    {
        budget = budget.min(grpc);
    }
    if deadline_ms > 0 {
        budget = budget.min(Duration::from_millis(u64::from(deadline_ms)));
    }
    received + budget
}

/// Parses a `grpc-timeout` header value: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let unit = value.chars().last()?;
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(amount * 3600),
        'M' => Duration::from_secs(amount * 60),
        'S' => Duration::from_secs(amount),
        'm' => Duration::from_millis(amount),
        'u' => Duration::from_micros(amount),
        'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("4S"), Some(Duration::from_secs(4)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("99999999n"), Some(Duration::from_nanos(99_999_999)));
    }

    #[test]
    fn malformed_grpc_timeouts_are_ignored() {
        for bad in ["", "m", "123456789m", "12x", "-5S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_earliest_deadline_wins() {
        let now = Instant::now();
        let mut metadata = MetadataMap::new();
        let default = Duration::from_secs(30);
        assert_eq!(effective(now, &metadata, 0, default), now + default);
        assert_eq!(effective(now, &metadata, 500, default), now + Duration::from_millis(500));
        metadata.insert("grpc-timeout", "200m".parse().unwrap());
        assert_eq!(effective(now, &metadata, 500, default), now + Duration::from_millis(200));
        assert_eq!(effective(now, &metadata, 100, default), now + Duration::from_millis(100));
    }
}
