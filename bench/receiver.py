"""A C-STORE receiver that only receives: the DICOM gateway's pynetdicom set-up (its AE, its
server and event-driven associations, data sets streamed to a file in a receive folder) with a
handler that answers success at once. Nothing is inspected, hashed, fsynced or indexed, and
pynetdicom deletes each file after the handler.

``bench/ingest.py`` starts one or more of these beside the real gateway and sends them the same
files with the same clients: what they reach is the ceiling of any gateway built on pynetdicom
on this machine, whatever the gateway does with an object afterwards.

    .venv/bin/python bench/receiver.py --port 11120 --dir /tmp/receive

It prints ``ready`` once it listens and runs until it is terminated.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--dir", type=Path, required=True, help="where data sets are received")
    parser.add_argument("--ae-title", default="RADRELAY")
    args = parser.parse_args(argv)

    from pynetdicom import evt

    from radrelay.ingest.gateway import listen, receive_into, storage_ae

    def on_store(event: Any) -> int:
        return 0x0000

    receive_into(args.dir)
    ae = storage_ae(args.ae_title, max_associations=64)
    server = listen(ae, args.host, args.port, [(evt.EVT_C_STORE, on_store)])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
