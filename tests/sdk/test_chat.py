"""Chat and text completions through the gateway with the official OpenAI SDK, as users call it."""

import pytest

from conftest import CLOUD_MODEL, POOL

LIST_QUESTION = "What are the most effective ways to deal with stress?"
CODE_QUESTION = "Implement a binary search algorithm in Python."


def ask(client, question, mode, **options):
    return dict(
        model=POOL,
        messages=[{"role": "user", "content": question}],
        seed=42,
        max_tokens=120,
        extra_headers={"x-pice-mode": mode},
        **options,
    )


def whole(client, request):
    raw = client.chat.completions.with_raw_response.create(**request)
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.pice["mode"] == raw.headers["x-pice-mode"]
    return raw.headers["x-pice-mode"], completion


def streamed(client, request):
    chunks = list(client.chat.completions.create(**request, stream=True))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    final = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert len(final) == 1
    return text, final[0], chunks


@pytest.mark.parametrize("mode", ["cloud", "progressive"])
def test_whole_and_streamed_answers_are_the_same_text_for_the_same_seed(stack, mode):
    client = stack.client()
    ran, completion = whole(client, ask(client, LIST_QUESTION, mode))
    assert ran == mode
    text = completion.choices[0].message.content
    assert text and completion.usage.completion_tokens > 0
    streamed_text, final, _ = streamed(client, ask(client, LIST_QUESTION, mode))
    assert streamed_text == text
    assert final.pice["mode"] == mode


def test_progressive_points_arrive_in_order(stack):
    client = stack.client()
    text, final, chunks = streamed(client, ask(client, LIST_QUESTION, "progressive"))
    lines = text.split("\n")
    assert [line.split(". ", 1)[0] for line in lines] == ["1", "2", "3", "4"], text
    assert all(len(line) > 12 for line in lines), "each point is expanded"
    assert final.pice["points"] == 4 and final.pice["edge_tokens"] > 0
    assert sum(1 for chunk in chunks if chunk.choices and chunk.choices[0].delta.content) > 8, \
        "the answer streams in many pieces"


def test_auto_mode_expands_list_questions_and_keeps_code_on_the_cloud(stack):
    client = stack.client()
    ran, completion = whole(client, ask(client, LIST_QUESTION, "auto"))
    assert ran == "progressive", completion.pice
    assert completion.pice["requested"] == "auto"
    text, final, _ = streamed(client, ask(client, CODE_QUESTION, "auto"))
    assert final.pice["mode"] == "cloud" and final.pice["reason"] == "unsuitable"
    assert text


def test_streamed_usage_comes_in_a_last_chunk_when_asked_for(stack):
    client = stack.client()
    _, _, chunks = streamed(client, ask(client, LIST_QUESTION, "cloud", stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert chunks[-1].choices == []


def test_text_completions_whole_and_streamed(stack):
    client = stack.client()
    request = dict(model=CLOUD_MODEL, prompt=LIST_QUESTION, max_tokens=60, seed=3,
                   extra_headers={"x-pice-mode": "progressive"})
    completion = client.completions.create(**request)
    assert completion.object == "text_completion"
    assert completion.choices[0].text.startswith("1. ")
    pieces = [chunk.choices[0].text for chunk in client.completions.create(**request, stream=True)]
    assert "".join(pieces) == completion.choices[0].text


def test_models_lists_the_pool_and_the_cloud_model(stack):
    ids = [model.id for model in stack.client().models.list()]
    assert ids == [POOL, CLOUD_MODEL]
