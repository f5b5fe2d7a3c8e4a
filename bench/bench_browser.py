"""Browser sealing: the bundle's size, and sealing speed in Firefox ESR at Tor Browser's Safer.

Safer turns off the JavaScript JIT and WebAssembly; sealing must stay fast there, which is why
attachments are encrypted with WebCrypto's native AES-GCM. The figures:

* the size of static/portal.js, minified and gzip-compressed (target: at most 50 KB minified);
* sealing a 100 MiB attachment chosen in a file input, as the form does (`encryptBlob` over the
  File, chunk by chunk), in MB/s (target: at least 50 MB/s), with the same at Standard for the
  ratio;
* sealing a report without attachments (`collectFields` on a filled report form, then
  `buildManifest` and `sealManifest`, whose X25519 runs in pure JavaScript): the mean of 20
  runs and the first, cold one (target: under 1 s).

The sealing functions come from js/envelope.js, bundled by esbuild into a temporary folder with
the project's flags (nothing is written into the checkout), and run on a loopback page served
with the portal's script policy (`script-src 'self'`, no inline script, no eval, no wasm).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "portal" / "static" / "portal.js"
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
MIB = 1024 * 1024
ATTACHMENT_BYTES = 100 * MIB
BUNDLE_TARGET = 50 * 1024
THROUGHPUT_TARGET = 50.0  # MB/s, 10^6 bytes a second
REPORT_TARGET = 1.0  # seconds
REPORT_RUNS = 20
# Tor Browser's fingerprinting resistance rounds performance.now() to 1/60 s: a single seal
# reads as 0 or 17 ms, so the mean comes from the time of all the runs together.
TIMER_RESOLUTION = 1 / 60

# The benchmark page's own script: it exposes nothing on window and runs on a button press, so the
# page needs no inline script and the timings are taken inside the page, where the JIT settings
# of the level apply.
ENTRY = """
import {
  buildManifest, collectFields, encryptBlob, importFileKey, newFileKey, parsePublicKey,
  sealManifest,
} from %(envelope)s;

const out = (id, value) => { document.getElementById(id).textContent = JSON.stringify(value); };

document.getElementById('seal-file').addEventListener('click', async () => {
  try {
    const file = document.getElementById('file').files[0];
    const started = performance.now();
    const key = await importFileKey(newFileKey());
    const blob = await encryptBlob(file, key);
    out('file-result', { ms: performance.now() - started, size: file.size, sealed: blob.size });
  } catch (error) {
    out('file-result', { error: String(error) });
  }
});

document.getElementById('seal-report').addEventListener('click', () => {
  try {
    const form = document.getElementById('report-form');
    const teamKey = parsePublicKey(form.dataset.teamKey);
    const times = [];
    let sealed = 0;
    const begun = performance.now();
    for (let run = 0; run < %(runs)d; run += 1) {
      const started = performance.now();
      const manifest = buildManifest({
        kind: 'report', locale: 'en', fields: collectFields(form), files: [],
      });
      sealed = sealManifest(manifest, teamKey).length;
      times.push(performance.now() - started);
    }
    out('report-result', { times, total: performance.now() - begun, sealed });
  } catch (error) {
    out('report-result', { error: String(error) });
  }
});
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sealing benchmark</title>
<script src="/bench.js" defer></script></head>
<body><main>
<input type="file" id="file">
<button type="button" id="seal-file">Seal the file</button>
<output id="file-result"></output>
<form id="report-form" data-team-key="%(key)s">
<textarea name="description">%(description)s</textarea>
<input type="text" name="name" value="A pseudonym">
<input type="radio" name="consent_raise" value="no" checked>
<input type="radio" name="consent_report" value="anonymous" checked>
<input type="radio" name="consent_contact" value="portal" checked>
<input type="checkbox" name="topics" value="travel-ban" checked>
<input type="checkbox" name="topics" value="surveillance" checked>
</form>
<button type="button" id="seal-report">Seal the report</button>
<output id="report-result"></output>
</main></body></html>"""

CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def bundle_sizes() -> tuple[int, int]:
    """The size of the built bundle in bytes: minified, and gzip-compressed at level 9."""
    data = BUNDLE.read_bytes()
    return len(data), len(gzip.compress(data, compresslevel=9, mtime=0))


def build_entry(folder: Path) -> Path:
    """Bundle the benchmark's entry into folder with the project's esbuild flags."""
    entry = folder / "bench-entry.js"
    envelope = json.dumps(str(ROOT / "js" / "envelope.js"))
    entry.write_text(ENTRY % {"envelope": envelope, "runs": REPORT_RUNS}, encoding="utf-8")
    out = folder / "bench.js"
    subprocess.run(
        [
            str(ESBUILD),
            str(entry),
            "--bundle",
            "--minify",
            "--format=iife",
            "--target=es2022,firefox115,chrome109,safari15",
            "--log-level=warning",
            f"--outfile={out}",
        ],
        cwd=ROOT,
        check=True,
    )
    return out


def page_app(script: bytes, page: str) -> Callable[..., Iterable[bytes]]:
    """A WSGI app serving the benchmark page and its script under the portal's script policy."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/bench.js":
            body, kind = script, "text/javascript; charset=utf-8"
        elif path == "/":
            body, kind = page.encode(), "text/html; charset=utf-8"
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b""]
        start_response(
            "200 OK",
            [
                ("Content-Type", kind),
                ("Content-Length", str(len(body))),
                ("Content-Security-Policy", CSP),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    return app


def wait_for_result(browser: Any, element: str, timeout: float) -> dict[str, Any]:
    """The JSON a button's handler wrote into an output element."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = browser.execute(f"return document.getElementById('{element}').textContent")
        if text:
            result: dict[str, Any] = json.loads(text)
            if "error" in result:
                raise RuntimeError(f"the page failed: {result['error']}")
            return result
        time.sleep(0.1)
    raise TimeoutError(f"no result in #{element} after {timeout:.0f} s")


def measure(level: str, url: str, attachment: Path) -> tuple[float, float, float]:
    """Seal the attachment and the report in Firefox at a level: MB/s, then the first report
    seal's time and the mean of all, in seconds."""
    from tests.browser.harness import launch

    with launch(f"firefox-{level}") as browser:
        if level == "safer":
            # The figures mean nothing if the JIT were on after all.
            for pref in ("javascript.options.ion", "javascript.options.baselinejit"):
                assert browser.get_pref(pref) is False, f"{pref} is on at Safer"
        browser.goto(url)
        browser.set_files("#file", [attachment])
        browser.click("#seal-file")
        sealed = wait_for_result(browser, "file-result", timeout=600)
        assert sealed["size"] == ATTACHMENT_BYTES, sealed
        assert sealed["sealed"] == ATTACHMENT_BYTES // 65536 * 65552, sealed
        throughput = ATTACHMENT_BYTES / (sealed["ms"] / 1000) / 1e6
        browser.click("#seal-report")
        report = wait_for_result(browser, "report-result", timeout=120)
        assert report["sealed"] % 4096 == 48, report  # padded JSON + sealed box overhead
    return throughput, report["times"][0] / 1000, report["total"] / 1000 / REPORT_RUNS


def unavailable() -> str | None:
    """Why the browser figures cannot be measured here, or None."""
    from tests.browser.harness import firefox_unavailable

    if not ESBUILD.exists():
        return "esbuild is not installed: run `npm ci` first"
    return firefox_unavailable()


def run() -> None:
    """Print the bundle's size and the sealing figures, each with its target."""
    if not BUNDLE.is_file():
        print("   portal/static/portal.js is not built: run `npm run build` first")
        return
    minified, compressed = bundle_sizes()
    verdict = "ok" if minified <= BUNDLE_TARGET else "OVER TARGET"
    print(
        f"   bundle portal/static/portal.js: {minified:,} bytes minified "
        f"({minified / 1024:.1f} KiB; "
        f"target at most {BUNDLE_TARGET / 1024:.0f} KiB: {verdict}), "
        f"{compressed:,} bytes gzip",
        flush=True,
    )
    if reason := unavailable():
        print(f"   sealing in Firefox skipped: {reason}")
        return
    from portal.formats import crypto
    from tests.browser.harness import serve_wsgi

    _secret, team_public = crypto.generate_keypair()
    page = PAGE % {
        "key": base64.b64encode(team_public).decode("ascii"),
        # A long report: about 12,000 characters of description.
        "description": "The officers came back a third time and took my passport. " * 200,
    }
    with tempfile.TemporaryDirectory(prefix="portal-bench-browser-") as folder:
        script = build_entry(Path(folder)).read_bytes()
        attachment = Path(folder) / "attachment.bin"
        with attachment.open("wb") as handle:
            for _ in range(ATTACHMENT_BYTES // MIB):
                handle.write(os.urandom(MIB))
        results = {}
        with serve_wsgi(page_app(script, page)) as url:
            for level in ("standard", "safer"):
                results[level] = measure(level, url + "/", attachment)
    safer_speed, safer_first, safer_mean = results["safer"]
    standard_speed, _first, standard_mean = results["standard"]
    print(
        f"   sealing a 100 MiB attachment at Safer: {safer_speed:.0f} MB/s "
        f"(target at least {THROUGHPUT_TARGET:.0f} MB/s: {verdict}); at Standard "
        f"{standard_speed:.0f} MB/s (Safer/Standard {safer_speed / standard_speed:.2f})"
    )
    slowest = max(safer_first, safer_mean) + TIMER_RESOLUTION
    verdict = "ok" if slowest < REPORT_TARGET else "OVER TARGET"
    print(
        f"   sealing a report without attachments at Safer: {safer_mean * 1000:.1f} ms on average "
        f"over {REPORT_RUNS}, the first {safer_first * 1000:.0f} ms (timer steps of "
        f"{TIMER_RESOLUTION * 1000:.0f} ms; target under {REPORT_TARGET * 1000:.0f} ms: "
        f"{verdict}); at Standard {standard_mean * 1000:.1f} ms on average"
    )
