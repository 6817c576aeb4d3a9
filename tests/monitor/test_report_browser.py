"""The report in a real headless Chromium (Debian's `chromium`, `make .stamps/chromium`).

The page is rendered from hand-made data; a probe script appended to a copy of it waits for
the load event, then records what the browser shows (the page's text as laid out, where
the verdict and the charts are, whether every embedded PNG decoded) and clicks the metric
table's headers, recording the order of the rows after each click. `--dump-dom` returns
the page with the probe's findings in it.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from scoring.core.errors import EnvironmentProblem
from scoring.monitor.report_page import render_report
from scoring.monitor.screenshot import chromium_binary, dump_dom, screenshot
from tests.monitor.report_data import rich_data

PROBE = """
<script>
window.addEventListener("load", function () {
  function column(name) {
    var headers = Array.prototype.map.call(
      document.querySelectorAll("#metrics thead th"), function (th) { return th.textContent; });
    var i = headers.indexOf(name);
    return Array.prototype.map.call(document.querySelectorAll("#metrics tbody tr"),
      function (tr) { return tr.cells[i].textContent; });
  }
  function header(name) {
    return document.querySelector('#metrics th[data-column="' + name + '"]');
  }
  var images = Array.prototype.slice.call(document.images);
  var found = {
    text: document.body.innerText.slice(0, 2000),
    after_title: document.querySelector("h1").nextElementSibling.id,
    verdict_top: document.getElementById("verdict").getBoundingClientRect().top,
    verdict_height: document.getElementById("verdict").getBoundingClientRect().height,
    first_chart_top: document.getElementById("chart-psi-trend").getBoundingClientRect().top,
    images: images.length,
    decoded: images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    features_before: column("feature")
  };
  header("value").click();
  found.values_ascending = column("value");
  found.sorted_ascending = document.getElementById("metrics").getAttribute("data-sorted");
  header("value").click();
  found.values_descending = column("value");
  found.sorted_descending = document.getElementById("metrics").getAttribute("data-sorted");
  header("feature").click();
  found.features_ascending = column("feature");
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>
"""


@pytest.fixture(scope="module")
def browser() -> str:
    try:
        return chromium_binary()
    except EnvironmentProblem as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    page = tmp_path_factory.mktemp("report") / "report_2026-03-02.html"
    page.write_text(render_report(rich_data()), encoding="utf-8")
    return page


@pytest.fixture(scope="module")
def seen(browser: str, page_file: Path) -> dict[str, Any]:
    probed = page_file.with_name("probed.html")
    probed.write_text(page_file.read_text().replace("</body>", PROBE + "</body>"))
    dom = dump_dom(probed)
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found is not None, f"the probe did not run; the DOM ends with {dom[-300:]!r}"
    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return result


def test_the_verdict_paragraph_is_the_first_thing_under_the_title(seen):
    assert seen["after_title"] == "verdict"
    lines = [line for line in seen["text"].splitlines() if line.strip()]
    assert lines[0] == "Scoring monitor: churn, m v1 on 2026-03-02"
    assert lines[1].startswith("Verdict (alert): On 2026-03-02, m v1 scored 1,040 rows")
    assert seen["verdict_height"] > 0
    assert seen["verdict_top"] < seen["first_chart_top"]


def test_the_alerts_name_the_drifting_feature_the_quality_metric_and_the_failed_run(seen):
    lines = [line.strip() for line in seen["text"].splitlines() if line.strip()]
    alerts = lines[2:7]
    assert alerts == [
        "ALERT drift: amount_sum_7d (psi 0.8 vs baseline)",
        "ALERT quality: estimated roc_auc (0.72 (baseline 0.81) for as-of date 2026-03-02)",
        "ALERT run: score failed (score-1: ModelError: no <champion>)",
        "WARN drift: segment (psi 0.15 vs baseline)",
        "WARN quarantine: customers (reasons bad_email; 4.0% of the rows delivered)",
    ]


def test_every_chart_is_an_image_the_browser_decoded(seen):
    # psi trend, output trend, volume, quality, output, psi bars, one distribution,
    # calibration
    assert seen["images"] == 8
    assert seen["decoded"] == 8


def test_clicking_a_header_sorts_the_metric_table_and_a_second_click_reverses_it(seen):
    # Worst status first as rendered: amount_sum_7d (alert), the estimated AUC (alert, no
    # feature), segment (warn), tenure_days (ok), the realized AUC of 02-28 (ok).
    assert seen["features_before"] == ["amount_sum_7d", "", "segment", "tenure_days", ""]
    assert seen["values_ascending"] == ["0.01", "0.15", "0.72", "0.77", "0.8"]
    assert seen["sorted_ascending"] == "value:ascending"
    assert seen["values_descending"] == ["0.8", "0.77", "0.72", "0.15", "0.01"]
    assert seen["sorted_descending"] == "value:descending"
    assert seen["features_ascending"] == ["", "", "amount_sum_7d", "segment", "tenure_days"]


def test_the_screenshot_is_a_small_png_of_the_pages_top_with_the_alert_verdict(
    browser, page_file, tmp_path
):
    from PIL import Image

    target = screenshot(page_file, tmp_path / "report.png", width=1000, height=800)
    assert target.stat().st_size < 300 * 1024
    with Image.open(target) as image:
        assert image.size == (1000, 800)
        colours = {c for _, c in image.convert("RGB").getcolors(maxcolors=1 << 16) or []}
    # the verdict box's alert background (#fbeaea) and its red border (#c0392b)
    assert (0xFB, 0xEA, 0xEA) in colours
    assert (0xC0, 0x39, 0x2B) in colours
