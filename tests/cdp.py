"""Headless Chromium driven over the DevTools protocol, for tests that need the browser's own
reading of a page: its accessibility tree, computed styles, layout at a given width, print
and forced-colours media.

`Browser` starts ``chromium --headless --remote-debugging-pipe``: the protocol runs over
file descriptors 3 (to the browser) and 4 (from it), one JSON message per NUL-terminated
chunk, so no port is opened and no websocket library is needed. `Browser.open` loads a page
in a new tab and returns a `Tab` whose `call` sends a command on that tab's session.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


class CDPError(RuntimeError):
    pass


class Browser:
    def __init__(self, profile: Path, *, timeout_s: float = 60.0) -> None:
        self._to_r, self._to_w = os.pipe()
        self._from_r, self._from_w = os.pipe()
        # the browser reads fd 3 and writes fd 4: dup our pipe ends there in the child
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--hide-scrollbars", "--remote-debugging-pipe", f"--user-data-dir={profile}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            pass_fds=(3, 4), preexec_fn=self._fds)
        os.close(self._to_r)
        os.close(self._from_w)
        self._timeout_s = timeout_s
        self._buf = b""
        self._id = 0

    def _fds(self) -> None:  # runs in the child, before exec
        os.dup2(self._to_r, 3)
        os.dup2(self._from_w, 4)

    def _read(self) -> dict[str, Any]:
        import select

        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._from_r], [], [], self._timeout_s)
            if not ready:
                raise CDPError(f"no answer from chromium in {self._timeout_s} s")
            chunk = os.read(self._from_r, 1 << 20)
            if not chunk:
                raise CDPError("chromium closed its pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return dict(json.loads(msg))

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def wait_event(self, method: str, session: str) -> dict[str, Any]:
        while True:
            msg = self._read()
            if msg.get("method") == method and msg.get("sessionId") == session:
                return dict(msg.get("params", {}))

    def open(self, url: str, *, width: int = 1280, height: int = 900,
             scale: float = 1.0) -> Tab:
        """A new tab showing ``url`` in a viewport of ``width`` x ``height`` CSS px (a
        ``scale`` of 4 with a 1280 px window is 400 % zoom: 320 CSS px)."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        tab = Tab(self, session)
        tab.call("Page.enable")
        tab.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                 deviceScaleFactor=scale, mobile=False)
        tab.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired", session)
        return tab

    def close(self) -> None:
        with contextlib.suppress(OSError):  # gone already
            os.write(self._to_w, json.dumps({"id": 0, "method": "Browser.close"}).encode()
                     + b"\0")
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_w, self._from_r):
            os.close(fd)
        if self.proc.stderr:
            self.proc.stderr.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Tab:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.call(method, self.session, **params)

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (returned by value, as JSON)."""
        out = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in out:
            raise CDPError(str(out["exceptionDetails"]))
        return out["result"].get("value")

    def media(self, media: str = "", **features: str) -> None:
        """Emulate a CSS media type ("print", "" for screen) and media features
        (e.g. ``forced_colors="active"``, ``prefers_reduced_motion="reduce"``)."""
        self.call("Emulation.setEmulatedMedia", media=media,
                  features=[{"name": k.replace("_", "-"), "value": v}
                            for k, v in features.items()])

    def ax_tree(self) -> list[dict[str, Any]]:
        """The browser's accessibility tree: what a screen reader is given."""
        self.call("Accessibility.enable")
        return list(self.call("Accessibility.getFullAXTree")["nodes"])
