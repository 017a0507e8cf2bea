//! Where queue depth comes from: the edge agents' `Load` RPC, or a PromQL query; and the
//! gateways' `/metrics`, which count the requests that found no edge replica.

use std::time::Duration;

use futures::future::join_all;
use pice_wire::proto::LoadRequest;
use pice_wire::proto::edge_agent_client::EdgeAgentClient;
use tonic::transport::Endpoint;

use pice_api::gateway_config::EDGE_WAKEUP_REQUESTS;
use pice_api::{AutoscalingSpec, PrometheusSource, QueueSource};

/// How long one measurement may take before the source counts as unreachable.
const MEASURE_TIMEOUT: Duration = Duration::from_secs(2);

/// The edge Deployment being measured.
#[derive(Clone, Debug)]
pub struct Target {
    /// Pool name.
    pub pool: String,
    /// Edge pool name.
    pub edge_pool: String,
    /// Model name.
    pub model: String,
    /// `ip:port` of the gRPC endpoint of every ready replica.
    pub agents: Vec<String>,
}

/// Measures total queue depth (waiting plus running requests over ready replicas).
#[derive(Clone)]
pub struct QueueMeasurer {
    http: reqwest::Client,
}

impl QueueMeasurer {
    /// A measurer with its own HTTP client. Fails (instead of panicking, as
    /// `reqwest::Client::new()` does) when the client cannot be built, for example in an image
    /// without a CA bundle.
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Self { http: reqwest::Client::builder().build()? })
    }

    /// Measures the queue of `target` from the source `spec` names; `Err` says why it could not.
    pub async fn measure(&self, spec: &AutoscalingSpec, target: &Target) -> Result<f64, String> {
        match (spec.source, &spec.prometheus) {
            (QueueSource::Agents, _) => ask_agents(&target.agents).await,
            (QueueSource::Prometheus, Some(prometheus)) => self.query_prometheus(prometheus, target).await,
            (QueueSource::Prometheus, None) => Err("autoscaling.prometheus is not set".into()),
        }
    }

    /// Sums the gateways' count of requests that found no edge replica over `gateways`
    /// (`ip:port` of every gateway pod); any gateway that does not answer makes it unknown.
    pub async fn count_wakeups(&self, gateways: &[String]) -> Result<f64, String> {
        if gateways.is_empty() {
            return Err("no gateway pod to read the wake-up count from".into());
        }
        let counts = join_all(gateways.iter().map(|gateway| self.wakeups_of(gateway))).await;
        counts.into_iter().sum()
    }

    async fn wakeups_of(&self, gateway: &str) -> Result<f64, String> {
        let url = format!("http://{gateway}/metrics");
        let unreachable = |e: &dyn std::fmt::Display| format!("gateway {gateway}: {e}");
        let response = self.http.get(&url).timeout(MEASURE_TIMEOUT).send().await;
        let response = response.and_then(|r| r.error_for_status()).map_err(|e| unreachable(&e))?;
        let text = response.text().await.map_err(|e| unreachable(&e))?;
        sample_sum(&text, EDGE_WAKEUP_REQUESTS)
            .ok_or_else(|| unreachable(&format!("no {EDGE_WAKEUP_REQUESTS} in /metrics")))
    }

    async fn query_prometheus(&self, source: &PrometheusSource, target: &Target) -> Result<f64, String> {
        let query = source
            .query
            .replace("$edgePool", &target.edge_pool)
            .replace("$pool", &target.pool)
            .replace("$model", &target.model);
        let base = format!("{}/api/v1/query", source.url.trim_end_matches('/'));
        let url = reqwest::Url::parse_with_params(&base, &[("query", query.as_str())])
            .map_err(|e| format!("prometheus url {base}: {e}"))?;
        let response = self
            .http
            .get(url.clone())
            .timeout(MEASURE_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("prometheus {url}: {e}"))?;
        let body: serde_json::Value = response.json().await.map_err(|e| format!("prometheus {url}: {e}"))?;
        sum_of_vector(&body).ok_or_else(|| format!("prometheus query {query:?} returned no samples"))
    }
}

/// Sums the samples of an instant-vector query result; `None` when there are none.
fn sum_of_vector(body: &serde_json::Value) -> Option<f64> {
    let samples = body.pointer("/data/result")?.as_array()?;
    let values: Vec<f64> =
        samples.iter().filter_map(|s| s.pointer("/value/1")?.as_str()?.parse().ok()).collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Sums the samples of metric `name` in Prometheus text format; `None` when it has none.
fn sample_sum(text: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.rsplit_once('}')?.1,
                None => rest.starts_with(' ').then_some(rest)?,
            };
            value.split_whitespace().next()?.parse().ok()
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Sums the load of every agent; any agent that does not answer makes the queue unknown. The
/// error lists the silent agents in a stable order (it lands in a status condition, and a
/// message that changed from one sync to the next would rewrite the status every time).
async fn ask_agents(agents: &[String]) -> Result<f64, String> {
    let answers = join_all(agents.iter().map(|agent| load_of(agent))).await;
    let mut silent = Vec::new();
    let mut total = 0.0;
    for (agent, answer) in agents.iter().zip(answers) {
        match answer {
            Ok(load) => total += load,
            Err(error) => {
                tracing::debug!(%agent, %error, "edge agent did not answer Load");
                silent.push(agent.as_str());
            }
        }
    }
    if silent.is_empty() {
        Ok(total)
    } else {
        Err(format!("edge agent(s) not answering Load: {}", silent.join(", ")))
    }
}

async fn load_of(agent: &str) -> Result<f64, String> {
    let unreachable = |e: &dyn std::fmt::Display| format!("edge agent {agent}: {e}");
    let endpoint = Endpoint::from_shared(format!("http://{agent}")).map_err(|e| unreachable(&e))?;
    let channel = endpoint
        .connect_timeout(MEASURE_TIMEOUT)
        .timeout(MEASURE_TIMEOUT)
        .connect()
        .await
        .map_err(|e| unreachable(&e))?;
    let report =
        EdgeAgentClient::new(channel).load(LoadRequest {}).await.map_err(|e| unreachable(&e.message()))?;
    let report = report.into_inner();
    Ok(f64::from(report.waiting + report.running))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_vector_is_summed_and_an_empty_one_is_no_measurement() {
        let body = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1.0, "2.5"]}, {"metric": {}, "value": [1.0, "4"]}]}});
        assert_eq!(sum_of_vector(&body), Some(6.5));
        let empty = serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": []}});
        assert_eq!(sum_of_vector(&empty), None);
    }

    #[test]
    fn a_counter_is_summed_from_the_text_format() {
        let text = "# HELP pice_x_total Requests\n# TYPE pice_x_total counter\n\
                    pice_x_total{pool=\"a\"} 3\npice_x_total{pool=\"b\"} 4 1700000000\n\
                    pice_x_total_other 9\npice_x 1\n";
        assert_eq!(sample_sum(text, "pice_x_total"), Some(7.0));
        assert_eq!(sample_sum("pice_x_total 2\n", "pice_x_total"), Some(2.0));
        assert_eq!(sample_sum("pice_y_total 2\n", "pice_x_total"), None);
    }

    #[tokio::test]
    async fn an_unreachable_gateway_or_none_is_an_error_not_a_zero() {
        pice_wire::crypto::install_default_provider();
        let measurer = QueueMeasurer::new().unwrap();
        let error = measurer.count_wakeups(&["127.0.0.1:9".into()]).await.expect_err("port 9");
        assert!(error.starts_with("gateway 127.0.0.1:9: "), "{error}");
        assert!(measurer.count_wakeups(&[]).await.is_err());
    }

    #[tokio::test]
    async fn an_unreachable_agent_is_an_error_not_a_zero() {
        let error = ask_agents(&["127.0.0.1:9".into()]).await.expect_err("nothing listens on port 9");
        assert_eq!(error, "edge agent(s) not answering Load: 127.0.0.1:9");
    }
}
