"""OIDC/JWT bearer tokens: verification against a JWKS and the identity they map to.

Keys are generated here; the JWKS is served by an in-process httpx transport (no network).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError
from starlette.testclient import TestClient

from api.app import create_app
from api.auth.jwks import JwksCache
from api.auth.tokens import TokenVerifier, looks_like_jwt, subject_id
from api.settings import JwtSettings, Settings
from tests.api.fakes import FakeBackend
from tests.api.keys import AUTH

ISSUER = "https://issuer.example.test/"
AUDIENCE = "triton-gateway"
CHAT = "/v1/chat/completions"
HELLO = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING = new_key()
OTHER = new_key()


def jwks(*keys: tuple[str, rsa.RSAPrivateKey]) -> dict[str, Any]:
    entries = []
    for kid, key in keys:
        entry = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        entries.append({**entry, "kid": kid, "use": "sig", "alg": "RS256"})
    return {"keys": entries}


def token(key: rsa.RSAPrivateKey = SIGNING, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "iat": now,
        "exp": now + 300,
        "org_id": "org_acme",
        "scope": "inference",
        **claims,
    }
    return jwt.encode(
        {k: v for k, v in payload.items() if v is not None},
        key,
        algorithm="RS256",
        headers={"kid": kid},
    )


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def jwt_settings(**overrides: Any) -> JwtSettings:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks": jwks(("k1", SIGNING)),
        "models_claim": "models",
        **overrides,
    }
    return JwtSettings(**values)


@pytest.fixture
def jwt_client(backend: FakeBackend) -> Iterator[TestClient]:
    settings = Settings(auth={"jwt": jwt_settings()})
    with TestClient(create_app(settings, backend_factory=lambda _: backend)) as client:
        yield client


def test_valid_token_is_an_identity_for_inference(jwt_client: TestClient) -> None:
    response = jwt_client.post(CHAT, json=HELLO, headers=bearer(token()))
    assert response.status_code == 200
    assert response.json()["choices"][0]["finish_reason"] == "stop"
    # ... and it carries the usage of the token's subject and organization.
    usage = jwt_client.get("/v1/usage", headers=bearer(token()))
    assert usage.status_code == 200


@pytest.mark.parametrize(
    ("credential", "why"),
    [
        (token(exp=int(time.time()) - 3600), "expired"),
        (token(iss="https://evil.example.test/"), "wrong issuer"),
        (token(aud="someone-else"), "wrong audience"),
        (token(key=OTHER), "bad signature"),
        (token(kid="unknown"), "unknown key"),
        (token(exp=None), "no expiry"),
        (token(org_id=None), "no organization"),
        (token()[:-4] + "AAAA", "tampered"),
        ("not.a.jwt", "garbage"),
        (jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": 2**40}, "s" * 32, "HS256"), "hmac"),
    ],
)
def test_invalid_tokens_are_401_invalid_api_key(
    jwt_client: TestClient, credential: str, why: str
) -> None:
    response = jwt_client.post(CHAT, json=HELLO, headers=bearer(credential))
    assert response.status_code == 401, why
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("invalid_api_key", "invalid_request_error")


def test_claims_grant_nothing_the_settings_do_not_map(jwt_client: TestClient) -> None:
    for scope in ("admin", "operator", ["admin", "operator", "metrics"], "inference admin"):
        claimed = bearer(token(scope=scope))
        assert jwt_client.get("/v1/admin/keys", headers=claimed).status_code == 403, scope
        assert jwt_client.get("/metrics", headers=claimed).status_code == 403, scope
        # ... but a valid token still gets the default scopes.
        assert jwt_client.post(CHAT, json=HELLO, headers=claimed).status_code == 200
    limited = bearer(token(models=["all-minilm-l6-v2"]))
    chat = jwt_client.post(CHAT, json=HELLO, headers=limited)
    assert chat.status_code == 403 and chat.json()["error"]["code"] == "model_not_allowed"


MAPPED = {
    "scopes_claim": "groups",
    "default_scopes": [],
    "scope_map": {
        "gw-users": ["inference"],
        "gw-org-admins": ["admin"],
        "gw-platform": ["operator"],
    },
    "tier_map": {"paying": "unlimited", "trial": "free"},
}


@pytest.fixture
def mapped_client(backend: FakeBackend) -> Iterator[TestClient]:
    settings = Settings(auth={"jwt": jwt_settings(**MAPPED)})
    with TestClient(create_app(settings, backend_factory=lambda _: backend)) as client:
        yield client


def test_mapped_groups_grant_their_scopes(mapped_client: TestClient) -> None:
    client = mapped_client
    nobody = bearer(token(groups=["strangers"]))
    assert client.post(CHAT, json=HELLO, headers=nobody).status_code == 403
    user = bearer(token(groups=["gw-users"]))
    assert client.post(CHAT, json=HELLO, headers=user).status_code == 200
    assert client.get("/v1/admin/keys", headers=user).status_code == 403
    # The org admin of the token's organization: its own organization only.
    acme = client.post("/v1/admin/organizations", json={"name": "acme"}, headers=AUTH).json()
    rival = client.post("/v1/admin/organizations", json={"name": "rival"}, headers=AUTH).json()
    org_admin = bearer(token(groups="gw-org-admins", org_id=acme["id"]))
    made = client.post("/v1/admin/keys", json={}, headers=org_admin)
    assert made.status_code == 201 and made.json()["org_id"] == acme["id"]
    foreign = client.post("/v1/admin/keys", json={"org_id": rival["id"]}, headers=org_admin)
    assert foreign.status_code == 404
    minted = client.post("/v1/admin/keys", json={"scopes": ["operator"]}, headers=org_admin)
    assert minted.status_code == 403
    assert client.post(CHAT, json=HELLO, headers=org_admin).status_code == 200
    assert client.get("/metrics", headers=org_admin).status_code == 403
    # Operator only where the settings map it.
    platform = bearer(token(groups=["gw-users", "gw-platform"]))
    everyone = client.get("/v1/admin/organizations", headers=platform)
    assert everyone.status_code == 200 and len(everyone.json()["data"]) == 3
    assert client.get("/metrics", headers=platform).status_code == 200


def test_the_tier_claim_selects_only_mapped_tiers(mapped_client: TestClient) -> None:
    settings = Settings()
    tiers = settings.limits.tiers
    gateway = mapped_client.app.state.gateway  # type: ignore[attr-defined]
    assert mapped_client.portal is not None

    def tier_of(**claims: Any) -> Any:
        identity = mapped_client.portal.call(gateway.tokens.identity, token(**claims))  # type: ignore[union-attr]
        assert identity is not None
        assert identity.key_tier == identity.org_tier
        return identity.key_tier

    assert tier_of(tier="paying") == tiers["unlimited"]
    assert tier_of(tier="trial") == tiers["free"]
    # A tier named in the claim but not mapped, a made-up one, or none: the default tier.
    for claims in ({"tier": "unlimited"}, {"tier": "platinum"}, {"tier": ["paying"]}, {}):
        assert tier_of(**claims) == tiers[settings.limits.default_tier], claims


def test_a_default_tier_for_tokens_can_be_set(backend: FakeBackend) -> None:
    settings = Settings(auth={"jwt": jwt_settings(default_tier="free")})
    with TestClient(create_app(settings, backend_factory=lambda _: backend)) as client:
        gateway = client.app.state.gateway  # type: ignore[attr-defined]
        assert client.portal is not None
        identity = client.portal.call(gateway.tokens.identity, token(tier="unlimited"))
        assert identity is not None and identity.key_tier == settings.limits.tiers["free"]


def test_a_scope_map_naming_an_unknown_scope_is_refused() -> None:
    with pytest.raises(ValidationError, match="scope_map"):
        jwt_settings(scope_map={"ops": ["root"]})


def test_own_usage_of_a_subject_is_that_of_the_tokens_organization(
    jwt_client: TestClient,
) -> None:
    # The same subject (one key id) acting for two organizations.
    acme, rival = bearer(token(org_id="org_acme")), bearer(token(org_id="org_rival"))
    assert jwt_client.post(CHAT, json=HELLO, headers=rival).status_code == 200
    gateway = jwt_client.app.state.gateway  # type: ignore[attr-defined]
    assert jwt_client.portal is not None
    jwt_client.portal.call(gateway.recorder.flush)
    rows = jwt_client.get("/v1/usage", headers=acme, params={"group_by": "model"}).json()["data"]
    assert rows == []
    theirs = jwt_client.get("/v1/usage", headers=rival, params={"group_by": "model"}).json()
    assert [row["model"] for row in theirs["data"]] == ["tiny-chat"]


def test_api_keys_keep_working_beside_tokens(jwt_client: TestClient) -> None:
    assert jwt_client.post(CHAT, json=HELLO, headers=AUTH).status_code == 200
    assert jwt_client.post(CHAT, json=HELLO, headers=bearer("sk-wrong")).status_code == 401


def test_tokens_are_refused_when_jwt_is_not_configured(client: TestClient) -> None:
    response = client.post(CHAT, json=HELLO, headers=bearer(token()))
    assert response.status_code == 401


def test_settings_need_exactly_one_key_source() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        JwtSettings(issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(ValidationError, match="exactly one"):
        JwtSettings(issuer=ISSUER, audience=AUDIENCE, jwks={"keys": []}, jwks_url="http://x")


def test_identity_mapping() -> None:
    assert looks_like_jwt(token()) and not looks_like_jwt("sk-abc")
    assert subject_id(ISSUER, "a") != subject_id(ISSUER, "b")
    assert len(subject_id(ISSUER, "a")) <= 40


# --- the JWKS fetched from a URL ---------------------------------------------------------


class Issuer:
    """Serves a JWKS over an httpx MockTransport and counts the fetches."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.requests = 0
        self.fail = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.fail:
            return httpx.Response(503)
        return httpx.Response(200, json=self.document)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_jwks_is_cached_and_refetched_for_an_unknown_kid() -> None:
    issuer, clock = Issuer(jwks(("k1", SIGNING))), Clock()
    cache = JwksCache(
        url="https://issuer.test/jwks", ttl_s=300, client=issuer.client(), clock=clock
    )
    assert await cache.key("k1") is not None
    assert await cache.key("k1") is not None
    assert issuer.requests == 1
    # The issuer rotates: the new kid refetches, but not more than once per interval.
    issuer.document = jwks(("k1", SIGNING), ("k2", OTHER))
    assert await cache.key("k2") is None  # too soon after the last fetch
    clock.now += 11
    assert await cache.key("k2") is not None
    assert await cache.key("nope") is None
    assert issuer.requests == 2
    clock.now += 300
    await cache.key("k1")
    assert issuer.requests == 3
    await cache.close()


async def test_jwks_outage_keeps_the_known_keys() -> None:
    issuer, clock = Issuer(jwks(("k1", SIGNING))), Clock()
    cache = JwksCache(url="https://issuer.test/jwks", ttl_s=60, client=issuer.client(), clock=clock)
    await cache.key("k1")
    issuer.fail = True
    clock.now += 61
    assert await cache.key("k1") is not None
    await cache.close()


async def test_jwks_unavailable_at_first_is_503() -> None:
    issuer = Issuer({})
    issuer.fail = True
    cache = JwksCache(url="https://issuer.test/jwks", client=issuer.client())
    with pytest.raises(Exception, match="unavailable") as caught:
        await cache.key("k1")
    assert getattr(caught.value, "status_code", None) == 503
    await cache.close()


def test_app_verifies_tokens_with_a_fetched_jwks(backend: FakeBackend) -> None:
    settings = Settings(auth={"jwt": jwt_settings(jwks=None, jwks_url="https://issuer.test/jwks")})
    app = create_app(settings, backend_factory=lambda _: backend)
    issuer = Issuer(jwks(("k1", SIGNING)))
    with TestClient(app) as client:
        gateway = app.state.gateway
        assert client.portal is not None and gateway.tokens is not None
        client.portal.call(gateway.tokens.close)
        keys = JwksCache(url="https://issuer.test/jwks", client=issuer.client())
        gateway.tokens = TokenVerifier(
            jwt_settings(jwks=None, jwks_url="https://issuer.test/jwks"),
            keys,
            gateway.resolver,
            "default",
        )
        assert client.post(CHAT, json=HELLO, headers=bearer(token())).status_code == 200
        assert client.post(CHAT, json=HELLO, headers=bearer(token())).status_code == 200
        refused = client.post(CHAT, json=HELLO, headers=bearer(token(key=OTHER)))
        assert refused.status_code == 401
    assert issuer.requests == 1
