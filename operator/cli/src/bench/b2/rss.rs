//! Resident memory of a process and all its descendants (`VmRSS` in `/proc/<pid>/status`), so
//! a router that forks workers (LiteLLM) is measured whole.

use std::collections::BTreeMap;

/// The summed `VmRSS` of `pid` and its descendants, in MiB; NaN when `pid` is gone.
pub fn tree_mib(pid: u32) -> f64 {
    let parents = parents();
    let mut tree = vec![pid];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next];
        tree.extend(parents.iter().filter(|(_, p)| **p == parent).map(|(child, _)| *child));
        next += 1;
    }
    let kib: Vec<u64> = tree.iter().filter_map(|pid| vm_rss_kib(*pid)).collect();
    if kib.is_empty() { f64::NAN } else { kib.iter().sum::<u64>() as f64 / 1024.0 }
}

/// Every process's parent.
fn parents() -> BTreeMap<u32, u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return BTreeMap::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            Some((pid, parent_of(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?))
        })
        .collect()
}

/// The parent id in a `/proc/<pid>/stat` line (the field after the `)` that ends the name, and
/// the state).
fn parent_of(stat: &str) -> Option<u32> {
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| line.strip_prefix("VmRSS:")?.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_past_a_name_with_spaces_and_parentheses() {
        assert_eq!(parent_of("42 (tokio (rt) x) S 7 42 42 0 -1"), Some(7));
    }

    #[test]
    fn this_process_has_a_resident_size() {
        let mib = tree_mib(std::process::id());
        assert!(mib > 0.5 && mib < 10_000.0, "{mib}");
    }
}
