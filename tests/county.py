"""The demo county (processes/county.yaml) with every process deployed, and API sign-in helpers."""

from pathlib import Path

import yaml
from flask.testing import FlaskClient

from engine import Engine

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = ROOT / "processes"


def load_county(engine: Engine, password: str = "demo") -> None:
    county = yaml.safe_load((PROCESSES / "county.yaml").read_text(encoding="utf-8"))
    engine.load_directory(county, password)
    engine.deploy(PROCESSES, by="admin")


def token(client: FlaskClient, username: str, password: str = "demo") -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['token']}"}
