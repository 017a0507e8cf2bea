//! The real node of `tests/cluster/node/` (containerd, kubelet, kube-proxy, CoreDNS inside a
//! network namespace): what e2e tests on real pods need to reach inside it.

use crate::kubectl::{self, Output};

/// The network namespace of the real node (set by `tests/cluster/node/with-node.sh`); panics
/// with the way out when there is none.
pub fn netns() -> String {
    std::env::var("PICE_NODE_NETNS").unwrap_or_else(|_| {
        panic!("PICE_NODE_NETNS is not set: run the real-node tests with `make e2e-real`, which starts a real node")
    })
}

/// Runs `program ARGS` inside the node's network namespace, where pod IPs and ClusterIPs route.
pub async fn exec(program: &str, args: &[&str]) -> Output {
    let net = format!("--net=/run/netns/{}", netns());
    kubectl::exec("nsenter", &[&[net.as_str(), "--", program], args].concat(), None).await
}

/// POSTs `body` (JSON) to `url` from inside the node and returns the status and the body.
pub async fn post_json(url: &str, headers: &[&str], body: &str) -> (u16, String) {
    let mut args = vec!["-sS", "--max-time", "60", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", url];
    args.extend(["-H", "content-type: application/json"]);
    for header in headers {
        args.extend(["-H", header]);
    }
    args.extend(["--data", body]);
    let out = exec("curl", &args).await;
    assert!(out.success, "curl {url} from the node failed: {}", out.stderr);
    let (text, code) = out.stdout.rsplit_once('\n').unwrap_or((&out.stdout, "0"));
    (code.trim().parse().unwrap_or(0), text.to_owned())
}
