// Chat answers through the official Node SDK: a whole one from the cloud and a streamed
// progressive one, as users call the gateway from JavaScript.
import assert from "node:assert/strict";
import { test } from "node:test";

import { client, MESSAGES, MODEL } from "./gateway.mjs";

test("a whole chat completion in cloud mode", async () => {
  const cloud = client({ defaultHeaders: { "x-pice-mode": "cloud" } });
  const { data: completion, response } = await cloud.chat.completions
    .create({ model: MODEL, messages: MESSAGES, max_tokens: 60, seed: 42 })
    .withResponse();
  assert.equal(response.headers.get("x-pice-mode"), "cloud");
  assert.equal(completion.object, "chat.completion");
  assert.equal(completion.choices.length, 1);
  const [choice] = completion.choices;
  assert.equal(choice.message.role, "assistant");
  assert.ok(choice.message.content.trim().length > 0, "the answer has text");
  assert.ok(["stop", "length"].includes(choice.finish_reason), choice.finish_reason);
  const { prompt_tokens, completion_tokens, total_tokens } = completion.usage;
  assert.ok(prompt_tokens > 0 && completion_tokens > 0, JSON.stringify(completion.usage));
  assert.equal(total_tokens, prompt_tokens + completion_tokens);
  assert.equal(completion.pice.mode, "cloud");
});

test("a streamed chat completion in progressive mode", async () => {
  const stream = await client().chat.completions.create(
    { model: MODEL, messages: MESSAGES, max_tokens: 120, seed: 42, stream: true },
    { headers: { "x-pice-mode": "progressive" } },
  );
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
  }
  const withChoices = chunks.filter((chunk) => chunk.choices.length > 0);
  assert.ok(withChoices.every((chunk) => chunk.object === "chat.completion.chunk"));
  const text = withChoices.map((chunk) => chunk.choices[0].delta.content ?? "").join("");
  assert.ok(text.trim().length > 0, "the chunks assemble to an answer");
  assert.ok(withChoices.filter((chunk) => chunk.choices[0].delta.content).length > 1, "it streams in pieces");
  const final = withChoices.filter((chunk) => chunk.choices[0].finish_reason);
  assert.equal(final.length, 1, "one chunk finishes the answer");
  assert.equal(final[0], withChoices.at(-1), "and it is the last one");
  assert.ok(["stop", "length"].includes(final[0].choices[0].finish_reason));
  assert.equal(final[0].pice.mode, "progressive", JSON.stringify(final[0].pice));
});
