"""The Dagster UI as a person uses it, in headless Chromium against ``dagster dev`` on the sample source.

The server runs on a throwaway instance and data root; screenshots go to ``test-artifacts/ui/``
(the README's pictures are copies of them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from e6_assets_tests.dagster_dev import CHROMIUM, CHROMIUM_ARGS, REPO, UiServer, dagster_dev

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (Debian: apt-get install chromium)"
)

if CHROMIUM.exists():
    from playwright.sync_api import Browser, Page, expect, sync_playwright

SHARD = "0042"
PER_SHARD_ASSETS = ["raw_captions", "rearranged_captions", "caption_tars"]
ALL_ASSETS = [*PER_SHARD_ASSETS, "meta_cap"]
ASSET_GROUPS = {
    "captions": ["caption_source", *ALL_ASSETS],
    "merge": ["id_universe", "meta_lat_v2_fragments", "meta_lat_v2"],
}
GROUP_PAGE = "/locations/e6_assets.definitions/asset-groups/{group}"


def expect_group_lists(page: Page, url: str, group: str) -> None:
    """The group's List tab names every asset of the group (the graph may draw small names as shapes)."""
    page.goto(url + GROUP_PAGE.format(group=group))
    page.get_by_role("tab", name="List").or_(page.get_by_text("List", exact=True)).first.click()
    for asset in ASSET_GROUPS[group]:
        expect(page.get_by_text(asset, exact=True).first).to_be_visible()


ARTIFACTS = REPO / "test-artifacts" / "ui"
RUN_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Iterator[UiServer]:
    with dagster_dev(tmp_path_factory.mktemp("ui"), sample_dir) as server:
        print(f"dagster dev at {server.url}, log: {server.log}")
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def metadata_value(page: Page, label: str) -> str:
    """The value shown next to ``label`` in the page's metadata table."""
    cell = page.locator("td", has_text=re.compile(f"^{label}$")).first
    expect(cell).to_be_visible()
    return cell.locator("xpath=following-sibling::td[1]").inner_text().strip()


def test_asset_graph_shows_every_asset(ui: UiServer, page: Page) -> None:
    for group in ASSET_GROUPS:
        expect_group_lists(page, ui.url, group)
        screenshot(page, f"asset-list-{group}-before-runs")


def test_one_shard_materialized_from_the_ui_shows_its_checks_and_numbers(ui: UiServer, page: Page) -> None:
    # The graph, narrowed to caption_tars and what it needs; Materialize; one partition; launch.
    page.goto(f"{ui.url}/asset-groups")
    page.locator(".CodeMirror").first.click()
    page.keyboard.type("+key:caption_tars")
    page.keyboard.press("Enter")
    page.locator("button", has_text="Materialize").first.click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    expect(dialog).to_contain_text("materialize 3 assets")
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_placeholder("Filter partitions").fill(SHARD)
    page.locator("span", has_text=SHARD).filter(visible=True).first.click()
    page.keyboard.press("Escape")  # closes the partition list, not the dialog
    expect(dialog).to_contain_text("1 partition")
    dialog.locator("button", has_text="Launch 1 run").click()

    # The toast links to the run; the run page says when it is done.
    toast = page.get_by_text("Launched run").locator("xpath=ancestor::*[.//*[text()='View']][1]")
    toast.get_by_text("View", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]+"))
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    screenshot(page, "run")

    # The shard's page: its numbers, the same as the files on disk say.
    rearranged = pq.read_table(ui.data_dir / "rearranged" / f"{SHARD}.parquet")
    non_empty = pc.sum(pc.not_equal(rearranged.column("caption"), "")).as_py()
    page.goto(f"{ui.url}/assets/caption_tars?view=partitions&partition={SHARD}")
    expect(page.get_by_text("Materialized", exact=True).first).to_be_visible()
    expect(page.get_by_text(str(ui.data_dir / "captions" / f"{SHARD}.tar"))).to_be_visible()
    expect(page.get_by_text(str(ui.data_dir / "captions" / f"{SHARD}.json"))).to_be_visible()
    assert metadata_value(page, "members") == str(non_empty)
    assert metadata_value(page, "tar_bytes") == str(
        (ui.data_dir / "captions" / f"{SHARD}.tar").stat().st_size
    )
    screenshot(page, "shard-metadata")

    # The shard's check results: the blocking tar check passed for this partition, with its numbers.
    page.goto(f"{ui.url}/assets/caption_tars?view=checks&checkDetail=tar_matches_captions")
    expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
    expect(page.get_by_text(SHARD, exact=True).first).to_be_visible()
    assert metadata_value(page, "non_empty_captions") == str(non_empty)
    assert metadata_value(page, "problems") == "none"
    screenshot(page, "shard-checks")

    page.goto(f"{ui.url}/assets/rearranged_captions?view=checks&checkDetail=caption_counts")
    expect(page.get_by_text(SHARD, exact=True).first).to_be_visible()
    assert metadata_value(page, "rows") == str(rearranged.num_rows)
    assert metadata_value(page, "empty") == str(rearranged.num_rows - non_empty)
    screenshot(page, "shard-caption-counts")

    # Back on the group, every asset is listed; the graph shows the materialized shard's status.
    expect_group_lists(page, ui.url, "captions")
    page.goto(ui.url + GROUP_PAGE.format(group="captions"))
    expect(page.get_by_text("Loading...")).to_have_count(0, timeout=60_000)
    page.get_by_text("Hide navigation").click()  # more room for the graph in the picture
    page.locator("button", has=page.get_by_label("zoom_in")).first.click()
    page.wait_for_timeout(1000)  # the zoom animates
    screenshot(page, "asset-graph")
