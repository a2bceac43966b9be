"""The official openai package, unmodified (only base_url and api_key), against every upstream."""

import json

import openai
import pytest

from conftest import PNG, UPSTREAMS

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


@pytest.fixture
def client(flo2):
    return openai.OpenAI(base_url=flo2["base"] + "/v1", api_key=flo2["key"], max_retries=0)


def ask(client, model, messages, stream, **kw):
    """Returns (text, tool_calls as [(id, name, args)], finish_reason) whether streamed or not."""
    if not stream:
        r = client.chat.completions.create(model=model, messages=messages, **kw)
        m = r.choices[0].message
        calls = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in (m.tool_calls or [])]
        assert r.usage.total_tokens > 0
        return m.content or "", calls, r.choices[0].finish_reason
    text, calls, finish, usage = "", {}, None, None
    with client.chat.completions.create(model=model, messages=messages, stream=True, stream_options={"include_usage": True}, **kw) as s:
        for chunk in s:
            if chunk.usage:
                usage = chunk.usage
            if not chunk.choices:
                continue
            d = chunk.choices[0].delta
            text += d.content or ""
            for tc in d.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": "", "args": ""})
                slot["id"] = tc.id or slot["id"]
                slot["name"] += (tc.function.name or "") if tc.function else ""
                slot["args"] += (tc.function.arguments or "") if tc.function else ""
            finish = chunk.choices[0].finish_reason or finish
    assert usage is not None and usage.total_tokens > 0
    return text, [(c["id"], c["name"], json.loads(c["args"])) for c in calls.values()], finish


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("upstream", list(UPSTREAMS))
def test_plain_text(client, upstream, stream):
    text, calls, finish = ask(client, UPSTREAMS[upstream], [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}], stream)
    assert text == "Hello from fake"
    assert calls == [] and finish == "stop"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("upstream", list(UPSTREAMS))
def test_tool_call_round_trip(client, upstream, stream):
    model = UPSTREAMS[upstream]
    messages = [{"role": "user", "content": "[[tool:get_weather]] What is the weather in Paris?"}]
    _, calls, finish = ask(client, model, messages, stream, tools=TOOLS)
    assert finish == "tool_calls"
    assert [(name, args) for _, name, args in calls] == [("get_weather", {"city": "Paris"})]
    call_id = calls[0][0]
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [{"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": json.dumps(calls[0][2])}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21°C"},
    ]
    text, calls, finish = ask(client, model, messages, stream, tools=TOOLS)
    assert text == "Hello from fake" and calls == [] and finish == "stop"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("upstream", list(UPSTREAMS))
def test_image_input(client, upstream, stream):
    content = [{"type": "text", "text": "What is in this image?"}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]
    text, _, _ = ask(client, UPSTREAMS[upstream], [{"role": "user", "content": content}], stream)
    assert text == "Hello from fake"


def test_typed_errors(client, flo2):
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model=UPSTREAMS["anthropic"], messages=[{"role": "user", "content": "[[error:429]]"}])
    assert e.value.response.headers.get("retry-after") == "3"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="mistral/mistral-large-latest", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=UPSTREAMS["anthropic"], n=2, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=UPSTREAMS["gemini"], messages=[{"role": "user", "content": "[[error:503]]"}])
    bad = openai.OpenAI(base_url=flo2["base"] + "/v1", api_key="flo2_not_a_real_key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=UPSTREAMS["openai-family"], messages=[{"role": "user", "content": "hi"}])


def test_models_and_embeddings(client):
    ids = [m.id for m in client.models.list()]
    assert "openai/gpt-4o-mini" in ids and "anthropic/claude-sonnet-4-5" in ids
    r = client.embeddings.create(model="openai/text-embedding-3-small", input=["a", "b"])
    assert len(r.data) == 2
