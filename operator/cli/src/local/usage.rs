//! What `pice local` prints once the data plane is ready: the endpoint, and a `curl` and a
//! Python (OpenAI SDK) example that work when pasted as they are.

use super::plan::{Cloud, EdgeBackend, Plan};

/// The text shown once the gateway at `url` is ready.
pub fn ready_text(plan: &Plan, url: &str) -> String {
    let pool = &plan.pool;
    let mut text = format!(
        "\nPICE is serving pool {pool:?} at {url}/v1 (OpenAI-compatible; model {pool:?}, routing mode {}).\n",
        plan.routing.mode.as_str()
    );
    text.push_str(&format!(
        "\nTry it with curl (header x-pice-mode: progressive, cloud or auto picks the mode):\n\n\
         curl -s {url}/v1/chat/completions -H 'content-type: application/json' \\\n  \
         -H 'x-pice-mode: progressive' \\\n  \
         -d '{{\"model\": \"{pool}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Give me five tips for a job interview.\"}}]}}'\n\n\
         or with Python (pip install openai):\n\n\
         from openai import OpenAI\n\
         client = OpenAI(base_url=\"{url}/v1\", api_key=\"unused\")\n\
         stream = client.chat.completions.create(\n    \
             model=\"{pool}\", stream=True,\n    \
             messages=[{{\"role\": \"user\", \"content\": \"Give me five tips for a job interview.\"}}],\n    \
             extra_headers={{\"x-pice-mode\": \"progressive\"}},\n\
         )\n\
         for chunk in stream:\n    \
             if chunk.choices:\n        \
                 print(chunk.choices[0].delta.content or \"\", end=\"\", flush=True)\n\n\
         Press Ctrl-C to stop.\n"
    ));
    text
}

/// Which tiers are simulated, if any.
pub fn simulated_note(plan: &Plan) -> Option<String> {
    let cloud = matches!(plan.cloud, Cloud::Sim { .. });
    let edge = plan.edges.iter().any(|e| matches!(e.backend, EdgeBackend::Sim { .. }));
    let tiers = match (cloud, edge) {
        (true, true) => "the cloud LLM and the edge models are",
        (true, false) => "the cloud LLM is",
        (false, true) => "the edge models are",
        (false, false) => return None,
    };
    Some(format!(
        "  SIMULATED: {tiers} pice-sim: timing of the named hardware profiles, placeholder text \
         (model names end in -simulated)"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::local::plan::{EdgeSource, plan};
    use crate::local::pool_file::parse;

    fn local_plan(cloud_url: Option<&str>, edge: &EdgeSource) -> Plan {
        let pool = parse(include_str!("../../../../deploy/examples/local-sim.yaml")).unwrap();
        plan(&pool, cloud_url, edge).unwrap()
    }

    #[test]
    fn the_examples_name_the_endpoint_and_the_pool() {
        let text = ready_text(&local_plan(None, &EdgeSource::Sim), "http://127.0.0.1:8080");
        assert!(text.contains("curl -s http://127.0.0.1:8080/v1/chat/completions"), "{text}");
        assert!(text.contains("base_url=\"http://127.0.0.1:8080/v1\""), "{text}");
        assert!(text.contains("\"model\": \"assistant\""), "{text}");
    }

    #[test]
    fn what_is_simulated_is_said_and_nothing_else() {
        let sim = simulated_note(&local_plan(None, &EdgeSource::Sim)).unwrap();
        assert!(sim.contains("SIMULATED: the cloud LLM and the edge models are"), "{sim}");
        let llama = simulated_note(&local_plan(None, &EdgeSource::Llama("m.gguf".into()))).unwrap();
        assert!(llama.contains("SIMULATED: the cloud LLM is pice-sim"), "{llama}");
        let real = local_plan(Some("http://c"), &EdgeSource::Urls(vec!["http://e".into()]));
        assert_eq!(simulated_note(&real), None);
    }
}
