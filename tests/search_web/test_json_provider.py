"""JSON responses go through orjson (search_web.json_provider): the same values as the json module would write."""
from __future__ import annotations

import datetime
import decimal
import json
import math
import uuid
from dataclasses import dataclass

import numpy as np
from flask import Flask, jsonify
from markupsafe import Markup

from search_web.json_provider import FastJSONProvider


@dataclass
class Point:
    x: int
    y: float


def make_app(debug: bool = False) -> Flask:
    app = Flask(__name__)
    app.json = FastJSONProvider(app)
    app.json.sort_keys = False
    app.debug = debug
    return app


def test_values_equal_the_json_modules_and_keys_keep_their_order():
    app = make_app()
    body = {"z": 1, "a": [1.5, "é <script>", None, True], "nested": {"k": 10**15}, 3: "int key",
            "when": datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC), "price": decimal.Decimal("1.50"),
            "id": uuid.UUID(int=5), "point": Point(1, 2.5), "html": Markup("<b>x</b>"), "np": np.float32(0.25)}
    with app.app_context():
        response = jsonify(body)
        assert response.mimetype == "application/json"
        text = response.get_data(as_text=True)
    assert text.startswith("{\"z\":1,\"a\":[1.5,") and text.endswith("}\n")  # compact, newline-terminated
    got = json.loads(text)
    assert list(got) == ["z", "a", "nested", "3", "when", "price", "id", "point", "html", "np"]
    assert got["a"] == [1.5, "é <script>", None, True] and got["nested"] == {"k": 10**15}
    assert got["when"] == "Mon, 30 Nov 2026 12:00:00 GMT"  # Flask's HTTP date, as before
    assert got["price"] == "1.50" and got["id"] == str(uuid.UUID(int=5))
    assert got["point"] == {"x": 1, "y": 2.5} and got["html"] == "<b>x</b>" and got["np"] == 0.25


def test_string_keys_only_convert_alike():
    """Without a non-string key the answer is encoded without OPT_NON_STR_KEYS (quicker): same conversions."""
    app = make_app()
    body = {"when": datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC), "price": decimal.Decimal("1.50"),
            "id": uuid.UUID(int=5), "point": Point(1, 2.5), "html": Markup("<b>x</b>"), "np": np.float32(0.25),
            "nested": [{"a": 1}]}
    with app.app_context():
        got = json.loads(jsonify(body).get_data(as_text=True))
    assert got == {"when": "Mon, 30 Nov 2026 12:00:00 GMT", "price": "1.50", "id": str(uuid.UUID(int=5)),
                   "point": {"x": 1, "y": 2.5}, "html": "<b>x</b>", "np": 0.25, "nested": [{"a": 1}]}


def test_nan_becomes_null_instead_of_invalid_json():
    app = make_app()
    with app.app_context():
        text = jsonify({"score": math.nan, "inf": math.inf}).get_data(as_text=True)
    assert json.loads(text) == {"score": None, "inf": None}


def test_debug_mode_still_indents():
    app = make_app(debug=True)
    with app.app_context():
        text = jsonify({"a": 1}).get_data(as_text=True)
    assert text == '{\n  "a": 1\n}\n'


def test_the_app_answers_through_it(client):
    assert isinstance(client.application.json, FastJSONProvider)
    r = client.get("/api/search?q=granuloma&k=2")
    assert r.status_code == 200 and r.get_json()["results"]
