"""Edge failures seen from the SDK: a request survives an edge agent killed in its middle, and
with every edge gone the cloud writes the points."""

from conftest import POOL

QUESTION = "What are the main differences between Python and JavaScript?"


def progressive(stack, stream):
    return stack.client().chat.completions.create(
        model=POOL, messages=[{"role": "user", "content": QUESTION}], max_tokens=200, seed=7, stream=stream,
        extra_headers={"x-pice-mode": "progressive"})


def test_an_edge_agent_killed_mid_request_does_not_fail_it(own_stack):
    stack = own_stack(edges=2, mode="progressive")
    stack.wait_ready()
    stream = progressive(stack, stream=True)
    text, final = "", None
    for chunk in stream:
        delta = chunk.choices[0].delta.content if chunk.choices else None
        if delta and not text:
            stack.edges[0].kill()
        text += delta or ""
        if chunk.choices and chunk.choices[0].finish_reason:
            final = chunk
    assert final is not None, "the stream completed"
    assert [line.split(". ", 1)[0] for line in text.split("\n") if line[:1].isdigit()][:4] == ["1", "2", "3", "4"]
    assert final.pice["degraded"] is False and final.pice["fallbacks"] >= 1, final.pice
    assert stack.metric('pice_gateway_fallbacks_total{pool="assistant",reason="edge_error"}') >= 1


def test_with_every_edge_agent_gone_the_cloud_writes_the_points(own_stack):
    stack = own_stack(edges=1, mode="progressive")
    stack.wait_ready()
    stack.edges[0].kill()
    completion = progressive(stack, stream=False)
    assert completion.pice["edge_tokens"] == 0 and completion.pice["degraded"] is False, completion.pice
    assert completion.choices[0].message.content.count("\n") == 3
