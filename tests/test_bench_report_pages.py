"""The report's aggregate figures and per-env pages, opened in a real headless Chromium."""

import shutil
import tempfile
from pathlib import Path

import pytest
from bench_helpers import make_small_store
from test_bench_report import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS

from gambit_gym.bench.labels import config_label
from gambit_gym.bench.leaderboard import Leaderboard
from gambit_gym.bench.report import write_report
from gambit_gym.bench.report_pages import env_page_name


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    store = make_small_store(root / "small.sqlite")
    return write_report(store, root / "site"), Leaderboard.from_store(store, reps=200)


def test_pages_and_figures_are_written(site):
    index, board = site
    out = index.parent
    for name in ("intervals", "improvement", "profiles"):
        for fmt in ("png", "svg"):
            assert (out / "aggregate" / f"{name}.{fmt}").stat().st_size > 1000
    assert len(board.columns) == 6
    for col in board.columns:
        page = out / "envs" / env_page_name(col)
        assert page.is_file() and page.with_suffix(".png").is_file()
        assert page.resolve().parent == (out / "envs").resolve()
    text = index.read_text()
    assert "<script" not in text and 'src="aggregate/intervals.png"' in text


@pytest.fixture
def driver():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed "
                    "(apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="gambit-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _loaded_width(driver, img):
    return driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                                 img)


def test_aggregates_and_env_pages_in_headless_chromium(site, driver):
    from selenium.webdriver.common.by import By

    index, board = site
    driver.get(Path(index).resolve().as_uri())
    aggregates = driver.find_element(By.CSS_SELECTOR, "table.aggregates")
    rows = aggregates.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == \
        [r.agent for r in board.rows]
    assert rows[0].find_elements(By.TAG_NAME, "td")[0].text == "1"  # Oracle, alone
    matrix = driver.find_element(By.CSS_SELECTOR, "table.improvement")
    assert len(matrix.find_elements(By.CSS_SELECTOR, "tbody tr")) == len(board.rows)
    assert driver.find_element(By.CSS_SELECTOR, "table.provenance").text.count("sha256") >= 1
    figures = {img.get_attribute("alt"): img for img in driver.find_elements(By.TAG_NAME, "img")}
    for alt in ("aggregate scores with intervals per agent",
                "probability of improvement heatmap", "performance profiles"):
        assert _loaded_width(driver, figures[alt]) > 300, alt

    links = driver.find_elements(By.CSS_SELECTOR, "ul.envs a")
    assert [a.text for a in links] == [config_label(c) for c in board.columns]
    targets = [a.get_attribute("href") for a in links]
    for col, href in zip(board.columns, targets):
        driver.get(href)
        assert driver.find_element(By.TAG_NAME, "h1").text == config_label(col)
        assert col in driver.find_element(By.TAG_NAME, "code").text
        img = driver.find_element(By.TAG_NAME, "img")
        assert _loaded_width(driver, img) > 300, col
        body = driver.find_elements(By.CSS_SELECTOR, "table.env tbody tr")
        agents = [r.find_elements(By.TAG_NAME, "td")[1].text for r in body]
        assert sorted(agents) == sorted(r.agent for r in board.rows if col in r.cells)
        assert {"Random", "Oracle"} <= set(agents)
    driver.find_element(By.LINK_TEXT, "← report").click()
    assert "gambit-gym report" in driver.title
