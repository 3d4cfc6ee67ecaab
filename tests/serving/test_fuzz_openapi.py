"""Property-based fuzzing of the OpenAPI schema with Schemathesis, in-process (ASGI): no
request may end in a 5xx, every 4xx body is a JSON object naming the error (``detail``) and
the field at fault (``field``, null when none), and a write without a token is a 401."""

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from recforge.serving import Settings  # noqa: E402
from recforge.serving.app import create_app  # noqa: E402

from .conftest import TOKEN  # noqa: E402

READS = {("POST", "/recommendations")}  # the one POST that is a read


@pytest.fixture(scope="module")
def api_schema(models_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    tokens = tmp / "tokens"
    tokens.write_text(TOKEN + "\n")
    app = create_app(Settings(models_root=str(models_root), store=str(tmp / "store.sqlite"),
                              model_dir="knn", token_file=str(tokens)))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


FUZZ = settings(max_examples=25, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


def _check(case, response, with_token: bool) -> None:
    status = response.status_code
    assert status < 500, f"{case.method} {case.formatted_path}: {status} {response.text[:500]}"
    if status >= 400:
        body = response.json()
        assert isinstance(body, dict), response.text
        assert isinstance(body.get("detail"), str) and body["detail"], response.text
        assert "field" in body and (body["field"] is None or isinstance(body["field"], str)), \
            response.text
    write = case.method.upper() != "GET" and (case.method.upper(), case.path) not in READS
    if write and not with_token:
        assert status == 401, f"{case.method} {case.path} without a token: {status}"
    case.validate_response(response, checks=[not_a_server_error])


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
def test_fuzz_every_operation(api_schema, with_token):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        @FUZZ
        @given(case=operation.as_strategy())
        def fuzz(case):
            headers = {k: v for k, v in (case.headers or {}).items()
                       if k.lower() != "authorization"}
            if with_token:
                headers["Authorization"] = f"Bearer {TOKEN}"
            case.headers = headers
            _check(case, case.call(), with_token)

        fuzz()


@pytest.mark.parametrize("method,url,body,status,field", [
    # found by the fuzzing above: each was a 500 before
    ("post", "/recommendations", '{"candidates": [9223372036854775808]}', 200, None),
    ("post", "/models/9223372036854775808/promote", None, 422, "path.version"),
    ("post", "/events", '{"events": [{"user": "u", "item": "\\ud800"}]}', 422,
     "body.events.0.item"),
    ("post", "/recommendations", '{"history": ["\\ud800"]}', 422, "body.history.0"),
    ("post", "/models", '{"path": "a\\u0000b"}', 422, "body.path"),
    ("post", "/models", '{"path": "\\udfff"}', 422, "body.path"),
])
def test_fuzzing_finds_stay_fixed(make_client, method, url, body, status, field):
    from .conftest import AUTH

    client = make_client("knn")
    headers = {**AUTH, "content-type": "application/json"}
    resp = getattr(client, method)(url, content=body, headers=headers)
    assert resp.status_code == status, resp.text
    if status >= 400:
        assert resp.json()["field"] == field
