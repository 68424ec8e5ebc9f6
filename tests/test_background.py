"""serve_in_thread: a taken port is an OSError the caller can handle, with nothing leaked."""

from __future__ import annotations

import gc
import warnings

import pytest
from starlette.applications import Starlette

from gatherly.core.background import serve_in_thread


def test_a_taken_port_raises_and_leaves_no_open_socket() -> None:
    app = Starlette()
    with serve_in_thread(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(OSError, match="in use"), serve_in_thread(app, port=port):
                pass  # pragma: no cover - never reached
            # The young generations hold a socket the failed start would have leaked; a full
            # collection would walk the whole heap of a long-lived test worker (seconds).
            gc.collect(1)
        leaked = [w for w in caught if issubclass(w.category, ResourceWarning)]
        assert not leaked, [str(w.message) for w in leaked]
