//! The `InferencePool` API as the API server serves it: CRD install, `kubectl explain`, and
//! schema/CEL validation that rejects invalid pools with messages naming the field.

use std::time::Duration;

use pice_tests::namespace::TestNamespace;
use pice_tests::{example_pool, kubectl, poll};
use serde_json::{Value, json};

#[tokio::test]
async fn crds_apply_with_kubectl_and_explain_reads_well() {
    let dir = pice_tests::repo_root().join("crds");
    let out =
        kubectl::run(&["apply", "--server-side", "--force-conflicts", "-f", &dir.to_string_lossy()], None)
            .await;
    assert!(out.success, "kubectl apply -f crds/ failed: {}", out.stderr);
    kubectl::ok(
        &["wait", "--for=condition=Established", "--timeout=60s", "crd/inferencepools.pice.dev"],
        None,
    )
    .await;

    // The API server publishes a new CRD's OpenAPI schema a moment after it is Established.
    let edge = poll::until("kubectl explain to know InferencePool", Duration::from_secs(30), || async {
        let out = kubectl::run(&["explain", "inferencepool.spec.edge"], None).await;
        out.success.then_some(out.stdout)
    })
    .await;
    assert!(edge.contains("GROUP:      pice.dev"), "{edge}");
    assert!(edge.contains("The edge SLM tier: node pools whose SLMs expand sketch points."), "{edge}");
    assert!(edge.contains("Edge node pools, each a set of nodes"), "{edge}");
    assert!(edge.contains("pools\t<[]Object>"), "{edge}");

    let replicas = kubectl::ok(&["explain", "inferencepool.spec.edge.pools.replicas"], None).await;
    assert!(replicas.contains("0 lets the pool scale to zero"), "{replicas}");
    let resources = kubectl::ok(&["api-resources", "--api-group=pice.dev", "--no-headers"], None).await;
    let columns: Vec<&str> = resources.split_whitespace().collect();
    assert_eq!(
        columns,
        ["inferencepools", "picepool", "pice.dev/v1alpha1", "true", "InferencePool"],
        "name, short name, version, namespaced, kind"
    );
    let in_category = kubectl::ok(&["api-resources", "--categories=pice", "-o", "name"], None).await;
    assert_eq!(in_category.trim(), "inferencepools.pice.dev");
}

/// One invalid pool: how to break the example, and what the API server must say.
struct Case {
    what: &'static str,
    breaks: fn(&mut Value),
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        what: "replicas.min above replicas.max",
        breaks: |p| p["spec"]["edge"]["pools"][0]["replicas"] = json!({"min": 5, "max": 2}),
        expect: &["spec.edge.pools[0].replicas", "replicas.min must be less than or equal to replicas.max"],
    },
    Case {
        what: "two edge pools with one name",
        breaks: |p| p["spec"]["edge"]["pools"][1]["name"] = json!("store-east"),
        expect: &["spec.edge.pools", "edge.pools[].name must be unique"],
    },
    Case {
        what: "two models with one name in an edge pool",
        breaks: |p| {
            let model = p["spec"]["edge"]["pools"][0]["models"][0].clone();
            p["spec"]["edge"]["pools"][0]["models"] = json!([model.clone(), model]);
        },
        expect: &["spec.edge.pools[0].models", "must be unique within an edge pool"],
    },
    Case {
        what: "edge model port 0",
        breaks: |p| p["spec"]["edge"]["pools"][0]["models"][0]["port"] = json!(0),
        expect: &["spec.edge.pools[0].models[0].port", "greater than or equal to 1"],
    },
    Case {
        what: "cloud port above 65535",
        breaks: |p| p["spec"]["cloud"]["port"] = json!(70000),
        expect: &["spec.cloud.port", "less than or equal to 65535"],
    },
    Case {
        what: "cloud with both image and endpoint",
        breaks: |p| p["spec"]["cloud"]["endpoint"] = json!("https://llm.example.com/v1"),
        expect: &["spec.cloud", "cloud.image and cloud.endpoint are mutually exclusive"],
    },
    Case {
        what: "cloud with neither image nor endpoint",
        breaks: |p| {
            let cloud = p["spec"]["cloud"].as_object_mut().map(|c| c.remove("image"));
            assert!(cloud.is_some());
        },
        expect: &["spec.cloud", "cloud needs either image"],
    },
    Case {
        what: "cloud endpoint that is not a URL",
        breaks: |p| p["spec"]["cloud"] = json!({"model": "m", "endpoint": "llm.example.com"}),
        expect: &["spec.cloud.endpoint", "must be an http:// or https:// URL"],
    },
    Case {
        what: "zero token budget per point",
        breaks: |p| p["spec"]["routing"]["expansion"]["maxTokensPerPoint"] = json!(0),
        expect: &["spec.routing.expansion.maxTokensPerPoint", "greater than or equal to 1"],
    },
    Case {
        what: "negative expansion deadline",
        breaks: |p| p["spec"]["routing"]["expansion"]["deadlineMs"] = json!(-5),
        expect: &["spec.routing.expansion.deadlineMs", "greater than or equal to 1"],
    },
    Case {
        what: "a sketch of zero points",
        breaks: |p| p["spec"]["routing"]["sketch"]["maxPoints"] = json!(0),
        expect: &["spec.routing.sketch.maxPoints", "greater than or equal to 1"],
    },
    Case {
        what: "an unknown routing mode",
        breaks: |p| p["spec"]["routing"]["mode"] = json!("fast"),
        expect: &["spec.routing.mode", "Unsupported value: \"fast\""],
    },
    Case {
        what: "an edge pool name that is not a DNS label",
        breaks: |p| p["spec"]["edge"]["pools"][0]["name"] = json!("Store_East"),
        expect: &["spec.edge.pools[0].name", "should match"],
    },
    Case {
        what: "an ensemble of zero candidates",
        breaks: |p| p["spec"]["routing"]["ensemble"]["candidates"] = json!(0),
        expect: &["spec.routing.ensemble.candidates", "greater than or equal to 1"],
    },
    Case {
        what: "a target queue depth of zero",
        breaks: |p| p["spec"]["edge"]["pools"][0]["autoscaling"]["targetQueueDepth"] = json!(0),
        expect: &["spec.edge.pools[0].autoscaling.targetQueueDepth", "must be greater than 0"],
    },
    Case {
        what: "a prometheus queue source without a query",
        breaks: |p| p["spec"]["edge"]["pools"][0]["autoscaling"]["source"] = json!("prometheus"),
        expect: &["spec.edge.pools[0].autoscaling", "autoscaling.prometheus (url and query) is required"],
    },
    Case {
        what: "an edge pool without models",
        breaks: |p| p["spec"]["edge"]["pools"][0]["models"] = json!([]),
        expect: &["spec.edge.pools[0].models", "should have at least 1 items"],
    },
    Case {
        what: "model weights from two sources at once",
        breaks: |p| {
            p["spec"]["edge"]["pools"][0]["models"][0]["weights"] =
                json!({"hostPath": "/srv/models", "pvc": {"claimName": "weights"}})
        },
        expect: &["spec.edge.pools[0].models[0].weights", "set exactly one of image, pvc, hostPath and url"],
    },
    Case {
        what: "model weights at a URL with a checksum that is not a sha256",
        breaks: |p| {
            p["spec"]["edge"]["pools"][0]["models"][0]["weights"] =
                json!({"url": {"url": "https://models.example/smollm2.gguf", "sha256": "abc"}})
        },
        expect: &["spec.edge.pools[0].models[0].weights.url.sha256", "should match"],
    },
    Case {
        what: "model weights on a relative host path",
        breaks: |p| p["spec"]["edge"]["pools"][0]["models"][0]["weights"] = json!({"hostPath": "models"}),
        expect: &["spec.edge.pools[0].models[0].weights.hostPath", "must be an absolute path"],
    },
    Case {
        what: "a llama edge model without a weights file",
        breaks: |p| p["spec"]["edge"]["pools"][0]["models"][0]["engine"] = json!("llama"),
        expect: &["spec.edge.pools[0].models[0]", "engine llama needs weights with a url or a file"],
    },
    Case {
        what: "a model server without an image",
        breaks: |p| p["spec"]["edge"]["pools"][0]["models"][0]["image"] = json!(""),
        expect: &["spec.edge.pools[0].models[0]", "image is required unless engine is llama"],
    },
    Case {
        what: "a cloud tier without a model name",
        breaks: |p| {
            let removed = p["spec"]["cloud"].as_object_mut().and_then(|c| c.remove("model"));
            assert!(removed.is_some());
        },
        expect: &["spec.cloud.model", "Required value"],
    },
];

#[tokio::test]
async fn invalid_pools_are_rejected_by_the_api_server_with_a_message_naming_the_field() {
    kubectl::apply_crds().await;
    TestNamespace::run("invalid", |ns| async move {
        let mut failures = Vec::new();
        for (i, case) in CASES.iter().enumerate() {
            let mut pool = example_pool(&format!("invalid-{i}"));
            (case.breaks)(&mut pool);
            let out = kubectl::run(&["apply", "-n", &ns.name, "-f", "-"], Some(&pool.to_string())).await;
            let missing: Vec<_> = case.expect.iter().filter(|e| !out.stderr.contains(*e)).collect();
            if out.success || !missing.is_empty() {
                failures.push(format!(
                    "{}: accepted={} missing {missing:?} in:\n{}",
                    case.what, out.success, out.stderr
                ));
            }
        }
        assert!(CASES.len() >= 10);
        assert!(
            failures.is_empty(),
            "{} of {} cases wrong:\n{}",
            failures.len(),
            CASES.len(),
            failures.join("\n")
        );
        let valid = example_pool("valid");
        kubectl::ok(&["apply", "--dry-run=server", "-n", &ns.name, "-f", "-"], Some(&valid.to_string()))
            .await;
    })
    .await;
}
