"""The whole OpenAI contract through the gateway, with the official SDK: requests progressive mode
cannot honour (tools, JSON mode, several choices, log-probabilities, unknown fields) reach the
cloud as sent and come back whole, or are refused by name when progressive is demanded; the
cloud's own 4xx comes back as the SDK's usual exception; sampling parameters and conversations
are answered progressively, and a progressive answer's usage counts both tiers.

`recording_stack` answers from a RecordingCloud, which shows what the gateway sent it;
`stack` is the pice-sim stack with two edge agents, for progressive answers."""

import json

import openai
import pytest

from conftest import CLOUD_MODEL, POOL

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Oslo?"}]
LIST_QUESTION = "What are the most effective ways to deal with stress?"
SAMPLING = dict(temperature=0.25, top_p=0.5, seed=11, stop=["###"], presence_penalty=0.5, frequency_penalty=0.75)
CONVERSATION = [
    {"role": "system", "content": "You answer for a beekeeper, briefly."},
    {"role": "user", "content": "I keep three hives in a cold climate."},
    {"role": "assistant", "content": "Good to know: three hives, cold winters."},
    {"role": "user", "content": "What are the best ways to prepare them for winter?"},
]


def contract_series(label):
    return f'pice_gateway_contract_cloud_only_total{{field="{label}",pool="{POOL}"}}'


def create(stack, mode=None, **request):
    """A whole chat completion through the SDK's raw response: (x-pice-mode header, completion)."""
    headers = {"x-pice-mode": mode} if mode else {}
    raw = stack.client().chat.completions.with_raw_response.create(
        model=POOL, extra_headers=headers, **{"messages": WEATHER_QUESTION, **request})
    completion = raw.parse()
    assert completion.model_extra["pice"]["mode"] == raw.headers["x-pice-mode"]
    return raw.headers["x-pice-mode"], completion


def stream(stack, mode=None, **request):
    headers = {"x-pice-mode": mode} if mode else {}
    return list(stack.client().chat.completions.create(
        model=POOL, extra_headers=headers, stream=True, **{"messages": WEATHER_QUESTION, **request}))


def sent_since(stack, mark):
    """The one request the cloud got since `mark`, as (path, body)."""
    posts = stack.recorder.posts()[mark:]
    assert len(posts) == 1, posts
    return posts[0]


def assert_contract(pice, field):
    assert (pice["mode"], pice["reason"], pice["field"]) == ("cloud", "contract", field), pice


# --- Tools -----------------------------------------------------------------------------------


def test_a_tool_call_round_trip_passes_through_whole(recording_stack):
    stack = recording_stack
    before = stack.metric(contract_series("tool_choice"))
    mark = stack.recorder.mark()
    ran, completion = create(stack, tools=[WEATHER_TOOL], tool_choice="auto",
                             extra_body={"x_vendor_extension": {"keep": [1, 2, 3]}})

    path, sent = sent_since(stack, mark)
    assert path == "/v1/chat/completions"
    assert sent == {"model": CLOUD_MODEL, "messages": WEATHER_QUESTION, "tools": [WEATHER_TOOL],
                    "tool_choice": "auto", "x_vendor_extension": {"keep": [1, 2, 3]}}, \
        "every field as sent, the unknown one too, with only the model mapped"

    assert ran == "cloud"
    assert_contract(completion.pice, "tool_choice")  # the first blocking field in name order
    assert stack.metric(contract_series("tool_choice")) == before + 1
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert (call.id, call.type, call.function.name) == ("call_0", "function", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert completion.model == POOL, "the model is mapped back to the name asked for"
    assert completion.id.startswith("chatcmpl-recording-") and completion.system_fingerprint == "fp_recording"

    # The tool's result goes back in a tool turn: that conversation is cloud-only too, as sent.
    conversation = [*WEATHER_QUESTION, choice.message.model_dump(exclude_none=True),
                    {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "sunny", "celsius": 4}'}]
    mark = stack.recorder.mark()
    _, answer = create(stack, messages=conversation, tools=[WEATHER_TOOL])
    assert sent_since(stack, mark)[1] == {"model": CLOUD_MODEL, "messages": conversation, "tools": [WEATHER_TOOL]}
    assert_contract(answer.pice, "messages")
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content == "Answer 1 from the recording cloud."


def test_a_streamed_tool_call_arrives_in_deltas_the_sdk_joins(recording_stack):
    chunks = stream(recording_stack, tools=[WEATHER_TOOL], tool_choice="required")
    deltas = [call for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or []]
    assert deltas[0].function.name == "get_weather" and deltas[0].id == "call_0"
    assert json.loads("".join(delta.function.arguments or "" for delta in deltas)) == {"city": "Oslo"}
    finals = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert [final.choices[0].finish_reason for final in finals] == ["tool_calls"]
    assert_contract(finals[0].pice, "tool_choice")
    assert all(chunk.model == POOL for chunk in chunks)


# --- Several choices, log-probabilities, JSON mode ---------------------------------------------


def test_n_gives_that_many_choices_whole_and_streamed(recording_stack):
    stack = recording_stack
    before = stack.metric(contract_series("n"))
    ran, completion = create(stack, n=3)
    assert ran == "cloud"
    assert_contract(completion.pice, "n")
    assert [choice.index for choice in completion.choices] == [0, 1, 2]
    texts = [choice.message.content for choice in completion.choices]
    assert texts == [f"Answer {i} from the recording cloud." for i in (1, 2, 3)]

    chunks = stream(stack, n=3, stream_options={"include_usage": True})
    streamed = {0: "", 1: "", 2: ""}
    finals = []
    for chunk in chunks[:-1]:
        assert len(chunk.choices) == 1, chunk
        choice = chunk.choices[0]
        streamed[choice.index] += choice.delta.content or ""
        if choice.finish_reason:
            finals.append(chunk)
    assert [streamed[i] for i in range(3)] == texts, "each choice index streams its own text"
    assert sorted(final.choices[0].index for final in finals) == [0, 1, 2]
    for final in finals:
        assert_contract(final.pice, "n")  # pice rides on each chunk that finishes a choice
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == completion.usage.completion_tokens
    assert stack.metric(contract_series("n")) == before + 2


def test_logprobs_come_back_with_their_top_alternatives(recording_stack):
    stack = recording_stack
    mark = stack.recorder.mark()
    _, completion = create(stack, logprobs=True, top_logprobs=2)
    assert sent_since(stack, mark)[1]["top_logprobs"] == 2
    assert_contract(completion.pice, "logprobs")
    choice = completion.choices[0]
    content = choice.logprobs.content
    assert "".join(token.token for token in content) == choice.message.content
    first = content[0]
    assert first.logprob == pytest.approx(-0.1) and first.bytes == list(first.token.encode())
    assert [(top.token, top.logprob) for top in first.top_logprobs] == \
        [(first.token, pytest.approx(-0.1)), (first.token + "~1", pytest.approx(-0.2))]

    chunks = stream(stack, logprobs=True, top_logprobs=1)
    texts = [chunk.choices[0] for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    tokens = [choice.logprobs.content[0] for choice in texts]
    assert "".join(token.token for token in tokens) == choice.message.content
    assert all(len(token.top_logprobs) == 1 for token in tokens)


def test_json_mode_in_auto_mode_is_answered_by_the_cloud_as_json(recording_stack):
    stack = recording_stack
    mark = stack.recorder.mark()
    ran, completion = create(stack, "auto", response_format={"type": "json_object"},
                             messages=[{"role": "user", "content": "List three fruits as JSON."}])
    assert sent_since(stack, mark)[1]["response_format"] == {"type": "json_object"}
    assert ran == "cloud"
    assert_contract(completion.pice, "response_format")
    assert completion.pice["requested"] == "auto"
    assert json.loads(completion.choices[0].message.content) == {"answer": "recorded", "choice": 0}


@pytest.mark.parametrize("request_fields, field", [
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"n": 2}, "n"),
    ({"tools": [WEATHER_TOOL]}, "tools"),
    ({"logprobs": True}, "logprobs"),
    ({"extra_body": {"reasoning_mode": "deep"}}, "reasoning_mode"),
])
def test_demanding_progressive_for_what_it_cannot_keep_is_a_bad_request_naming_the_field(
        recording_stack, request_fields, field):
    mark = recording_stack.recorder.mark()
    with pytest.raises(openai.BadRequestError) as error:
        create(recording_stack, "progressive", **request_fields)
    assert error.value.status_code == 400
    assert (error.value.param, error.value.code) == (field, "unsupported_in_progressive_mode")
    assert "cannot be answered progressively" in error.value.message
    assert recording_stack.recorder.posts()[mark:] == [], "refused before the cloud was asked"


def test_an_unknown_field_keeps_the_request_on_the_cloud_and_counts_as_other(recording_stack):
    stack = recording_stack
    before = stack.metric(contract_series("other"))
    mark = stack.recorder.mark()
    _, completion = create(stack, extra_body={"reasoning_mode": "deep"})
    assert sent_since(stack, mark)[1] == {"model": CLOUD_MODEL, "messages": WEATHER_QUESTION, "reasoning_mode": "deep"}
    assert_contract(completion.pice, "reasoning_mode")
    assert stack.metric(contract_series("other")) == before + 1


# --- The cloud's own errors ---------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
def test_the_clouds_400_comes_back_as_a_bad_request_error(recording_stack, streamed):
    stack = recording_stack
    mark = stack.recorder.mark()
    with pytest.raises(openai.BadRequestError) as error:
        stack.client().chat.completions.create(model=POOL, messages=WEATHER_QUESTION, max_tokens=200_000,
                                               stream=streamed, extra_headers={"x-pice-mode": "cloud"})
    assert sent_since(stack, mark)[1]["max_tokens"] == 200_000, "the budget reaches the cloud as sent"
    assert error.value.status_code == 400, "not a 503"
    assert (error.value.code, error.value.param, error.value.type) == \
        ("context_length_exceeded", "messages", "invalid_request_error")
    assert "maximum context length" in error.value.message


# --- Text completions -------------------------------------------------------------------------


def test_text_completions_with_echo_and_suffix_pass_through_to_the_completions_api(recording_stack):
    stack = recording_stack
    mark = stack.recorder.mark()
    completion = stack.client().completions.create(model=POOL, prompt="Say hi.", echo=True, suffix="!", max_tokens=20)
    assert sent_since(stack, mark) == ("/v1/completions", {"model": CLOUD_MODEL, "prompt": "Say hi.", "echo": True,
                                                           "suffix": "!", "max_tokens": 20})
    assert completion.choices[0].text == "Say hi.Answer 1 from the recording cloud."
    assert_contract(completion.pice, "echo")
    assert completion.model == POOL


# --- Sampling parameters and conversations --------------------------------------------------------


def test_sampling_parameters_reach_the_cloud_unchanged(recording_stack):
    stack = recording_stack
    mark = stack.recorder.mark()
    ran, completion = create(stack, "cloud", max_tokens=50, user="user-7", **SAMPLING)
    assert sent_since(stack, mark)[1] == {"model": CLOUD_MODEL, "messages": WEATHER_QUESTION, "max_tokens": 50,
                                          "user": "user-7", **SAMPLING}
    assert ran == "cloud" and "field" not in completion.pice, completion.pice


def test_a_conversation_reaches_the_cloud_exactly_as_sent(recording_stack):
    stack = recording_stack
    conversation = [
        {"role": "developer", "content": "Prefer metric units."},
        *CONVERSATION[:3],
        {"role": "user", "content": [{"type": "text", "text": "And in spring?"}], "name": "keeper"},
    ]
    mark = stack.recorder.mark()
    _, completion = create(stack, "cloud", messages=conversation)
    assert sent_since(stack, mark)[1] == {"model": CLOUD_MODEL, "messages": conversation}
    assert completion.choices[0].message.content == "Answer 1 from the recording cloud."


def test_sampling_parameters_are_honoured_progressively(stack):
    ran, completion = create(stack, "progressive", max_tokens=160,
                             messages=[{"role": "user", "content": LIST_QUESTION}], **SAMPLING)
    assert ran == "progressive"
    assert "field" not in completion.pice and completion.pice["points"] >= 2, completion.pice
    assert completion.pice["edge_tokens"] > 0
    assert completion.choices[0].message.content.startswith("1. ")


def test_a_conversation_with_a_system_prompt_and_earlier_turns_is_answered_progressively(stack):
    ran, completion = create(stack, "progressive", messages=CONVERSATION, max_tokens=160, seed=5)
    assert ran == "progressive"
    assert completion.pice["requested"] == "progressive" and completion.pice["points"] >= 2, completion.pice
    lines = completion.choices[0].message.content.split("\n")
    assert [line.split(". ", 1)[0] for line in lines] == [str(i) for i in range(1, len(lines) + 1)], lines


def test_a_progressive_answers_usage_counts_both_tiers(stack):
    _, completion = create(stack, "progressive", messages=[{"role": "user", "content": LIST_QUESTION}],
                           max_tokens=160, seed=9)
    pice = completion.to_dict()["pice"]
    assert pice["cloud_tokens"] > 0 and pice["edge_tokens"] > 0 and pice["edge_prompt_tokens"] > 0, pice
    usage = completion.usage
    assert usage.completion_tokens == pice["cloud_tokens"] + pice["edge_tokens"]
    assert usage.prompt_tokens == pice["cloud_prompt_tokens"] + pice["edge_prompt_tokens"]
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    chunks = stream(stack, "progressive", messages=[{"role": "user", "content": LIST_QUESTION}], max_tokens=160,
                    seed=9, stream_options={"include_usage": True})
    final = next(chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason)
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert usage.completion_tokens == final.pice["cloud_tokens"] + final.pice["edge_tokens"]
    assert usage.prompt_tokens == final.pice["cloud_prompt_tokens"] + final.pice["edge_prompt_tokens"]
