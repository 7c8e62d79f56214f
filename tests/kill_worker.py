"""Run as a process by the fault tests: ``pyterrier-mice`` with the teacher's scores computed 4
pairs at a time, killed (SIGKILL, by itself) at a chosen point: ``teacher N`` after N chunks of
teacher scores, ``validation N`` as its Nth validation pass begins, ``none`` not at all."""

import os
import signal
import sys


def main():
    where, n, *argv = sys.argv[1:]
    from pyterrier_mice.rerankers.cross_encoder import CrossEncoderReranker
    from pyterrier_mice.training import teacher, trainer

    teacher.CHUNK = 4
    calls = [0]
    kill_at = int(n) + 1 if where == "teacher" else int(n)  # after N chunks; as the Nth validation begins

    def counted(original):
        def wrapper(*args, **kwargs):
            calls[0] += 1
            if calls[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)

        return wrapper

    if where == "teacher":
        CrossEncoderReranker.score_pairs = counted(CrossEncoderReranker.score_pairs)
    elif where == "validation":
        trainer.Trainer.validate = counted(trainer.Trainer.validate)
    from pyterrier_mice.cli import main as cli

    sys.exit(cli(argv))


if __name__ == "__main__":
    main()
