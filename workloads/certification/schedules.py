"""eps ramps for certified training (docs/methods.md#eps-ramps), as functions of the optimizer step.

- ``linear_eps``: auto_LiRPA's ``LinearScheduler``: 0 until ``start``, then linear to
  ``eps_max`` at ``start + length``, constant after.
- ``smoothed_eps``: auto_LiRPA's ``SmoothedScheduler`` (same shape as TAPS's
  ``Scheduler(mode="smooth")``): a polynomial (power 4) over the first quarter of the ramp, then
  linear, with a continuous slope at the joint.

Steps are optimizer steps (the sources count batches from an epoch offset; a submission turns
its epoch fractions into steps).
"""

from __future__ import annotations

import math


def _check(start: int, length: int, eps_max: float) -> None:
    if start < 0 or length < 1 or not (math.isfinite(eps_max) and eps_max >= 0):
        raise ValueError(f"bad eps ramp: start={start}, length={length}, eps_max={eps_max}")


def linear_eps(step: int, start: int, length: int, eps_max: float) -> float:
    _check(start, length, eps_max)
    if step <= start:
        return 0.0
    return min(eps_max, eps_max * (step - start) / length)


def smoothed_eps(
    step: int, start: int, length: int, eps_max: float, beta: float = 4.0, mid: float = 0.25
) -> float:
    """s0 = start, s1 = start + length, s_m = s0 + floor(mid (s1 - s0)),
    alpha = eps_max / ((s1 - s_m) beta (s_m - s0)^(beta-1) + (s_m - s0)^beta);
    eps = alpha (s - s0)^beta on (s0, s_m), then linear from eps(s_m) to eps_max at s1."""
    _check(start, length, eps_max)
    s0, s1 = start, start + length
    sm = s0 + int(math.floor(mid * (s1 - s0)))
    if step <= s0:
        return 0.0
    if sm == s0:  # ramp too short for the polynomial part
        return linear_eps(step, start, length, eps_max)
    alpha = eps_max / ((s1 - sm) * beta * (sm - s0) ** (beta - 1) + (sm - s0) ** beta)
    if step < sm:
        return alpha * (step - s0) ** beta
    eps_m = alpha * (sm - s0) ** beta
    return min(eps_m + (eps_max - eps_m) * (step - sm) / (s1 - sm), eps_max)
