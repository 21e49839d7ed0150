"""What a run shows while it works, without dependencies: a section heading for each stage, and a progress line
for long loops (printed to stderr, redrawn in place on a terminal)."""
import sys
import time


def section(title, underline="="):
    print(f"\n{title}\n{underline * len(title)}", flush=True)


class Progress:
    def __init__(self, total, label, stream=None):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.start = self.last_draw = time.monotonic()
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def update(self, n=1):
        self.done += n
        now = time.monotonic()
        # On a log file, a line every 10 s; on a terminal, redraw up to 10 times a second.
        if self.done >= self.total or now - self.last_draw >= (0.1 if self.tty else 10.0):
            self.last_draw = now
            self._draw(now)

    def _draw(self, now):
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        line = (f"  {self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{rate:.1f}/s, {elapsed:.0f}s elapsed, {eta:.0f}s left")
        self.stream.write(("\r" if self.tty else "") + line + ("" if self.tty else "\n"))
        if self.tty and self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()
