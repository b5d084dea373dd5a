"""The last parsed Tablefile, kept in ``.state/`` and reused while the file is unchanged.

Parsing and validating TOML is most of what a no-op or ``-n`` costs on a large project
(about a second per 10,000 targets; unpickling the result takes a fifth of that). The
cache is keyed by the Tablefile's bytes and path and by the code that parses it, so an
edit, a move or a tablemake upgrade all parse afresh; nothing is trusted by timestamp.
A cache that cannot be read or written is ignored: it only ever saves time.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from contextlib import suppress
from pathlib import Path

from tablemake import params, tablefile
from tablemake.tablefile import STATE_DIR, Tablefile, load_tablefile, parse_tablefile

CACHE_NAME = "tablefile.pickle"
# the modules whose code parses the file or defines the classes pickled: a change to either
# (an upgrade, a developer's edit) must not bring back objects of the old shape
PARSER_MODULES = (tablefile, params)


def load_tablefile_cached(path: Path) -> Tablefile:
    """``load_tablefile``, answered from ``.state/tablefile.pickle`` when it holds the
    parse of exactly these bytes."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return load_tablefile(path)  # it words the error
    key = _cache_key(path, data)
    cache = path.parent / STATE_DIR / CACHE_NAME
    cached = _read(cache, key)
    if cached is not None:
        return cached
    parsed = parse_tablefile(text, path)
    _write(cache, key, parsed)
    return parsed


def _cache_key(path: Path, data: bytes) -> bytes:
    parser = [Path(module.__file__ or "").read_bytes() for module in PARSER_MODULES]
    digest = hashlib.sha256()
    for part in (sys.version.encode(), *parser, str(path).encode(), data):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def _read(cache: Path, key: bytes) -> Tablefile | None:
    try:
        with cache.open("rb") as stream:
            if pickle.load(stream) != key:
                return None
            loaded = pickle.load(stream)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError):
        return None
    return loaded if isinstance(loaded, Tablefile) else None


def _write(cache: Path, key: bytes, parsed: Tablefile) -> None:
    """Written aside and renamed: a reader never sees half a cache, and two processes
    writing at once leave one whole copy."""
    partial = cache.with_name(f"{CACHE_NAME}.{os.getpid()}.tmp")
    try:
        cache.parent.mkdir(exist_ok=True)
        with partial.open("wb") as stream:
            pickle.dump(key, stream, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(parsed, stream, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(cache)
    except (OSError, pickle.PicklingError, AttributeError, TypeError):  # unpicklable: no cache
        with suppress(OSError):  # e.g. a file where .state/ should be: reported later
            partial.unlink(missing_ok=True)
