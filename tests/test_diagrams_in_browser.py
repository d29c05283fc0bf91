"""Every BPMN file under processes/ opens in bpmn-js (Debian's Chromium, driven by Playwright)
without import errors or warnings, with every process element drawn."""

from pathlib import Path

import pytest
from lxml import etree
from playwright.sync_api import Browser

from tests.browser import ROOT

FILES = sorted((ROOT / "processes").rglob("*.bpmn"))
VIEWER = ROOT / "node_modules" / "bpmn-js" / "dist" / "bpmn-viewer.production.min.js"
DI = "{http://www.omg.org/spec/BPMN/20100524/DI}"

IMPORT = """async (xml) => {
  const viewer = new BpmnJS({ container: '#canvas' });
  try {
    const result = await viewer.importXML(xml);
    const drawn = viewer.get('elementRegistry').getAll().map(e => e.id);
    return { warnings: result.warnings.map(w => w.message), drawn, error: null };
  } catch (err) {
    return { warnings: [], drawn: [], error: String(err.message || err) };
  }
}"""


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_bpmn_js_draws_the_whole_diagram(browser: Browser, path: Path) -> None:
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    page.set_content(
        '<!doctype html><meta charset="utf-8"><div id="canvas" '
        'style="width:1600px;height:900px"></div>'
    )
    page.add_script_tag(path=str(VIEWER))
    result = page.evaluate(IMPORT, path.read_text(encoding="utf-8"))
    page.close()
    assert result["error"] is None, f"{path.name}: {result['error']}"
    assert result["warnings"] == [], f"{path.name}: {result['warnings']}"
    root = etree.parse(str(path)).getroot()
    in_di = {e.get("bpmnElement") for e in root.iter(f"{DI}BPMNShape", f"{DI}BPMNEdge")}
    assert in_di, f"{path.name} has no diagram information"
    assert in_di <= set(result["drawn"]), f"{path.name}: not drawn {in_di - set(result['drawn'])}"
