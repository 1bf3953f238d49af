"""Calibration of the snn ``default`` target and budget: ``benchmarks/calibrate.py`` for snn.

    python benchmarks/calibrate_snn.py --submissions bptt_surrogate --seeds 0 1 2 --steps 2000 \
        --hparams lr=3e-3 --tag=-bptt
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibrate import main  # noqa: E402

if __name__ == "__main__":
    main("snn")
