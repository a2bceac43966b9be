"""Fixtures: the fake upstream and a real flo2 binary, one of each for the whole session, and an
organization whose openai, anthropic and gemini keys point at the fake, with two routes over them."""

import json
import urllib.request

import flo2_harness
import pytest


def _post(url, body, token=None, method="POST"):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="session")
def fake_upstream():
    proc, base = flo2_harness.start_fake_upstream()
    yield base
    flo2_harness.stop(proc)


@pytest.fixture(scope="session")
def flo2(fake_upstream):
    proc, base = flo2_harness.start_flo2("flo2-sdk-")
    signup = _post(f"{base}/api/v1/signup", {"email": "sdk@example.com", "password": "a long passphrase", "organization": "SDK"})
    token = signup["token"]
    for provider, prefix in [("openai", "/v1"), ("anthropic", "/v1"), ("gemini", "/v1beta")]:
        _post(f"{base}/api/v1/provider-keys", {"provider": provider, "name": provider, "api_key": "sk-upstream-0123456789", "base_url": fake_upstream + prefix}, token)
    # A provider that refuses connections, and routes that must hide it or race around it.
    _post(f"{base}/api/v1/provider-keys", {"provider": "xai", "name": "dead", "api_key": "sk-dead-0123456789", "base_url": "http://127.0.0.1:9/v1"}, token)
    _post(f"{base}/api/v1/routes/resilient", {"strategy": "priority", "targets": [{"provider": "xai", "model": "grok-3-mini"}, {"provider": "anthropic", "model": "claude-haiku-4-5"}]}, token, method="PUT")
    _post(f"{base}/api/v1/routes/race-first", {"strategy": "race", "targets": [{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "gemini", "model": "gemini-2.5-flash"}]}, token, method="PUT")
    team = _post(f"{base}/api/v1/teams", {"name": "sdk"}, token)
    key = _post(f"{base}/api/v1/api-keys", {"name": "sdk", "team_id": team["id"]}, token)["key"]
    yield {"base": base, "key": key, "token": token}
    flo2_harness.stop(proc, must_exit_cleanly=True)


# One model per upstream family.
UPSTREAMS = {
    "openai-family": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    # Routes: fallback past a dead provider, and a race of two upstream families.
    "route-fallback": "resilient",
    "route-race": "race-first",
}

# A 1x1 PNG.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
