"""Runaway scripts against a live server, and what the sandbox costs a normal script.

Run:  .venv/bin/python bench/runaway.py [--database-url URL] [--calls N] [--skip-liveness]

Part 1, liveness. The web app is served as in bench/run.py (werkzeug's threaded server in a
background thread, a fresh database of its own) with one process per runaway script below. For
each, one client starts an instance through the JSON API while a second client calls
`GET /health` one call after the other until the start has returned. Printed per runaway: how
long the start took, the instance's status and error, and the /health latencies meanwhile
(median, max, count), after an idle /health baseline.

Part 2, overhead. Microseconds per call (median of N, default 2000) of typical work, once in the
sandbox (RestrictedPython, guards, time and memory checks) and once as plain `exec`/`eval` with
the full builtins, on the same data: a data script like the processes' own, the annual
evaluation's ranking script on 40 units, a gateway condition, and a timer expression; plus a
loop of 1000 guarded operations, the worst case for the per-operation guards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from run import fresh_database, serve  # noqa: E402  (bench/run.py)

from engine import Engine  # noqa: E402
from engine.sandbox import RestrictedScriptEnvironment  # noqa: E402

USER, PASSWORD, ROLE = "bench", "bench-password", "bench_team"
RUNAWAYS = {
    "runaway_sum": "total = sum(range(3*10**8))",
    "runaway_text": "text = 'x' * 2*10**9",
    "runaway_power": "n = 2 ** 10**9",
    "runaway_helper": "due = workdays_after(10**7)",
    "runaway_loop": "n = 0\nwhile True:\n    n += 1",
    "runaway_memory": "kept = []\nwhile True:\n    kept.append('x' * 999000 + str(len(kept)))",
}

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'id="d" targetNamespace="http://bpmn.io/schema/bpmn">'
)


def script_process(key: str, script: str) -> str:
    """start → script task → end, in the lane `bench_team`."""
    escaped = script.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    refs = "".join(f"<bpmn:flowNodeRef>{r}</bpmn:flowNodeRef>" for r in ("s", "run", "e"))
    return (
        f'{HEADER}<bpmn:process id="{key}" name="{key}" isExecutable="true">'
        f'<bpmn:laneSet id="ls"><bpmn:lane id="l" name="{ROLE}">{refs}</bpmn:lane></bpmn:laneSet>'
        '<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="run"/>'
        f'<bpmn:scriptTask id="run" name="失控脚本"><bpmn:script>{escaped}</bpmn:script>'
        '</bpmn:scriptTask><bpmn:sequenceFlow id="f2" sourceRef="run" targetRef="e"/>'
        '<bpmn:endEvent id="e"/></bpmn:process></bpmn:definitions>'
    )


def _ms(seconds: list[float]) -> str:
    if not seconds:
        return "—"
    return (
        f"median {statistics.median(seconds) * 1000:7.1f} ms, "
        f"max {max(seconds) * 1000:7.1f} ms, n={len(seconds)}"
    )


def _timed_health(client: httpx.Client) -> float:
    began = time.perf_counter()
    response = client.get("/health")
    response.raise_for_status()
    return time.perf_counter() - began


def liveness(url: str | None) -> None:
    with fresh_database(url) as fresh, tempfile.TemporaryDirectory() as bundle:
        engine = Engine(fresh)
        engine.create_schema()
        engine.add_user(USER, PASSWORD, roles=[ROLE])
        for key, script in RUNAWAYS.items():
            Path(bundle, f"{key}.bpmn").write_text(script_process(key, script), encoding="utf-8")
        engine.deploy(bundle)
        with serve(engine) as base, httpx.Client(base_url=base, timeout=600) as health:
            login = {"username": USER, "password": PASSWORD}
            token = health.post("/api/v1/auth/token", json=login).json()["token"]
            idle = [_timed_health(health) for _ in range(100)]
            print(f"GET /health idle:           {_ms(idle)}")
            for key, script in RUNAWAYS.items():
                _one_runaway(base, token, health, key, script)
        engine.close()


def _one_runaway(base: str, token: str, health: httpx.Client, key: str, script: str) -> None:
    outcome: dict[str, Any] = {}

    def start() -> None:
        began = time.perf_counter()
        with httpx.Client(base_url=base, timeout=600) as client:
            response = client.post(
                "/api/v1/instances",
                json={"process": key},
                headers={"Authorization": f"Bearer {token}"},
            )
        outcome["seconds"] = time.perf_counter() - began
        outcome["body"] = response.json()

    runner = threading.Thread(target=start)
    runner.start()
    during = []
    while runner.is_alive():
        during.append(_timed_health(health))
    runner.join()
    body = outcome["body"]
    print(f"\n{key}: {script.splitlines()[-1].strip()}")
    print(f"  start returned after {outcome['seconds'] * 1000:.0f} ms: {body.get('status')}")
    print(f"  error: {body.get('error')}")
    print(f"  GET /health meanwhile:      {_ms(during)}")


# ------------------------------------------------------------------ overhead
DATA_SCRIPT = """
order = {'items': [3, 4]}
order['items'].append(5)
total = 0
for n in order['items']:
    total += n
counts = {'a': 1}
counts['a'] += 2
doubled = [n * 2 for n in order['items'] if n > 3]
average = round(sum(order['items']) / len(order['items']), 2)
title = 'ab'.upper() + f'-{total}'
summary = f'{title}：共 {len(doubled)} 项，平均 {average:.2f}'
due = workdays_after(3)
"""

RANKING_SCRIPT = """
default_measures = {'优秀': '表扬奖励', '较差': '挂牌整治'}
results = sorted(graded_scores, key=lambda r: -r['total_score'])
results = [dict(row, rank=index + 1, measure=default_measures.get(row['grade'], '无'), remark='')
           for index, row in enumerate(results)]
grade_counts = {grade: len([r for r in results if r['grade'] == grade])
                for grade in ('优秀', '良好', '一般', '较差')}
del default_measures
"""

LOOP_SCRIPT = """
total = 0
for i in range(1000):
    total += i * 2 + 1
"""

SCRIPTS = {
    "data script": DATA_SCRIPT,
    "ranking, 40 units": RANKING_SCRIPT,
    "loop of 1000 guarded ops": LOOP_SCRIPT,
}
EXPRESSIONS = {
    "gateway condition": "decision == 'approve' and len(items) > 0",
    "timer expression": "max(days_after(0, next_report_due), workdays_after(1))",
}


def _helpers() -> dict[str, Callable[..., str]]:
    def workdays_after(n: int, start: str | None = None) -> str:
        return f"2027-01-0{1 + int(n) % 9}T09:00:00+08:00"

    def days_after(n: float, start: str | None = None) -> str:
        return "2027-01-01T09:00:00+08:00"

    return {"workdays_after": workdays_after, "days_after": days_after}


def _data() -> dict[str, Any]:
    grades = ["优秀", "良好", "一般", "较差"]
    scores = [
        {"unit": f"单位{i}", "total_score": 60 + i % 40, "grade": grades[i % 4]} for i in range(40)
    ]
    return {
        "graded_scores": scores,
        "decision": "approve",
        "items": [1, 2, 3],
        "next_report_due": "2027-01-01T09:00:00+08:00",
    }


def _median_us(run: Callable[[], Any], calls: int) -> float:
    samples = []
    for _ in range(calls):
        began = time.perf_counter()
        run()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1e6


def overhead(calls: int, environment: Any = None) -> list[tuple[str, float, float]]:
    """(case, plain µs, sandbox µs) per case; `environment` defaults to the sandbox. Each call
    gets a shallow copy of the same data, as a script task gets its task's data."""
    env = environment or RestrictedScriptEnvironment(_helpers())
    plain_globals = {"__builtins__": __builtins__, **_helpers()}
    data = _data()
    rows = []
    for name, script in SCRIPTS.items():
        code = compile(script, "<plain>", "exec")
        plain = _median_us(lambda c=code: exec(c, {**plain_globals, **data}), calls)
        sandbox = _median_us(lambda s=script: env.execute(s, dict(data)), calls)
        rows.append((name, plain, sandbox))
    for name, expression in EXPRESSIONS.items():
        code = compile(expression, "<plain>", "eval")
        plain = _median_us(lambda c=code: eval(c, {**plain_globals, **data}), calls)
        sandbox = _median_us(lambda e=expression: env.evaluate(e, dict(data)), calls)
        rows.append((name, plain, sandbox))
    return rows


def print_overhead(calls: int) -> None:
    print(f"\nSandbox cost per call, median of {calls} (µs):")
    print(f"  {'case':28} {'plain exec':>10} {'sandbox':>10}")
    for name, plain, sandbox in overhead(calls):
        print(f"  {name:28} {plain:10.1f} {sandbox:10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--skip-liveness", action="store_true")
    args = parser.parse_args()
    if not args.skip_liveness:
        liveness(args.database_url)
    print_overhead(args.calls)


if __name__ == "__main__":
    main()
