"""Bad requests and a missing cloud: the SDK raises its usual exceptions, built from the
gateway's OpenAI-shaped error bodies, and the gateway keeps serving."""

import httpx
import openai
import pytest

from conftest import API_KEY, POOL

MESSAGES = [{"role": "user", "content": "How can I sleep better?"}]


def still_serves(stack):
    completion = stack.client().chat.completions.create(
        model=POOL, messages=MESSAGES, max_tokens=20, extra_headers={"x-pice-mode": "cloud"})
    assert completion.choices[0].message.content


def test_a_missing_or_wrong_api_key_is_an_authentication_error(stack):
    client = openai.OpenAI(base_url=f"{stack.gateway_url}/v1", api_key="sk-wrong", max_retries=0)
    for headers, message in [({}, "Incorrect API key"), ({"Authorization": openai.omit}, "didn't provide")]:
        with pytest.raises(openai.AuthenticationError) as error:
            client.chat.completions.create(model=POOL, messages=MESSAGES, extra_headers=headers)
        assert error.value.status_code == 401 and error.value.code == "invalid_api_key"
        assert message in error.value.message
    still_serves(stack)


def test_an_unknown_model_is_not_found(stack):
    with pytest.raises(openai.NotFoundError) as error:
        stack.client().chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert error.value.code == "model_not_found" and error.value.param == "model"
    still_serves(stack)


def test_missing_messages_is_a_bad_request(stack):
    with pytest.raises(openai.BadRequestError) as error:
        stack.client().chat.completions.create(model=POOL, messages=[])
    assert error.value.param == "messages"
    assert error.value.type == "invalid_request_error"
    still_serves(stack)


def test_a_body_over_the_limit_is_413(stack):
    huge = [{"role": "user", "content": "word " * 20000}]
    with pytest.raises(openai.APIStatusError) as error:
        stack.client().chat.completions.create(model=POOL, messages=huge)
    assert error.value.status_code == 413 and error.value.code == "request_too_large"
    still_serves(stack)


def test_malformed_json_is_a_bad_request_in_openai_shape(stack):
    # The SDK never sends broken JSON, so this one goes through its HTTP library directly.
    response = httpx.post(f"{stack.gateway_url}/v1/chat/completions", content=b'{"model": "assistant", "mess',
                          headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    still_serves(stack)


def test_a_cloud_that_is_down_is_a_503_server_error(own_stack):
    stack = own_stack(edges=1, cloud_down=True)
    for stream in [False, True]:
        with pytest.raises(openai.InternalServerError) as error:
            stack.client().chat.completions.create(model=POOL, messages=MESSAGES, stream=stream)
        assert error.value.status_code == 503
        assert error.value.code == "cloud_unavailable" and error.value.type == "server_error"
    assert httpx.get(f"{stack.gateway_url}/healthz").status_code == 200
