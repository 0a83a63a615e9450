"""Open every page of the built book in headless Chromium, with the network off.

    python tools/check_book.py _build/html --screenshots _build/screenshots

Fails (exit 1) on any page that shows

- raw TeX (math MathJax did not render, or a MathJax error),
- a missing or broken image,
- a code cell, output or table wider than the page (cut off or scrolled),
- a Python traceback or warning in a cell output,
- a dead internal link (missing page or missing #anchor),
- a request for anything outside the build folder (the book must read offline),
- an image in the article that is not in a numbered figure with a caption, or whose alt
  text is empty or the file name (off with `--no-figures` or `MMNB_CHECK_FIGURES=0`:
  then the figures without them are only counted),

then opens every page again at a phone's width (390 px) and fails where content is cut
off at the right (a box beyond the article's right edge, or the page scrolling sideways);
display math, tables and code that scroll inside their own box are fine there. It saves
a full-page screenshot of every page at both widths (`<page path>.png` and
`390px/<page path>.png`). Chromium and its
driver are Debian's `chromium` and `chromium-driver` packages. Where they are missing the
check says so loudly and exits 0, unless `--require` is given or the environment variable
`CI` is set (CI always runs it).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

WIDTH, HEIGHT = 1440, 900  # a laptop screen
PHONE_WIDTH, PHONE_HEIGHT = 390, 844  # a phone held upright (CSS pixels)
MAX_SHOT_HEIGHT = 30_000  # pixels; longer pages are cut (Chromium's texture limit)
SKIP_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static"}
# Console messages that fail a page: uncaught script errors and resources that did not load
CONSOLE_FATAL = ("Uncaught", "Failed to load resource", "net::ERR")
# Known noise that does not affect reading: sphinx-thebe's inline script is emitted twice
# by the theme (the "live code" button, which needs a server anyway, is not used).
CONSOLE_NOISE = ("Identifier 'THEBE_JS_URL' has already been declared",)

INSTALL_HINT = """\
##########################################################################
#  The browser check of the book did NOT run: Chromium was not found.     #
#  Install it (Debian/Ubuntu):                                           #
#      sudo apt-get install -y chromium chromium-driver                  #
#  then run `make check-book`. CI always runs this check.                #
##########################################################################"""

# Everything below runs inside the page.
WAIT_JS = """
const done = arguments[arguments.length - 1];
const images = [...document.images];
images.forEach(img => { img.loading = "eager"; });
const loaded = Promise.all(images.map(img => img.complete ? null :
    new Promise(ok => { img.addEventListener("load", ok); img.addEventListener("error", ok); })));
const mj = window.MathJax;
const math = (mj && mj.startup && mj.startup.promise) ? mj.startup.promise.then(() => "ready")
    : Promise.resolve(mj ? "not loaded" : "absent");
Promise.all([loaded, math]).then(([_, state]) => done(state), e => done("error: " + e));
"""

INSPECT_JS = r"""
const main = document.querySelector("article.bd-article") || document.querySelector("main")
    || document.body;
const problems = [];
const clip = s => s.replace(/\s+/g, " ").trim().slice(0, 160);

// 1. raw TeX: text outside code and rendered math that still looks like TeX
const tex = new RegExp(String.raw`\\\(|\\\)|\\\[|\\\]|\$\$|\\(begin|end|frac|mathbb|mathrm|` +
  String.raw`operatorname|left|right|sqrt|sum|lVert|rVert|big|tau|mu|sigma|xi|langle|rangle|` +
  String.raw`top|cdot|le|ge|in)\b`);
const skip = "pre, code, script, style, textarea, mjx-container, .MathJax, .highlight, kbd";
const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const parent = node.parentElement;
  if (!parent || parent.closest(skip)) continue;
  const m = node.textContent.match(tex);
  if (m) problems.push(["raw TeX", clip(node.textContent)]);
}
for (const err of main.querySelectorAll("mjx-merror")) {
  problems.push(["MathJax error", clip(err.getAttribute("data-mjx-error") || err.textContent)]);
}
const mathNodes = main.querySelectorAll("mjx-container").length;

// 2. images that are missing or did not decode
for (const img of document.images) {
  if (!img.complete || img.naturalWidth === 0) {
    problems.push(["broken image", img.getAttribute("src")]);
  }
}

// 3. code, outputs and tables wider than the page (cut off at the right edge or scrolled)
const right = main.getBoundingClientRect().right + 1;
const wide = main.querySelectorAll("pre, table, div.cell_output, div.output, " +
  ".pst-scrollable-table-container, mjx-container[display]");
for (const el of wide) {
  const box = el.getBoundingClientRect();
  if (box.width === 0) continue;
  const scrolled = el.scrollWidth > el.clientWidth + 1 &&
    getComputedStyle(el).overflowX !== "visible";
  if (scrolled || box.right > right) {
    let what = el.tagName.toLowerCase();
    let sample = el.textContent;
    if (what === "pre") {
      const lines = el.textContent.split("\n");
      sample = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
      what = `code line of ${sample.length} characters`;
    }
    problems.push([`too wide (${what}: ${el.scrollWidth}px in ${el.clientWidth}px)`, clip(sample)]);
  }
}

// 4. tracebacks and warnings in cell outputs
const bad = /Traceback \(most recent call last\)|\b[A-Z]\w*Warning\b|\bWarning:|\b[A-Z]\w+Error\b/;
for (const out of main.querySelectorAll("div.cell_output, div.output")) {
  if (out.parentElement && out.parentElement.closest("div.cell_output, div.output")) continue;
  const m = out.textContent.match(bad);
  if (m) {
    const i = out.textContent.indexOf(m[0]);
    problems.push(["traceback or warning in an output",
                   clip(out.textContent.slice(Math.max(0, i - 60), i + 100))]);
  }
}

// 5. links, checked on the Python side
const links = [...document.querySelectorAll("a[href]")].map(a => a.href);

// 6. figures: an image sits in a numbered figure with a caption and has real alt text
const figures = [];
for (const img of main.querySelectorAll("img")) {
  const file = (img.getAttribute("src") || "").split(/[?#]/)[0].split("/").pop();
  const alt = (img.getAttribute("alt") || "").trim();
  const altFile = alt.split("/").pop();
  const caption = img.closest("figure") && img.closest("figure").querySelector("figcaption");
  const why = [];
  if (!caption || !caption.textContent.trim()) why.push("no caption");
  else if (!caption.querySelector(".caption-number")) why.push("caption not numbered (no name)");
  if (!alt || altFile === file || altFile === file.replace(/\.\w+$/, "") ||
      /^\S+\.(png|svg|jpe?g|gif|webp|pdf)$/i.test(alt)) {
    why.push("no alt text (empty or the file name)");
  }
  if (why.length) figures.push([why.join(", "), file]);
}
return {problems, links, mathNodes, figures, title: document.title};
"""

# At a phone's width: content cut off at the right. An element that scrolls (or clips) on
# its own is checked as one box and not entered; display math, tables and code that
# scroll inside their box are therefore fine, and a box that hides what overflows it is not.
PHONE_JS = r"""
const main = document.querySelector("article.bd-article") || document.querySelector("main")
    || document.body;
const problems = [];
const clip = s => s.replace(/\s+/g, " ").trim().slice(0, 120);
const root = document.documentElement;
const view = root.clientWidth;
if (root.scrollWidth > view + 1) {
  problems.push(["the page scrolls sideways", `${root.scrollWidth}px wide in ${view}px`]);
}
const right = Math.min(main.getBoundingClientRect().right, view) + 1;
const name = el => el.tagName.toLowerCase() +
  (el.classList.length ? "." + [...el.classList].slice(0, 2).join(".") : "");
const todo = [...main.children];
while (todo.length) {
  const el = todo.pop();
  const style = getComputedStyle(el);
  if (style.display === "none" || style.position === "fixed") continue;
  const box = el.getBoundingClientRect();
  if (box.width > 1 && box.height > 1 && box.right > right) {
    problems.push([`cut off (${name(el)}: ${Math.round(box.right - right + 1)}px beyond ` +
                   `the right edge)`, clip(el.textContent)]);
    continue;
  }
  const ox = style.overflowX;
  if (ox === "hidden" || ox === "clip") {
    // what its children (not absolutely placed ones, such as MathJax's hidden MathML) need
    const kids = [...el.children].filter(k => getComputedStyle(k).position !== "absolute");
    const need = Math.max(box.right, ...kids.map(k => k.getBoundingClientRect().right));
    if (need > box.right + 2 && box.width > 1 && box.height > 1) {
      problems.push([`cut off (${name(el)} hides ${Math.round(need - box.right)}px)`,
                     clip(el.textContent)]);
    }
    continue;
  }
  if (ox !== "visible" || el instanceof SVGElement || el.tagName === "MJX-CONTAINER") continue;
  // its own text (a long word, a URL) running past its box and past the right edge
  const ends = box.left + el.scrollWidth;
  const kids = Math.max(box.left, ...[...el.children].map(k => k.getBoundingClientRect().right));
  if (el.scrollWidth > el.clientWidth + 1 && ends > right && ends > kids + 1 &&
      [...el.childNodes].some(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim())) {
    problems.push([`cut off (text of ${name(el)}: ${Math.round(ends - right + 1)}px beyond ` +
                   `the right edge)`, clip(el.textContent)]);
    continue;
  }
  todo.push(...el.children);
}
return problems;
"""


def find_chromium() -> tuple[str | None, str | None]:
    browser = next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    return browser, shutil.which("chromedriver")


def pages(html_dir: Path) -> list[Path]:
    """The pages of the current build: Sphinx's list of documents (searchindex.js), so
    that pages left over from an earlier build are not checked, plus index and search."""
    index = html_dir / "searchindex.js"
    match = re.search(r'"docnames": (\[[^\]]*\])', index.read_text()) if index.exists() else None
    if match is None:
        return sorted(
            p
            for p in html_dir.rglob("*.html")
            if not SKIP_DIRS.intersection(p.relative_to(html_dir).parts[:-1])
        )
    names = [f"{doc}.html" for doc in json.loads(match.group(1))] + ["index.html", "search.html"]
    return sorted({html_dir / name for name in names if (html_dir / name).exists()})


def start_browser(browser: str, driver_path: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={WIDTH},{HEIGHT}",
        "--allow-file-access-from-files",
        # networking off: no name resolves and every proxied request goes nowhere
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    return driver


def network_requests(driver) -> list[str]:
    """URLs this page asked for that are not inside the book (file:, data:, blob:)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith(("file:", "data:", "blob:", "about:", "chrome")):
                urls.append(url)
    return urls


def console_errors(driver) -> list[str]:
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e.get("level") == "SEVERE"
        and any(f in e["message"] for f in CONSOLE_FATAL)
        and not any(n in e["message"] for n in CONSOLE_NOISE)
    ]


def set_width(driver, width: int | None, height: int = HEIGHT) -> None:
    """Lay pages out `width` CSS pixels wide (None: the window's own size)."""
    if width is None:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        return
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def screenshot(driver, path: Path, width: int | None = None) -> None:
    """The whole page as one PNG (the viewport grown to the page's height: fastest)."""
    height = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
    )
    height = min(int(height), MAX_SHOT_HEIGHT)
    set_width(driver, width or WIDTH, height)
    try:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        set_width(driver, width, PHONE_HEIGHT if width else HEIGHT)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


_ids_cache: dict[Path, set[str]] = {}


def anchors(page: Path) -> set[str]:
    if page not in _ids_cache:
        text = page.read_text(errors="replace")
        _ids_cache[page] = set(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", text))
    return _ids_cache[page]


def dead_links(links: Iterable[str], html_dir: Path) -> list[str]:
    dead = []
    root = html_dir.resolve()
    for link in sorted(set(links)):
        parts = urlsplit(link)
        if parts.scheme != "file":
            continue
        target = Path(unquote(parts.path))
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            dead.append(f"{link} (no such file)")
        elif root not in target.resolve().parents:
            dead.append(f"{link} (outside the book)")
        elif parts.fragment and target.suffix == ".html":
            if unquote(parts.fragment) not in anchors(target):
                dead.append(f"{link} (no anchor #{parts.fragment})")
    return dead


def load(driver, page: Path) -> str:
    """Open a page and wait for its images and math; MathJax's state."""
    driver.get_log("performance")  # drop what the previous page logged
    driver.get_log("browser")
    driver.get(page.resolve().as_uri())
    math_state = driver.execute_async_script(WAIT_JS)
    time.sleep(0.2)  # let MathJax's last layout pass settle
    return math_state


def check_page(
    driver, page: Path, html_dir: Path, shots: Path | None, figures: bool = True
) -> tuple[list, dict]:
    math_state = load(driver, page)
    found = driver.execute_script(INSPECT_JS)
    problems = [f"{kind}: {what}" for kind, what in found["problems"]]
    bad_figures = [f"figure: {why}: {what}" for why, what in found["figures"]]
    if figures:
        problems += bad_figures
    if math_state != "ready" and ("\\(" in page.read_text() or "\\[" in page.read_text()):
        problems.append(f"MathJax {math_state}: the page's math cannot render")
    problems += [f"dead internal link: {link}" for link in dead_links(found["links"], html_dir)]
    problems += [
        f"network request (the book must read offline): {u}" for u in network_requests(driver)
    ]
    problems += [f"browser console error: {m}" for m in console_errors(driver)]
    if shots is not None:
        screenshot(driver, shots / page.relative_to(html_dir).with_suffix(".png"))
    info = {"math": found["mathNodes"], "math_state": math_state}
    return problems, {**info, "figures_unchecked": [] if figures else bad_figures}


def check_phone(driver, page: Path, html_dir: Path, shots: Path | None) -> list[str]:
    """The page at a phone's width (set_width(PHONE_WIDTH) first): what is cut off."""
    load(driver, page)
    found = driver.execute_script(PHONE_JS)
    if shots is not None:
        path = shots / f"{PHONE_WIDTH}px" / page.relative_to(html_dir).with_suffix(".png")
        screenshot(driver, path, PHONE_WIDTH)
    return [f"at {PHONE_WIDTH} px: {kind}: {what}" for kind, what in found]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; `--figures` defaults to on unless MMNB_CHECK_FIGURES=0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", type=Path, help="the built book, e.g. _build/html")
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for PNGs")
    parser.add_argument("--require", action="store_true", help="fail when Chromium is missing")
    parser.add_argument(
        "--figures",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("MMNB_CHECK_FIGURES", "1") != "0",
        help="fail on figures without a numbered caption or alt text (default: on, "
        "unless MMNB_CHECK_FIGURES=0)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    html_dir = args.html_dir
    if not (html_dir / "index.html").exists():
        print(f"check_book: no built book at {html_dir} (index.html missing)", file=sys.stderr)
        return 1
    browser, driver_path = find_chromium()
    if browser is None or driver_path is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 1 if (args.require or os.environ.get("CI")) else 0

    todo = pages(html_dir)
    start = time.perf_counter()
    driver = start_browser(browser, driver_path)
    report = {}
    try:
        for page in todo:
            name = page.relative_to(html_dir).as_posix()
            tic = time.perf_counter()
            problems, info = check_page(driver, page, html_dir, args.screenshots, args.figures)
            info["seconds"] = round(time.perf_counter() - tic, 1)
            report[name] = {"problems": problems, **info}
        set_width(driver, PHONE_WIDTH, PHONE_HEIGHT)
        for page in todo:
            name = page.relative_to(html_dir).as_posix()
            tic = time.perf_counter()
            report[name]["problems"] += check_phone(driver, page, html_dir, args.screenshots)
            report[name]["seconds"] += round(time.perf_counter() - tic, 1)
    finally:
        driver.quit()
    failures = unchecked = 0
    for name, info in report.items():
        problems = info["problems"]
        failures += bool(problems)
        unchecked += len(info["figures_unchecked"])
        status = "ok  " if not problems else "FAIL"
        print(f"{status} {name} ({info['math']} formulas, {info['seconds']:.1f} s)")
        for problem in problems:
            print(f"       {problem}")
    if args.screenshots is not None:
        (args.screenshots / "report.json").write_text(json.dumps(report, indent=1))
    seconds = time.perf_counter() - start
    where = f"; screenshots in {args.screenshots}" if args.screenshots else ""
    print(
        f"check_book: {len(todo)} pages at {WIDTH} and {PHONE_WIDTH} px, {failures} with "
        f"problems, {seconds:.0f} s{where}"
    )
    if unchecked:
        print(
            f"check_book: figure check off (MMNB_CHECK_FIGURES=0 or --no-figures): "
            f"{unchecked} figures lack a numbered caption or real alt text"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
