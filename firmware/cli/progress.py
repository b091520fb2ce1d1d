"""A progress bar for long work on a recording: position, speed x real time, time left.

    analyze call.wav [##################-----------] 6:12 / 10:00 41x real time 0:05 left

ASCII only, as the monitor: a serial console or a C locale shows box-drawing characters and
a multiplication sign as bytes of junk.

Drawn with rich on stderr, and only when stderr is a terminal: piped or redirected, the
command stays quiet (no bar, no control characters in a log). rich is imported only when a
bar is drawn, so no other command pays for it.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, TextIO


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a duration in seconds."""
    s = int(max(0.0, seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """``with Progress(label, total_s) as bar: bar.update(done_s)``: audio seconds done of
    ``total_s`` (0 = unknown length: position and speed only). Silent unless ``stream``
    (default stderr) is a terminal."""

    def __init__(self, label: str, total_s: float, *, stream: TextIO | None = None):
        self.stream = sys.stderr if stream is None else stream
        self.label = label
        self.total_s = total_s
        self._bar: Any = None
        self._task: Any = None

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def __enter__(self) -> Progress:
        isatty = getattr(self.stream, "isatty", None)
        if isatty is None or not isatty():
            return self
        from rich.console import Console
        from rich.measure import Measurement
        from rich.progress import Progress as RichProgress
        from rich.progress import ProgressColumn, TextColumn
        from rich.table import Column
        from rich.text import Text

        total_s = self.total_s

        class Position(ProgressColumn):
            def render(self, task: Any) -> Text:
                whole = f" / {clock(total_s)}" if total_s > 0 else ""
                return Text(f"{clock(task.completed)}{whole}")

        class Speed(ProgressColumn):
            def render(self, task: Any) -> Text:
                elapsed = task.elapsed or 0.0
                if elapsed <= 0 or task.completed <= 0:
                    return Text("-x real time")
                return Text(f"{task.completed / elapsed:.0f}x real time")

        class Left(ProgressColumn):
            def render(self, task: Any) -> Text:
                elapsed = task.elapsed or 0.0
                if task.finished:
                    return Text(f"done in {clock(elapsed)}")
                if total_s <= 0 or elapsed <= 0 or task.completed <= 0:
                    return Text("")
                speed = task.completed / elapsed
                return Text(f"{clock(max(0.0, total_s - task.completed) / speed)} left")

        class AsciiBar:
            """``[####----]`` across the width left (a block that moves when the length is
            not known)."""

            def __init__(self, task: Any) -> None:
                self.task = task

            def __rich_measure__(self, console: Any, options: Any) -> Measurement:
                return Measurement(4, options.max_width)

            def __rich_console__(self, console: Any, options: Any) -> Any:
                inner = max(options.max_width - 2, 2)
                task = self.task
                if task.total:
                    done = inner if task.finished else min(
                        inner, round(inner * task.completed / task.total))
                    yield Text("[" + "#" * done + "-" * (inner - done) + "]")
                else:
                    at = int((task.elapsed or 0.0) * 8) % inner
                    block = min(3, inner - at)
                    yield Text("[" + "-" * at + "#" * block + "-" * (inner - at - block) + "]")

        class Bar(ProgressColumn):
            def render(self, task: Any) -> AsciiBar:
                return AsciiBar(task)

        def whole() -> Column:  # a figure is never wrapped; the bar gives way instead
            return Column(no_wrap=True)

        self._bar = RichProgress(TextColumn("{task.description}", table_column=whole()),
                                 Bar(), Position(table_column=whole()),
                                 Speed(table_column=whole()), Left(table_column=whole()),
                                 console=Console(file=self.stream), refresh_per_second=4)
        self._bar.start()
        self._task = self._bar.add_task(self.label, total=total_s if total_s > 0 else None)
        return self

    def update(self, done_s: float) -> None:
        """``done_s`` seconds of audio are analysed."""
        if self._bar is not None:
            self._bar.update(self._task, completed=done_s)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            if exc_type is None and self.total_s <= 0:  # unknown length: show it complete
                self._bar.update(self._task, total=self._bar.tasks[0].completed)
            self._bar.stop()
