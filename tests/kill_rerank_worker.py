"""Run as a process by the distributed re-ranking tests: ``pyterrier-mice rerank`` SIGKILLed by
itself after it has written N shards."""

import os
import signal
import sys


def main():
    n, *argv = sys.argv[1:]
    from pyterrier_mice.evaluation import distributed

    write, written = distributed._write_trec, [0]

    def write_then_maybe_die(*args, **kwargs):
        write(*args, **kwargs)
        written[0] += 1
        if written[0] == int(n):
            os.kill(os.getpid(), signal.SIGKILL)

    distributed._write_trec = write_then_maybe_die
    from pyterrier_mice.cli import main as cli

    sys.exit(cli(argv))


if __name__ == "__main__":
    main()
