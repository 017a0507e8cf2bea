// The gateway under test for the Node SDK tests: an official `openai` client on the gateway that
// tests/sdk/test_node_sdk.py started, given by PICE_GATEWAY_URL, PICE_API_KEY and PICE_MODEL.
import OpenAI from "openai";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run these tests through tests/sdk/run.sh -k node`);
  }
  return value;
}

export const GATEWAY_URL = required("PICE_GATEWAY_URL");
export const MODEL = required("PICE_MODEL");
export const MESSAGES = [{ role: "user", content: "What are the most effective ways to deal with stress?" }];

export function client(options = {}) {
  return new OpenAI({
    baseURL: `${GATEWAY_URL}/v1`,
    apiKey: required("PICE_API_KEY"),
    maxRetries: 0,
    timeout: 60_000,
    ...options,
  });
}
