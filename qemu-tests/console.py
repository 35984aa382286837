"""The serial console of a qemu-system machine as the tests read it: a list
of (seconds, text) lines that a reader thread appends to under a condition
variable, searched by wait(). A machine class inherits ConsoleLines and
provides `lines`, `cond` and console_open() (False once QEMU is gone and
all its output has been read)."""
import re
import time


class ConsoleLines:
    def wait(self, pattern, timeout, since=0):
        """The first line from index `since` matching `pattern`: (index,
        time, match), or None after `timeout` s or once the console is closed."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        i = since
        with self.cond:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i][1])
                    if m:
                        return i, self.lines[i][0], m
                    i += 1
                left = end - time.monotonic()
                if left <= 0 or not self.console_open():
                    return None
                self.cond.wait(min(left, 1))
