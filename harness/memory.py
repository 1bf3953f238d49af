"""Exact, device-independent accounting of the memory autograd keeps for the backward pass.

``SavedTensorMeter`` installs ``torch.autograd.graph.saved_tensors_hooks``: every tensor an op
saves for its backward is counted once per storage while any graph holds it, and the peak of
that live total is recorded. It measures activation memory (what grows with T under BPTT),
not parameters, gradients, optimizer state or temporaries, and it is the same number on a CPU
and a GPU; use ``torch.cuda.max_memory_allocated`` for the whole picture on a GPU.
"""

from __future__ import annotations

import weakref

import torch


class _Packed:
    __slots__ = ("tensor", "key", "meter", "__weakref__")

    def __init__(self, tensor: torch.Tensor, key, meter: SavedTensorMeter):
        self.tensor, self.key, self.meter = tensor, key, meter


class SavedTensorMeter:
    """Context manager: ``live_bytes`` and ``peak_bytes`` of tensors saved for backward."""

    def __init__(self) -> None:
        self.live_bytes = 0
        self.peak_bytes = 0
        self._refs: dict[tuple, int] = {}  # storage key -> number of packed handles alive
        self._sizes: dict[tuple, int] = {}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, t: torch.Tensor):
        if t.layout != torch.strided or t.device.type == "meta":
            return t
        st = t.untyped_storage()
        key = (st.data_ptr(), t.device.type, t.device.index)
        if self._refs.get(key, 0) == 0:
            self._sizes[key] = st.nbytes()
            self.live_bytes += st.nbytes()
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        self._refs[key] = self._refs.get(key, 0) + 1
        packed = _Packed(t, key, self)
        weakref.finalize(packed, SavedTensorMeter._release, weakref.ref(self), key)
        return packed

    @staticmethod
    def _release(meter_ref, key) -> None:
        meter = meter_ref()
        if meter is None:
            return
        meter._refs[key] -= 1
        if meter._refs[key] == 0:
            meter.live_bytes -= meter._sizes.pop(key)
            del meter._refs[key]

    @staticmethod
    def _unpack(packed):
        return packed.tensor if isinstance(packed, _Packed) else packed

    def __enter__(self) -> SavedTensorMeter:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
