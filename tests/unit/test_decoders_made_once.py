"""The mapper's decoders are made before any thread reads the log (issue 18).

msgspec 0.22 builds a Struct type's decoding information on its first use; several threads
doing that at once for related event types crashed writer processes with SIGSEGV in msgspec's
_core (8 processes of 4 threads posting sales: 2 died in one run, with the stack in
`persistence._decoder`). Building a mapper now makes the decoder of every stored class, in the
thread that builds the application, before its threads start.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_new_mapper_has_made_every_stored_decoder() -> None:
    # A fresh interpreter: the decoders are process-wide, and other tests made them already.
    code = textwrap.dedent(
        """
        from ledger.infrastructure import persistence
        from ledger.infrastructure.topics import STORED

        assert not persistence._decoders
        persistence.MsgspecMapper(transcoder=persistence.NullTranscoder())
        assert set(persistence._decoders) == set(STORED), set(STORED) - set(persistence._decoders)
        """
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, our code
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_decoding_from_many_threads_at_once_in_a_fresh_process() -> None:
    code = textwrap.dedent(
        """
        import threading
        from ledger.infrastructure import persistence
        from ledger.infrastructure.topics import STORED

        topics = list(STORED)
        start = threading.Barrier(16)

        def read(i):
            start.wait()
            for topic in topics[i % 5 :] + topics[: i % 5]:
                persistence._decoder(topic)

        threads = [threading.Thread(target=read, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(persistence._decoders) == set(STORED)
        """
    )
    for _ in range(3):
        done = subprocess.run(  # noqa: S603 - this interpreter, our code
            [sys.executable, "-X", "faulthandler", "-c", code],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
