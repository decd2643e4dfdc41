"""The built site as a reader sees it: every page of _toc.yml in a real headless Chromium, served
from 127.0.0.1 with every other host blocked (the way the site is read offline or behind blocked
CDNs). `make test` runs this after building the site; on a machine without Chromium or a built
site it skips with the reason, except under CI, where that is a failure.

For each page: every equation rendered by MathJax (no raw TeX delimiters left), no request to
another host and no failed request, no JavaScript error, every image loaded, Chinese glyphs drawn
(not as boxes), exercise solutions hidden until clicked; on the training-algorithm page the
animation steps a frame. With GANLIB_SCREENSHOTS=1, a full-page screenshot of each page goes to
_build/screenshots/ for a person to look at (they are half the test's time, so CI takes none).
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("GANLIB_SITE", ROOT / "_build" / "html"))
SHOTS = ROOT / "_build" / "screenshots" if os.environ.get("GANLIB_SCREENSHOTS") else None
CJK = re.compile(r"[\u4e00-\u9fff]")


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser test: .ci/run installs what it needs)")
    pytest.skip(reason)


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part["chapters"]]
    return pages


def translated_pages() -> list[str]:
    """The pages of the Chinese edition (under zh_CN/) that are translated, as the build decides
    (book/_ext/editions.py, a sibling module of the book's extensions, not a package)."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from editions import translated_pages as pages
    return sorted(pages())


def chromium_path() -> str | None:
    return os.environ.get("GANLIB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server():
    if not (SITE / "index.html").exists():
        _unavailable(f"no built site at {SITE}: run `make book` first")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test reports what matters; no access log
        pass


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        _unavailable("Chromium is not installed (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -r requirements.txt)")
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield b
        b.close()


# JavaScript run in the page -------------------------------------------------------------------

RAW_TEX = """() => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style, textarea, mjx-container, .highlight').forEach(e => e.remove());
  const text = body.textContent;
  return ['\\\\(', '\\\\[', '$$'].filter(d => text.includes(d)).map(d => {
    const i = text.indexOf(d); return d + ' near: ' + text.slice(Math.max(0, i - 40), i + 40).replace(/\\s+/g, ' ');
  });
}"""

BROKEN_IMAGES = """() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
                                             .map(i => (i.getAttribute('src') || '').slice(0, 80))"""

# A character the page's fonts draw must not look like the "missing glyph" box, and two different
# characters must not look alike (boxes all do): drawn on a canvas in the page's body font.
CJK_GLYPHS = """() => {
  const family = getComputedStyle(document.body).fontFamily;
  const draw = ch => { const c = document.createElement('canvas'); c.width = c.height = 48;
    const g = c.getContext('2d'); g.font = '40px ' + family; g.fillText(ch, 2, 42);
    return Array.from(g.getImageData(0, 0, 48, 48).data).join(','); };
  const zhong = draw('中'), wen = draw('文'), missing = draw('\\u{10FFFD}');
  return {distinct: zhong !== wen, notBox: zhong !== missing, family};
}"""


# The prose of a translated page: every paragraph, list item, heading and table cell that the book
# writes (not code, its outputs, math, the bibliography, the glossary's English column, or the
# titles of untranslated pages that the footer links to) with 30 or more Latin letters and no
# Chinese character is English left untranslated.
UNTRANSLATED = """() => {
  const skip = '.cell_output, .cell_input, pre, code, mjx-container, .bibliography, .language-switch, ' +
               '.prev-next-area, .en, script, style';
  return [...document.querySelectorAll('main p, main li, main h1, main h2, main h3, main th, main td')]
    .filter(e => !e.closest(skip) && !e.querySelector('p, li'))
    .map(e => { const c = e.cloneNode(true); c.querySelectorAll(skip + ', a.reference').forEach(x => x.remove());
                return c.textContent.replace(/\\s+/g, ' ').trim(); })
    .filter(t => (t.match(/[A-Za-z]/g) || []).length >= 30 && !/[\\u4e00-\\u9fff]/.test(t))
    .map(t => t.slice(0, 100));
}"""

# What a translated page's code printed (ganlib.i18n): a line of text output with three English
# words in a row and no Chinese character is English that the code did not translate. (Source code
# shown by ganlib.chapters.code is a code listing, not an .output, and stays code.)
UNTRANSLATED_OUTPUT = """() => [...document.querySelectorAll('main .cell_output .output pre')]
  .flatMap(e => e.textContent.split('\\n'))
  .filter(t => /[A-Za-z]{2,}\\s+[A-Za-z]{2,}\\s+[A-Za-z]{2,}/.test(t) && !/[\\u4e00-\\u9fff]/.test(t))
  .map(t => t.trim().slice(0, 100))"""

# Printed tables count a Chinese character as two columns (ganlib.chapters.tables): in a text
# output of a Chinese page, two Chinese characters must be exactly as wide as four Latin letters.
OUTPUT_COLUMNS = """() => { const pre = [...document.querySelectorAll('main .cell_output .output pre')]
    .find(e => e.getBoundingClientRect().width > 0);
  if (!pre) return null;
  const width = t => { const s = document.createElement('span'); s.textContent = t; pre.appendChild(s);
                       const w = s.getBoundingClientRect().width; s.remove(); return w; };
  return [width('中文'), width('MMMM')]; }"""

CHINESE_OUTPUT = """() => [...document.querySelectorAll('main .cell_output .output pre')]
  .some(e => /[\\u4e00-\\u9fff]/.test(e.textContent))"""


def check_page(browser, url: str, screenshot: Path | None = None) -> list[str]:
    """Everything wrong with the page at ``url`` as a reader's browser shows it (empty: nothing)."""
    origin = urlparse(url).netloc
    elsewhere, failed, errors = [], [], []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()

    def route(r):
        if urlparse(r.request.url).netloc in (origin, "") or r.request.url.startswith("data:"):
            r.continue_()
        else:
            elsewhere.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda r: failed.append(r.url) if urlparse(r.url).netloc == origin else None)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, wait_until="load")
    problems = []
    n_math = page.evaluate("document.querySelectorAll('.math').length")
    if n_math:
        try:
            page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=10_000)
            page.evaluate("MathJax.startup.promise")
        except Exception as err:  # noqa: BLE001 - any failure here means the equations did not render
            problems.append(f"MathJax did not start ({type(err).__name__})")
        rendered = page.evaluate("document.querySelectorAll('mjx-container').length")
        if rendered < n_math:
            problems.append(f"only {rendered} of {n_math} math elements rendered")
    problems += [f"raw TeX left: {raw}" for raw in page.evaluate(RAW_TEX)]
    problems += [f"image not loaded: {src}" for src in page.evaluate(BROKEN_IMAGES)]
    if CJK.search(page.inner_text("body")):
        glyphs = page.evaluate(CJK_GLYPHS)
        if not (glyphs["distinct"] and glyphs["notBox"]):
            problems.append(f"Chinese characters drawn as boxes (font-family: {glyphs['family']})")
    problems += _check_solutions(page)
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
    problems += [f"request to another host: {u}" for u in elsewhere]
    problems += [f"failed request: {u}" for u in failed]
    problems += [f"JavaScript error: {e}" for e in errors]
    context.close()
    return problems


def _check_solutions(page) -> list[str]:
    """Exercise solutions start hidden and open on a click on their title."""
    problems = []
    solutions = page.locator("div.solution")
    for i in range(solutions.count()):
        solution = solutions.nth(i)
        body = solution.locator(":scope > :not(.admonition-title)").first
        if body.is_visible():
            problems.append(f"solution {i + 1} is visible before it is clicked")
            continue
        solution.locator(".admonition-title").first.click()
        try:
            body.wait_for(state="visible", timeout=3000)
        except Exception:  # noqa: BLE001
            problems.append(f"solution {i + 1} did not open on click")
    return problems


def step_animation(browser, url: str) -> tuple[int, int, bool]:
    """(frame before, frame after) a click on the first animation's "Next frame", and whether its
    buttons show icons."""
    context = browser.new_context()
    page = context.new_page()
    page.route("**/*", lambda r: r.continue_() if urlparse(r.request.url).netloc == urlparse(url).netloc
               else r.abort())
    page.goto(url, wait_until="load")
    slider = page.locator("input.anim-slider").first
    before = int(slider.input_value())
    page.locator('button[title="Next frame"]').first.click()
    after = int(slider.input_value())
    icons = page.evaluate("""() => [...document.querySelectorAll('.anim-buttons button')].every(
        b => [...b.querySelectorAll('svg, i')].some(e => e.getBoundingClientRect().width > 0))""")
    context.close()
    return before, after, icons


# The tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", toc_pages())
def test_page_renders_offline(server, browser, page):
    problems = check_page(browser, f"{server}/{page}.html", SHOTS and SHOTS / f"{Path(page).name}.png")
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", translated_pages())
def test_chinese_page_renders_offline_and_reads_in_chinese(server, browser, page):
    if not (SITE / "zh_CN" / f"{page}.html").exists():
        _unavailable(f"no Chinese edition at {SITE / 'zh_CN'}: make book builds it")
    url = f"{server}/zh_CN/{page}.html"
    problems = check_page(browser, url, SHOTS and SHOTS / "zh_CN" / f"{Path(page).name}.png")
    context = browser.new_context()
    tab = context.new_page()
    tab.route("**/*", lambda r: r.continue_() if urlparse(r.request.url).netloc == urlparse(url).netloc else r.abort())
    tab.goto(url, wait_until="load")
    problems += [f"English left untranslated: {text}" for text in tab.evaluate(UNTRANSLATED)]
    problems += [f"English printed by the code: {text}" for text in tab.evaluate(UNTRANSLATED_OUTPUT)]
    columns = tab.evaluate(OUTPUT_COLUMNS)
    if (ROOT / f"{page}.ipynb").exists():  # a notebook: its printed output must be there, and Chinese
        if not tab.evaluate(CHINESE_OUTPUT):
            problems.append("no printed output line in Chinese (was the notebook run with GANLIB_LANG=zh_CN?)")
        if not columns or min(columns) <= 0:
            problems.append(f"no visible printed output to measure: {columns}")
    if columns and abs(columns[0] - columns[1]) > 0.5:
        problems.append(f"printed tables drift: two Chinese characters are {columns[0]:.1f} px wide, four "
                        f"Latin letters {columns[1]:.1f} px (book/_static/cjk.css names the monospaced CJK font)")
    context.close()
    assert not problems, f"zh_CN/{page}:\n  " + "\n  ".join(problems)


def test_language_switch_links_the_two_editions_both_ways():
    pages = translated_pages()
    if not (SITE / "zh_CN" / "index.html").exists():
        _unavailable(f"no Chinese edition at {SITE / 'zh_CN'}: make book builds it")
    link = re.compile(r'<p class="language-switch"><a href="([^"]+)"')
    for page in pages:
        english, chinese = SITE / f"{page}.html", SITE / "zh_CN" / f"{page}.html"
        to_chinese, to_english = link.search(english.read_text()), link.search(chinese.read_text())
        assert to_chinese and (english.parent / to_chinese.group(1)).resolve() == chinese.resolve(), page
        assert to_english and (chinese.parent / to_english.group(1)).resolve() == english.resolve(), page
    untranslated = next(p for p in toc_pages() if p not in pages)
    assert not link.search((SITE / f"{untranslated}.html").read_text()), f"{untranslated} has no Chinese version to link"
    assert "本页尚未译成中文" in (SITE / "zh_CN" / f"{untranslated}.html").read_text()


def test_training_animation_steps_a_frame(server, browser):
    before, after, icons = step_animation(browser, f"{server}/book/training_algorithm.html")
    assert after == before + 1, f"the animation stayed at frame {before}"
    assert icons, "the animation's buttons have no icons (Font Awesome did not load)"


def test_the_checks_catch_a_broken_page(server, browser):
    # a copy of a real page as it was before the site served MathJax itself: MathJax from a CDN
    # (blocked here, as it is for many readers), so its equations stay raw TeX
    page = next(p for p in toc_pages() if (ROOT / f"{p}.ipynb").exists()
                and "$" in (ROOT / f"{p}.ipynb").read_text(errors="replace"))
    html = (SITE / f"{page}.html").read_text()
    # Sphinx appends ?v=<checksum> when the file was already there (a rebuild into the same folder)
    local = re.search(r'src="[^"]*_static/mathjax/tex-chtml\.js(\?v=[0-9a-f]+)?"', html)
    assert local, "the page does not load the site's own MathJax"
    broken = html.replace(local.group(0), 'src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"')
    path = SITE / Path(page).parent / "_broken_for_test.html"
    path.write_text(broken)
    try:
        problems = check_page(browser, f"{server}/{Path(page).parent}/_broken_for_test.html")
    finally:
        path.unlink()
    assert any(p.startswith("request to another host: https://cdn.jsdelivr.net") for p in problems), problems
    assert any(p.startswith("raw TeX left: ") for p in problems), problems
    assert any("math elements rendered" in p for p in problems), problems


def test_no_page_names_another_host_for_a_script_stylesheet_image_or_frame():
    # the grep a reader would run: links (<a href>) to other sites are fine, loads are not
    if not (SITE / "index.html").exists():
        _unavailable(f"no built site at {SITE}: run `make book` first")
    remote = re.compile(r'<(script|link|img|iframe|source|video|audio)\b[^>]*\b(src|href)="(https?:)?//[^"]*"', re.I)
    found = {str(p.relative_to(SITE)): m.group(0)[:120] for p in SITE.rglob("*.html")
             for m in [remote.search(p.read_text(errors="replace"))] if m}
    assert not found, found


def test_the_output_check_finds_english_printed_on_an_english_page(server, browser):
    # the same notebook, run in English: its printed lines are what the Chinese check must catch
    if not (SITE / "book" / "generative_models.html").exists():
        _unavailable(f"no built site at {SITE}: run `make book` first")
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(f"{server}/book/generative_models.html", wait_until="load")
    found = tab.evaluate(UNTRANSLATED_OUTPUT)
    context.close()
    assert any(line.startswith("fraction of binary pixels that are on") for line in found), found
