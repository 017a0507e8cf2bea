//! What the API server served, counted by verb and resource: `apiserver_request_total` of its
//! `/metrics`, and the requests of one user in the audit log that `tests/cluster/up.sh` writes.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use jiff::Timestamp;
use serde::Deserialize;

use crate::metrics_text;

/// Request counts by (verb, resource), the resource with `/subresource` when there is one.
/// Audit verbs are Kubernetes' (`get`, `list`, `watch`, `create`, `patch`, ...); those of
/// `/metrics` are its HTTP-like ones in lower case (`get`, `list`, `watch`, `post`, `apply`, ...).
pub type Counts = BTreeMap<(String, String), u64>;

/// `apiserver_request_total` of the API server's `/metrics` now, summed over codes and scopes.
pub async fn request_totals(client: &kube::Client) -> Counts {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .unwrap_or_else(|e| panic!("building the /metrics request: {e}"));
    let text = client.request_text(request).await.unwrap_or_else(|e| panic!("reading /metrics: {e}"));
    parse_request_totals(&text)
}

/// The counts of `apiserver_request_total` in a `/metrics` text.
pub fn parse_request_totals(text: &str) -> Counts {
    let mut counts = Counts::new();
    for (labels, value) in metrics_text::samples(text, "apiserver_request_total") {
        let label = |name: &str| labels.get(name).map(String::as_str).unwrap_or_default();
        let key = (label("verb").to_lowercase(), resource(label("resource"), label("subresource")));
        *counts.entry(key).or_default() += value as u64;
    }
    counts
}

/// What was counted in `after` and not yet in `before` (keys with no change left out).
pub fn diff(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .map(|(key, n)| (key.clone(), n.saturating_sub(before.get(key).copied().unwrap_or(0))))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Requests other than watches (verb `watch`).
pub fn non_watch_total(counts: &Counts) -> u64 {
    counts.iter().filter(|((verb, _), _)| verb != "watch").map(|(_, n)| n).sum()
}

/// Totals by verb.
pub fn by_verb(counts: &Counts) -> BTreeMap<String, u64> {
    let mut verbs = BTreeMap::new();
    for ((verb, _), n) in counts {
        *verbs.entry(verb.clone()).or_default() += n;
    }
    verbs
}

/// The audit log of the local control plane (JSON lines, level Metadata).
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// `$PICE_CLUSTER_DIR/logs/audit.log` (with-cluster.sh sets `PICE_CLUSTER_DIR`).
    pub fn of_cluster() -> Self {
        let dir = std::env::var_os("PICE_CLUSTER_DIR").unwrap_or_else(|| {
            panic!("PICE_CLUSTER_DIR is not set: run under tests/cluster/with-cluster.sh")
        });
        Self { path: PathBuf::from(dir).join("logs/audit.log") }
    }

    /// The requests of `user` (e.g. `system:serviceaccount:NS:NAME`) received in `[from, to)`;
    /// a watch (also a list with `watch=true`) counts as verb `watch`. The API server writes its
    /// audit events in batches: wait a second or two after `to` before asking.
    pub fn requests(&self, user: &str, from: Timestamp, to: Timestamp) -> Counts {
        count_requests(self.lines(), &Who::User(user), from, to)
    }

    /// Like [`Self::requests`], for the requests whose `User-Agent` is `agent` (the operator
    /// sends `pice-operator/VERSION (IDENTITY)`), whoever they authenticated as.
    pub fn requests_of_agent(&self, agent: &str, from: Timestamp, to: Timestamp) -> Counts {
        count_requests(self.lines(), &Who::Agent(agent), from, to)
    }

    fn lines(&self) -> impl Iterator<Item = String> {
        let file = std::fs::File::open(&self.path)
            .unwrap_or_else(|e| panic!("opening the audit log {}: {e}", self.path.display()));
        BufReader::new(file).lines().map_while(Result::ok)
    }
}

/// Whose requests to count.
enum Who<'a> {
    /// By authenticated user name.
    User(&'a str),
    /// By `User-Agent` header.
    Agent(&'a str),
}

impl Who<'_> {
    fn text(&self) -> &str {
        match self {
            Self::User(text) | Self::Agent(text) => text,
        }
    }

    fn sent(&self, event: &Event) -> bool {
        match self {
            Self::User(user) => event.user.username == *user,
            Self::Agent(agent) => event.user_agent == *agent,
        }
    }
}

/// One audit event, the fields counted.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[serde(rename = "auditID")]
    audit_id: String,
    stage: String,
    verb: String,
    user: User,
    #[serde(rename = "requestURI", default)]
    request_uri: String,
    #[serde(default)]
    object_ref: ObjectRef,
    #[serde(default)]
    user_agent: String,
    request_received_timestamp: Timestamp,
}

#[derive(Deserialize)]
struct User {
    #[serde(default)]
    username: String,
}

#[derive(Deserialize, Default)]
struct ObjectRef {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subresource: String,
}

/// Counts the requests of audit events (JSON lines). Each request once: a long-running one
/// (a watch) at stage ResponseStarted, so a watch still open counts; others at ResponseComplete
/// or Panic; events of one request share an audit ID.
fn count_requests(lines: impl Iterator<Item = String>, who: &Who, from: Timestamp, to: Timestamp) -> Counts {
    let (mut counts, mut seen) = (Counts::new(), HashSet::new());
    let quoted = serde_json::to_string(who.text()).unwrap_or_default();
    for line in lines.filter(|line| line.contains(&quoted)) {
        let Ok(event) = serde_json::from_str::<Event>(&line) else { continue };
        let counted_stage = matches!(event.stage.as_str(), "ResponseStarted" | "ResponseComplete" | "Panic");
        let in_window = (from..to).contains(&event.request_received_timestamp);
        if !who.sent(&event) || !counted_stage || !in_window || !seen.insert(event.audit_id) {
            continue;
        }
        let watch = event.verb == "watch" || event.request_uri.contains("watch=true");
        let verb = if watch { "watch".to_owned() } else { event.verb };
        *counts
            .entry((verb, resource(&event.object_ref.resource, &event.object_ref.subresource)))
            .or_default() += 1;
    }
    counts
}

fn resource(resource: &str, subresource: &str) -> String {
    if subresource.is_empty() { resource.to_owned() } else { format!("{resource}/{subresource}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(verb: &str, resource: &str) -> (String, String) {
        (verb.to_owned(), resource.to_owned())
    }

    #[test]
    fn request_totals_sum_over_codes_and_diff() {
        let before = parse_request_totals(
            "# TYPE apiserver_request_total counter\n\
             apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"pods\",scope=\"namespace\",subresource=\"\",verb=\"LIST\",version=\"v1\"} 3\n\
             apiserver_request_total{code=\"201\",resource=\"pods\",subresource=\"binding\",verb=\"POST\"} 2\n",
        );
        let after = parse_request_totals(
            "apiserver_request_total{code=\"200\",resource=\"pods\",subresource=\"\",verb=\"LIST\"} 5\n\
             apiserver_request_total{code=\"500\",resource=\"pods\",subresource=\"\",verb=\"LIST\"} 1\n\
             apiserver_request_total{code=\"201\",resource=\"pods\",subresource=\"binding\",verb=\"POST\"} 2\n\
             apiserver_request_total{code=\"200\",resource=\"leases\",subresource=\"\",verb=\"WATCH\"} 1\n",
        );
        assert_eq!(before[&key("post", "pods/binding")], 2);
        let new = diff(&after, &before);
        assert_eq!(new, Counts::from([(key("list", "pods"), 3), (key("watch", "leases"), 1)]));
        assert_eq!(non_watch_total(&new), 3);
        assert_eq!(by_verb(&new), BTreeMap::from([("list".to_owned(), 3), ("watch".to_owned(), 1)]));
    }

    fn event(id: &str, stage: &str, verb: &str, user: &str, uri: &str, resource: &str, at: &str) -> String {
        serde_json::json!({
            "kind": "Event", "level": "Metadata", "auditID": id, "stage": stage, "verb": verb,
            "requestURI": uri, "user": {"username": user, "groups": ["system:authenticated"]},
            "userAgent": format!("agent of {user}"),
            "objectRef": {"resource": resource, "namespace": "ns", "subresource": if resource == "pods" { "status" } else { "" }},
            "requestReceivedTimestamp": at, "stageTimestamp": at,
        })
        .to_string()
    }

    #[test]
    fn audit_counts_each_request_of_the_user_in_the_window_once() {
        let op = "system:serviceaccount:ns:pice-operator";
        let t = |s: &str| format!("2026-01-01T00:00:{s}.000000Z");
        let lines = [
            event("1", "ResponseComplete", "get", op, "/api/v1/x", "deployments", &t("10")),
            event("2", "ResponseComplete", "patch", op, "/api/v1/x", "pods", &t("11")),
            event("3", "ResponseStarted", "watch", op, "/apis/x?watch=true", "inferencepools", &t("12")),
            event("3", "ResponseComplete", "watch", op, "/apis/x?watch=true", "inferencepools", &t("12")),
            event("4", "ResponseComplete", "list", op, "/apis/x?watch=true&rv=1", "deployments", &t("13")),
            event("5", "ResponseComplete", "get", "system:kube-scheduler", "/api/v1/x", "pods", &t("13")),
            event("6", "ResponseComplete", "get", op, "/api/v1/x", "deployments", &t("30")),
            event("7", "ResponseComplete", "get", op, "/api/v1/x", "deployments", &t("05")),
            "not json".to_owned(),
        ];
        let (from, to) = (t("10").parse().unwrap_or_default(), t("30").parse().unwrap_or_default());
        let counts = count_requests(lines.clone().into_iter(), &Who::User(op), from, to);
        let want = Counts::from([
            (key("get", "deployments"), 1),
            (key("patch", "pods/status"), 1),
            (key("watch", "inferencepools"), 1),
            (key("watch", "deployments"), 1),
        ]);
        assert_eq!(counts, want);
        assert_eq!(non_watch_total(&counts), 2);
        let by_agent = count_requests(lines.into_iter(), &Who::Agent(&format!("agent of {op}")), from, to);
        assert_eq!(by_agent, want);
    }

    #[test]
    fn audit_counts_by_user_agent_only_that_agent() {
        let t = "2026-01-01T00:00:10.000000Z";
        let lines = [
            event("1", "ResponseComplete", "get", "admin", "/api/v1/x", "deployments", t),
            event("2", "ResponseComplete", "list", "other", "/api/v1/x", "services", t),
        ];
        let (from, to) = (
            "2026-01-01T00:00:00Z".parse().unwrap_or_default(),
            "2026-01-01T00:01:00Z".parse().unwrap_or_default(),
        );
        let counts = count_requests(lines.into_iter(), &Who::Agent("agent of other"), from, to);
        assert_eq!(counts, Counts::from([(key("list", "services"), 1)]));
    }
}
