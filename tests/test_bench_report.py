"""The HTML report opens from disk in a real headless Chromium with its tables and images."""

import shutil
import tempfile
from pathlib import Path

import pytest
from bench_helpers import make_small_store

from gambit_gym.bench.report import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    store = make_small_store(root / "small.sqlite")
    return write_report(store, root / "site")


def test_report_files(report):
    site = report.parent
    for name in ("index.html", "leaderboard.md", "leaderboard.csv", "leaderboard.json",
                 "figures/one_d.png", "figures/one_d.svg", "figures/scale_arms.png"):
        assert (site / name).is_file(), name
    text = report.read_text()
    assert "<script" not in text and "http://" not in text and "https://" not in text
    assert 'src="figures/one_d.png"' in text


def test_report_in_headless_chromium(report):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed "
                    "(apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="gambit-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(Path(report).resolve().as_uri())
        assert "gambit-gym report" in driver.title
        tables = driver.find_elements(By.CSS_SELECTOR, "table.leaderboard")
        assert len(tables) == 3  # overall + one per suite
        header = [th.text for th in tables[0].find_elements(By.TAG_NAME, "th")]
        assert header[:3] == ["Rank", "Agent", "Score"]
        body_rows = tables[0].find_elements(By.CSS_SELECTOR, "tbody tr")
        agents = {row.find_elements(By.TAG_NAME, "td")[1].text for row in body_rows}
        assert agents == {"Random", "Oracle", "StdTS", "poGAMBITTS"}
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) == 5  # two suite figures, three aggregate figures
        for img in images:
            width = driver.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth", img)
            assert width and width > 100, img.get_attribute("src")
        assert driver.find_element(By.ID, "metadata").text == "Run metadata"
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
