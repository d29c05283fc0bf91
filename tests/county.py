"""The demo county (processes/county.yaml) with every process deployed, and API sign-in helpers."""

from pathlib import Path

import yaml
from flask.testing import FlaskClient

from engine import Engine

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = ROOT / "processes"


# A 督办事项 led by 城关镇 (cgz), whose liaison is `town_liaison`: the draft form as staff fills it.
TOWN_ITEM = {
    "title": "城关镇人居环境整治",
    "source": "主任会议决定事项",
    "content": "年底前完成12个村的垃圾分类设施建设。",
    "lead_unit": "cgz",
    "deadline": "2027-03-31",
    "report_cycle_days": 7,
}


def load_county(engine: Engine, password: str = "demo") -> None:
    county = yaml.safe_load((PROCESSES / "county.yaml").read_text(encoding="utf-8"))
    engine.load_directory(county, password)
    engine.deploy(PROCESSES, by="admin")


def token(client: FlaskClient, username: str, password: str = "demo") -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['token']}"}
