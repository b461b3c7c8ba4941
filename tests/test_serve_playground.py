"""The playground at `/` in a real headless Chromium (Debian's `chromium`, driven by playwright; no browser
download): load the page, change a param and see the preview change, open the share link and get the same
content hash, download exports and load them with the project's importers, animated sprites, clickable
dialogue, a learned generator's latent blend slider. Screenshots go to out/playground/ (CONJURE_SCREENSHOTS
overrides). `make test` installs chromium (apt-get, as root); where it cannot be installed the test is skipped
with the reason, except under CI (CI=true), where a missing browser is a failure."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

import engine
from engine.packs import record_hash

from .conftest import ROOT

SHOTS = Path(os.environ.get("CONJURE_SCREENSHOTS", ROOT / "out" / "playground"))
CHROMIUM_PATHS = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")


def _chromium() -> str | None:
    for p in (os.environ.get("CONJURE_CHROMIUM"), *CHROMIUM_PATHS, shutil.which("chromium")):
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def _skip_or_fail(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser test: `make test` installs chromium as root)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("playwright is not installed (pip install -e '.[test]')")
    exe = _chromium()
    if exe is None:
        _skip_or_fail("no chromium executable (apt-get install chromium; `make test` does it as root)")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=exe, headless=True,
                               args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
    except Exception as e:
        pw.stop()
        _skip_or_fail(f"chromium at {exe} does not start: {str(e).splitlines()[0]}")
    yield b
    b.close()
    pw.stop()


@pytest.fixture(scope="module")
def server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    import urllib.request

    for _ in range(600):
        if proc.poll() is not None:
            pytest.fail(f"conjure serve exited: {proc.stderr.read().decode()[-800:]}")
        try:
            with urllib.request.urlopen(url + "api/health", timeout=2):
                break
        except OSError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode()


def _settled(page, timeout=60_000):
    page.wait_for_function("document.body.dataset.hash && !document.body.dataset.busy", timeout=timeout)
    return page.evaluate("document.body.dataset.hash")


def _next(page, old, timeout=60_000):
    page.wait_for_function("h => document.body.dataset.hash && document.body.dataset.hash !== h && "
                           "!document.body.dataset.busy", arg=old, timeout=timeout)
    return page.evaluate("document.body.dataset.hash")


def _shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_playground_in_chromium(browser, server, eng, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page_errors = []
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.goto(server)
    first = _settled(page)
    assert page.input_value("[data-testid=generator]") == "dungeon"
    # a form from the schema: one field per param, with the schema's bounds
    assert page.get_attribute("[data-testid=param-rooms]", "max") == "64"
    canvas = page.locator("[data-testid=level-canvas]")
    before = canvas.evaluate("c => c.toDataURL()")
    _shot(page, "playground-level.png")

    # change a param: new content, new preview
    page.fill("[data-testid=param-rooms]", "14")
    second = _next(page, first)
    assert canvas.evaluate("c => c.toDataURL()") != before
    defaults = {p.name: p.default for p in eng.generator("dungeon").params}
    want = eng.generate("level", "dungeon", 7, {**defaults, "rooms": 14})
    assert second == record_hash(engine.serialize.dumps(want)).hex()

    # the share link reproduces the same content in a fresh page
    link = page.input_value("[data-testid=share]")
    assert "generator=dungeon" in link and "version=" in link and "seed=7" in link
    other = browser.new_page()
    other.goto(link)
    assert _settled(other) == second
    assert other.input_value("[data-testid=param-rooms]") == "14"
    other.close()

    # downloads, loaded back with the project's importers
    with page.expect_download() as dl:
        page.click("[data-testid=download-json]")
    path = tmp_path / "level.json"
    dl.value.save_as(path)
    loaded = eng.load(path)
    assert record_hash(engine.serialize.dumps(loaded)).hex() == second
    with page.expect_download() as dl:
        page.click("[data-testid=download-tmj]")
    zpath = tmp_path / dl.value.suggested_filename
    dl.value.save_as(zpath)
    assert zpath.name.endswith(".tmj.zip")
    zipfile.ZipFile(zpath).extractall(tmp_path / "tmj")
    tmj = eng.load(next((tmp_path / "tmj").glob("*.tmj")))
    assert (tmj.tiles == want.tiles).all() and [e.kind for e in tmj.entities] == [e.kind for e in want.entities]
    _shot(page, "playground-level-changed.png")

    # tile art: the themed PNG of the same request, drawn by the server
    page.select_option("[data-testid=look]", "kenney")
    page.wait_for_function("() => { const i = document.querySelector('[data-testid=themed]'); "
                           "return i && i.complete && i.naturalWidth > 0; }")
    assert not page.is_visible("[data-testid=level-canvas]")
    _shot(page, "playground-level-themed.png")
    page.select_option("[data-testid=look]", "")

    # reroll gives another seed and other content
    page.click("[data-testid=reroll]")
    third = _next(page, second)
    assert page.input_value("[data-testid=seed]") != "7"

    # characters: an animated sprite
    page.select_option("[data-testid=generator]", "classic-character")
    fourth = _next(page, third)
    sprite = page.locator("[data-testid=sprite]").first
    page.wait_for_function("() => +document.querySelector('[data-testid=sprite]').dataset.frame >= 3")
    assert sprite.get_attribute("data-frame-name").startswith("walk")
    # with the level made earlier as context: a cast for its spawns
    page.check("#context-items input[data-slot=level]")
    fifth = _next(page, fourth)
    assert page.locator("[data-testid=sprite]").count() > 1
    _shot(page, "playground-cast.png")
    link = page.input_value("[data-testid=share]")  # a link with context: the level's hash travels with it
    assert "context=" in link
    other = browser.new_page()
    other.goto(link)
    assert _settled(other) == fifth
    other.close()

    # stories: a clickable dialogue
    page.select_option("[data-testid=generator]", "grammar-story")
    _next(page, fifth)
    dialogue = page.locator("[data-testid=dialogue]")
    start = dialogue.get_attribute("data-node")
    button = dialogue.locator("button").first
    target = button.get_attribute("data-target")
    button.click()
    assert dialogue.get_attribute("data-node") == target != start
    _shot(page, "playground-story.png")
    assert not page_errors, page_errors
    page.close()


def test_learned_generator_blend_slider(browser, server, eng):
    """dungeon-vae's controls and its latent blend between two seeds; the result is the engine's own."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server + "?generator=dungeon-vae&seed=3")
    first = _settled(page, timeout=120_000)  # the first learned request imports torch in the server
    assert page.is_visible("[data-testid=blend]") and page.is_visible("[data-testid=param-openness]")
    assert not page.is_visible("[data-testid=param-weights]")  # a server-side file path: not offered
    page.fill("[data-testid=blend-seed]", "11")
    page.locator("[data-testid=blend-slider]").fill("0.5")
    blended = _next(page, first, timeout=120_000)
    params = json.loads(page.evaluate("new URL(document.querySelector('[data-testid=share]').value).searchParams"
                                      ".get('params')"))
    assert params["blend_seed"] == "11" and params["blend"] == 0.5
    want = eng.generate("level", "dungeon-vae", 3, params)
    assert blended == record_hash(engine.serialize.dumps(want)).hex()
    _shot(page, "playground-vae-blend.png")
    page.close()
