"""GET /api/openapi.json stays true: every API route is documented with its methods, and nothing else is."""
from __future__ import annotations

import re


def app_routes(app) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/") or rule.rule == "/metrics"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    return routes


def test_openapi_matches_the_routes(client, app):
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    documented = {path: set(ops) for path, ops in doc["paths"].items()}
    assert documented == app_routes(app)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and "200" in op["responses"] or "202" in op["responses"], (path, method)
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"{([^}]+)}", path)), path


def test_documented_errors_use_the_error_schema(client):
    doc = client.get("/api/openapi.json").get_json()
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    body = client.get("/api/search?k=0").get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}
    search = doc["paths"]["/api/search"]["get"]
    assert {"400", "414", "503"} <= set(search["responses"])
    assert set(doc["components"]["schemas"]["Search"]["required"]) <= set(client.get("/api/search?q=lung").get_json())
