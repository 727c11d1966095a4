"""The circuit explorer's data, page, CLI and server (without a browser: see
test_explore_browser.py for the page driven in chromium)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from explore_server import running_server

import chainrule as cr
from chainrule import nn
from chainrule.cli import main
from chainrule.draw import dot_program
from chainrule.explore.subject import Subject

pytestmark = pytest.mark.skipif(dot_program() is None, reason="Graphviz's dot is needed")

NEURON = "1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))"
NEURON_AT = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
STAGED = "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)"


def neuron_data() -> dict:
    return Subject.from_expression(NEURON, NEURON_AT).describe()


def page_data(html: str) -> dict:
    match = re.search(r'id="chainrule-data">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def test_neuron_steps_read_like_the_notes():
    data = neuron_data()
    steps = data["steps"]
    assert [s["label"] for s in steps] == ["1/x", "+1", "exp", "*-1", "+", "+", "*", "*"]
    first = steps[0]
    assert first["upstream"]["num"] == 1.0
    assert first["inputs"][0]["local"]["num"] == pytest.approx(-0.534, abs=1e-3)
    assert first["inputs"][0]["grad"]["text"] == "-0.534"  # 3 significant digits
    exp = steps[2]
    assert exp["inputs"][0]["local"]["text"] == "0.368"
    assert exp["upstream"]["text"] == "-0.534"
    assert exp["inputs"][0]["grad"]["text"] == "-0.197"
    assert steps[3]["inputs"][0]["grad"]["num"] == pytest.approx(0.19661, abs=1e-5)
    grads = {g["name"]: g["grad"]["num"] for g in data["gradients"]}
    assert grads == pytest.approx(
        {"w0": -0.19661, "x0": 0.39322, "w1": -0.39322, "x1": -0.58984, "w2": 0.19661}, abs=1e-5
    )


def test_every_wire_and_gate_is_in_the_svg_by_its_dot_name():
    data = neuron_data()
    svg = data["views"]["all"]
    assert svg.startswith("<svg")
    titles = set(re.findall(r"<title>([^<]*)</title>", svg))
    for wire in data["wires"]:
        assert wire["dot"] in titles and wire["node"] in titles


def test_staged_code_lines_are_matched_to_gates():
    data = Subject.from_expression(STAGED, {"x": 3.0, "y": -4.0}).describe()
    lines = data["code"]["lines"]
    assert data["code"]["note"] == ""
    for step in data["steps"]:
        assert step["code"], step["label"]
        forward = lines[step["code"][0]]
        assert "# (" in forward
    division = next(s for s in data["steps"] if s["label"] == "/")
    assert any("f = " in lines[k] for k in division["code"])


def test_a_fork_lists_its_branches_and_their_sum():
    data = Subject.from_expression(STAGED, {"x": 3.0, "y": -4.0}).describe()
    x = next(w for w in data["wires"] if w["name"] == "x")
    assert len(x["branches"]) == 3
    total = sum(b["grad"]["num"] for b in x["branches"])
    assert total == pytest.approx(x["grad"]["num"])
    assert x["grad"]["num"] == pytest.approx(cr.grad(_staged, 0)(3.0, -4.0), rel=1e-9)
    assert x["reveal"] == max(b["step"] for b in x["branches"])


def _staged(x, y):
    return (x + cr.sigmoid(y)) / (cr.sigmoid(x) + (x + y) ** 2)


def test_explore_a_function_and_update_its_inputs():
    f = cr.explore(lambda x, y, z: (x + y) * z, x=-2.0, y=5.0, z=-4.0)
    grads = {g["name"]: g["grad"]["num"] for g in f.data["gradients"]}
    assert grads == {"x": -4.0, "y": -4.0, "z": 3.0}
    f.update(z=2.0)
    grads = {g["name"]: g["grad"]["num"] for g in f.data["gradients"]}
    assert grads == {"x": 2.0, "y": 2.0, "z": 3.0}
    assert f.inputs == {"x": -2.0, "y": 5.0, "z": 2.0}
    with pytest.raises(ValueError, match="no input named 'w'"):
        f.update(w=1.0)
    assert f.inputs["z"] == 2.0


def test_save_writes_one_self_contained_file(tmp_path):
    f = cr.explore(lambda x, y, z: (x + y) * z, x=-2.0, y=5.0, z=-4.0)
    path = f.save(tmp_path / "chain.html")
    html = path.read_text(encoding="utf-8")
    assert '<script type="module">' in html and "function mount" in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert page_data(html)["steps"][0]["label"] == "*"


def test_tensors_show_shape_and_heatmap():
    W = np.array([[0.1, 0.5], [-0.3, 0.8]])
    f = cr.explore(lambda W, x: ((W @ x) ** 2).sum(), W=W, x=np.array([0.2, 0.4]))
    w = next(w for w in f.data["wires"] if w["name"] == "W")
    assert w["value"]["shape"] == [2, 2]
    assert w["value"]["heat"]["data"] == [0.1, 0.5, -0.3, 0.8]
    assert w["grad"]["heat"]["data"] == pytest.approx([0.088, 0.176, 0.104, 0.208])
    assert [i["editable"] for i in f.data["inputs"]] == [False, False]


def test_a_network_is_collapsed_by_module_with_state_dict_names():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    X = np.random.default_rng(0).normal(size=(4, 2))
    y = np.array([0, 1, 1, 0])
    f = cr.explore(
        lambda x, labels: nn.functional.cross_entropy(net(x), labels), x=X, labels=y, model=net
    )
    names = {w["name"] for w in f.data["wires"]}
    assert {"0.weight", "0.bias", "2.weight", "loss"} <= names
    assert [m["label"] for m in f.data["modules"]] == ["0: Linear", "1: ReLU", "2: Linear"]
    assert set(f.data["views"]) == {"all", "collapsed", "0", "1", "2"}
    collapsed = f.data["views"]["collapsed"]
    assert "0: Linear" in collapsed and "2: Linear" in collapsed
    assert all(p.name is None for p in net.parameters())  # the model is left as it was
    assert not net[0]._forward_hooks  # the model is left as it was
    assert all(isinstance(p, nn.Parameter) for p in (net[0].weight, net[2].bias))
    assert f.data["code"]["note"] == "" and all(s["code"] for s in f.data["steps"])
    assert "p0_weight" in f.data["code"]["lines"][0]  # staged with the parameters as inputs


def test_explore_refuses_bad_input_clearly():
    with pytest.raises(TypeError, match="must return a chainrule Value"):
        cr.explore(lambda x: 3.0, x=1.0)
    with pytest.raises(ValueError, match="single number"):
        cr.explore(lambda x: x * 2, x=np.ones(3))
    with pytest.raises(ValueError, match="finite"):
        cr.explore(lambda x: x * 2, x=float("nan"))
    with pytest.raises(TypeError, match="bool"):
        cr.explore(lambda x: x * 2, x=True)


# --- the command line ---------------------------------------------------------------------------
def test_cli_explore_writes_the_page(tmp_path, capsys):
    out = tmp_path / "staged.html"
    assert main(["explore", STAGED, "--at", "x=3", "y=-4", "--html", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert len(page_data(out.read_text(encoding="utf-8"))["steps"]) == 7


@pytest.mark.parametrize(
    "argv, message",
    [
        (["explore", "x +* y"], "column 4"),
        (["explore", "foo(x)"], "unknown function"),
        (["explore", "x", "--at", "y=1"], "does not appear"),
        (["explore", "log(x)", "--at", "x=-1"], "positive"),
        (["explore", "x" * 3000], "longer than"),
    ],
)
def test_cli_explore_errors_are_one_line(argv, message, tmp_path, capsys):
    assert main([*argv, "--html", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


# --- the server ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client():
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    from chainrule.explore.server import create_app

    with running_server(create_app(workers=2, limit_s=5.0)) as url:
        with httpx.Client(base_url=url, timeout=30) as c:
            yield c


def test_server_page_and_assets(client):
    page = client.get("/")
    assert (
        page.status_code == 200 and 'import { mount, httpModel } from "./explorer.js"' in page.text
    )
    assert page_data(page.text)["data"]["steps"][0]["label"] == "1/x"
    assert client.get("/explorer.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/explorer.css").status_code == 200


def test_server_recomputes_in_python(client):
    reply = client.post("/api/explore", json={"expression": "(x + y) * z", "inputs": {"x": 1}})
    assert reply.status_code == 200
    body = reply.json()
    assert body["inputs"] == {"x": 1.0, "y": 1.0, "z": 1.0}
    grads = {g["name"]: g["grad"]["num"] for g in body["data"]["gradients"]}
    assert grads == {"x": 1.0, "y": 1.0, "z": 2.0}


@pytest.mark.parametrize(
    "payload, status, message",
    [
        ({"expression": "x +* y"}, 400, "column 4: syntax error"),
        ({"expression": "__import__('os')"}, 400, "unknown function"),
        ({"expression": "x.y"}, 400, "attribute access"),
        ({"expression": "x" * 5000}, 400, "longer than"),
        ({"expression": "log(x)", "inputs": {"x": -1}}, 400, "positive"),
        ({"expression": "x", "inputs": {"x": "3"}}, 400, "must be a number"),
        ({"expression": "x", "inputs": [1]}, 400, "inputs must be an object"),
        ({"expression": ""}, 400, "type an expression"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_server_errors_are_messages_not_tracebacks(client, payload, status, message):
    reply = client.post("/api/explore", json=payload)
    assert reply.status_code == status
    assert message in reply.json()["error"]
    assert "Traceback" not in reply.text


def test_server_refuses_huge_and_malformed_bodies(client):
    reply = client.post("/api/explore", content=b"{" * 100_000)
    assert reply.status_code == 413 and "too large" in reply.json()["error"]
    reply = client.post("/api/explore", content=b"not json")
    assert reply.status_code == 400 and reply.json()["error"] == "the request is not JSON"


def test_server_time_limit(monkeypatch):
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    import time

    from chainrule.explore import server

    app = server.create_app("x * 2", {"x": 1.0}, workers=1, limit_s=0.2, queue_s=0.1)
    slow = server.compute

    def sleepy(*args, **kwargs):
        time.sleep(0.6)
        return slow(*args, **kwargs)

    monkeypatch.setattr(server, "compute", sleepy)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        reply = c.post("/api/explore", json={"expression": "x * 3"})
        assert reply.status_code == 504 and "longer than 0.2 s" in reply.json()["error"]
        busy = c.post("/api/explore", json={"expression": "x * 4"})
        assert busy.status_code == 503 and "busy" in busy.json()["error"]
        time.sleep(0.7)
        monkeypatch.setattr(server, "compute", slow)
        assert c.post("/api/explore", json={"expression": "x * 5"}).status_code == 200


def test_server_survives_a_flood_of_requests():
    """Hundreds of bounded concurrent requests (valid, invalid, oversized) against a real
    uvicorn server: every one gets a JSON answer, none a 500, and the server keeps answering."""
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    import asyncio

    from chainrule.explore.server import create_app

    with running_server(create_app(workers=2, limit_s=5.0, queue_s=5.0)) as url:
        payloads = [
            {"expression": "(x + y) * z", "inputs": {"x": 1, "y": 2, "z": 3}},
            {"expression": "x +* y"},
            {"expression": "nope(x)"},
            {"expression": "x" * 3000},
            {"expression": "x * y", "inputs": {"x": 2, "y": 3}},
        ]

        async def flood() -> list:
            limit = asyncio.Semaphore(24)
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:

                async def one(k: int):
                    async with limit:
                        r = await http.post("/api/explore", json=payloads[k % len(payloads)])
                        return r.status_code, r.json()

                return await asyncio.gather(*(one(k) for k in range(300)))

        replies = asyncio.run(flood())
        assert {status for status, _ in replies} <= {200, 400, 503}
        assert sum(status == 200 for status, _ in replies) >= 100
        assert all(("data" in body) or ("error" in body) for _, body in replies)
        after = httpx.post(f"{url}/api/explore", json={"expression": "x - y"}, timeout=10)
        assert after.status_code == 200


def test_a_circuit_too_large_to_draw_gate_by_gate_says_so():
    data = Subject.from_expression("x" + "+x" * 200, {"x": 1.0}).describe()
    assert "collapsed" in data["note"]
    assert data["gradients"][0]["grad"]["num"] == 201.0


def test_staged_code_highlights_each_backward_block_header():
    data = neuron_data()
    lines = data["code"]["lines"]
    exp = data["steps"][2]
    assert any(lines[k].strip().startswith("# backprop") for k in exp["code"])


def test_cli_serve_refuses_bad_input_in_one_line(capsys):
    pytest.importorskip("uvicorn")
    assert main(["serve", "x +* y"]) == 2
    assert main(["serve", "x * y", "--at", "z=1"]) == 2
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "column 4" in err and "'z'" in err and "--port" in err


def test_cli_serve_warns_when_shared(monkeypatch, capsys):
    import socket

    uvicorn = pytest.importorskip("uvicorn")
    calls = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: calls.append(sockets))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["serve", "--host", "0.0.0.0", "--port", str(port)]) == 0
    assert len(calls) == 1 and calls[0][0].fileno() == -1  # bound, handed over, closed after
    captured = capsys.readouterr()
    assert "warning: listening on 0.0.0.0" in captured.err
    assert f"http://0.0.0.0:{port}/" in captured.out
    assert main(["serve", "--port", str(port)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_cli_serve_busy_port_is_one_line(capsys):
    import socket

    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err


def test_cli_explore_with_vectors_matches_the_notes(tmp_path):
    out = tmp_path / "matrix.html"
    argv = ["explore", "sum((W @ x)**2)", "--at", "W=[[0.1,0.5],[-0.3,0.8]]", "x=[0.2,0.4]"]
    assert main([*argv, "--html", str(out)]) == 0
    data = page_data(out.read_text(encoding="utf-8"))
    grads = {g["name"]: g["grad"]["heat"]["data"] for g in data["gradients"]}
    assert grads["W"] == pytest.approx([0.088, 0.176, 0.104, 0.208])
    assert grads["x"] == pytest.approx([-0.112, 0.636])
    assert data["code"]["note"] == "" and all(s["code"] for s in data["steps"])


@pytest.mark.parametrize(
    "value, message",
    [
        ([[1, 2], [3]], "rectangular"),
        ([0.0] * 5000, "too large"),
        ({"a": 1}, "must be a number"),
    ],
)
def test_server_array_inputs_are_checked(client, value, message):
    reply = client.post("/api/explore", json={"expression": "sum(W)", "inputs": {"W": value}})
    assert reply.status_code == 400 and message in reply.json()["error"]


def test_server_array_inputs_give_the_notes_numbers(client):
    inputs = {"W": [[0.1, 0.5], [-0.3, 0.8]], "x": [0.2, 0.4]}
    body = client.post(
        "/api/explore", json={"expression": "sum((W @ x)**2)", "inputs": inputs}
    ).json()
    assert body["inputs"] == inputs
    grads = {g["name"]: g["grad"]["heat"]["data"] for g in body["data"]["gradients"]}
    assert grads["W"] == pytest.approx([0.088, 0.176, 0.104, 0.208])


def test_update_changes_an_array_of_the_same_shape():
    W = np.array([[0.1, 0.5], [-0.3, 0.8]])
    f = cr.explore(lambda W, x: ((W @ x) ** 2).sum(), W=W, x=np.array([0.2, 0.4]))
    f.update(W=[[1.0, 0.0], [0.0, 1.0]])
    grads = {g["name"]: g["grad"]["heat"]["data"] for g in f.data["gradients"]}
    assert grads["W"] == pytest.approx([0.08, 0.16, 0.16, 0.32])
    with pytest.raises(ValueError, match=r"keep its shape \(2, 2\)"):
        f.update(W=[1.0, 2.0])
    with pytest.raises(ValueError, match="keep its shape"):
        f.update(W=3.0)


def test_without_anywidget_jupyter_shows_the_static_page(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "anywidget", None)  # import anywidget raises ImportError
    monkeypatch.delitem(sys.modules, "chainrule.explore.widget", raising=False)
    f = cr.explore(lambda x, y: x * y, x=2.0, y=3.0)
    bundle = f._repr_mimebundle_()
    assert "pip install 'chainrule[explore]'" in bundle["text/html"]
    assert bundle["text/html"].count("<iframe srcdoc=") == 1 and "&lt;script" in bundle["text/html"]
