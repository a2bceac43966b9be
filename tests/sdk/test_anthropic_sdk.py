"""The official anthropic package, unmodified (only base_url and api_key), against every upstream."""

import anthropic
import pytest

from conftest import PNG, UPSTREAMS

TOOLS = [{"name": "get_weather", "description": "Weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


@pytest.fixture
def client(flo2):
    return anthropic.Anthropic(base_url=flo2["base"], api_key=flo2["key"], max_retries=0)


def ask(client, model, messages, stream, **kw):
    """Returns the final Message, streamed or not."""
    if not stream:
        return client.messages.create(model=model, max_tokens=256, messages=messages, **kw)
    with client.messages.stream(model=model, max_tokens=256, messages=messages, **kw) as s:
        for _ in s.text_stream:
            pass
        return s.get_final_message()


def text_of(message):
    return "".join(b.text for b in message.content if b.type == "text")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("upstream", list(UPSTREAMS))
def test_plain_text(client, upstream, stream):
    m = ask(client, UPSTREAMS[upstream], [{"role": "user", "content": "Say hello"}], stream, system="Be brief.")
    assert text_of(m) == "Hello from fake"
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("upstream", list(UPSTREAMS))
def test_tool_call_round_trip(client, upstream, stream):
    model = UPSTREAMS[upstream]
    messages = [{"role": "user", "content": "[[tool:get_weather]] What is the weather in Paris?"}]
    m = ask(client, model, messages, stream, tools=TOOLS)
    assert m.stop_reason == "tool_use"
    uses = [b for b in m.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [("get_weather", {"city": "Paris"})]
    messages += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": uses[0].id, "name": "get_weather", "input": uses[0].input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "sunny, 21°C"}, {"type": "text", "text": "Thanks!"}]},
    ]
    m = ask(client, model, messages, stream, tools=TOOLS)
    assert text_of(m) == "Hello from fake" and m.stop_reason == "end_turn"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("upstream", list(UPSTREAMS))
def test_image_input(client, upstream, stream):
    content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}, {"type": "text", "text": "What is this?"}]
    m = ask(client, UPSTREAMS[upstream], [{"role": "user", "content": content}], stream)
    assert text_of(m) == "Hello from fake"


def test_typed_errors(client, flo2):
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model=UPSTREAMS["openai-family"], max_tokens=5, messages=[{"role": "user", "content": "[[error:429]]"}])
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="mistral/mistral-large-latest", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model=UPSTREAMS["openai-family"], max_tokens=5, messages=[{"role": "user", "content": "hi"}], thinking={"type": "enabled", "budget_tokens": 1024})
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model=UPSTREAMS["anthropic"], max_tokens=5, messages=[{"role": "user", "content": "[[error:529]]"}])
    bad = anthropic.Anthropic(base_url=flo2["base"], api_key="flo2_not_a_real_key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model=UPSTREAMS["anthropic"], max_tokens=5, messages=[{"role": "user", "content": "hi"}])


def test_models_and_count_tokens(client):
    ids = [m.id for m in client.models.list()]
    assert "anthropic/claude-haiku-4-5" in ids
    assert client.messages.count_tokens(model=UPSTREAMS["anthropic"], messages=[{"role": "user", "content": "hello"}]).input_tokens > 0
