// Bad requests through the official Node SDK: the SDK throws its usual error classes, built
// from the gateway's OpenAI-shaped error bodies.
import assert from "node:assert/strict";
import { test } from "node:test";

import OpenAI from "openai";

import { client, MESSAGES, MODEL } from "./gateway.mjs";

test("an unknown model is a NotFoundError", async () => {
  await assert.rejects(
    client().chat.completions.create({ model: "gpt-9", messages: MESSAGES }),
    (error) => {
      assert.ok(error instanceof OpenAI.NotFoundError, `${error.constructor.name}: ${error.message}`);
      assert.equal(error.status, 404);
      assert.equal(error.code, "model_not_found");
      assert.equal(error.param, "model");
      assert.equal(error.type, "invalid_request_error");
      assert.match(error.message, /gpt-9/);
      assert.deepEqual(Object.keys(error.error).sort(), ["code", "message", "param", "type"]);
      return true;
    },
  );
});

test("empty messages are a BadRequestError", async () => {
  await assert.rejects(
    client().chat.completions.create({ model: MODEL, messages: [] }),
    (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError, `${error.constructor.name}: ${error.message}`);
      assert.equal(error.status, 400);
      assert.equal(error.param, "messages");
      assert.equal(error.type, "invalid_request_error");
      assert.match(error.message, /messages/);
      return true;
    },
  );
});
