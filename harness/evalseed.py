"""The evaluation seed: a secret of the records tree, held by the harness (the referee) only.

Evaluation splits that are generated (ldpc frames, MNIST-1D sequences, held-out sentences, which
digits are validation and which test, ...) are built from a seed the submission cannot know:
``<runs>/.eval_secret`` (32 random bytes, hex, created once with mode 0600) keyed by HMAC-SHA256
with the trial's (workload, variant, study). Every submission of one study gets the same
evaluation seed, so their results are paired (the same evaluation noise); studies differ. A
workload instance built without a seed is training-only: it refuses to build evaluation splits.
Decision and limits: docs/reliability.md#evaluation-data.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_FILE = ".eval_secret"


def secret_path(runs: Path) -> Path:
    return Path(runs) / SECRET_FILE


def eval_secret(runs: Path) -> bytes:
    """The records tree's secret, created on first use (exclusively, mode 0600). A secret file
    readable by others is made private again; one that is empty or not hex is an error."""
    path = secret_path(runs)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():  # written aside, then linked in: readers never see a partial file
        tmp = path.with_name(f"{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)  # fails if another process created it first: theirs is kept
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ValueError(f"{path}: not an evaluation secret (expected 64 hex digits)")
    return key


def eval_seed(runs: Path, workload: str, variant: str, study: int | None) -> int:
    """The evaluation seed of (workload, variant, study) under ``runs`` (study None: ad-hoc
    runs): the same for every submission and trial of the study."""
    msg = f"{workload}/{variant}/{'adhoc' if study is None else int(study)}".encode()
    digest = hmac.new(eval_secret(runs), msg, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # 63 bits: a non-negative int64
