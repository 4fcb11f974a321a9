"""PyTorch as a backend: a model in eval mode behind the runtime's :class:`~edgefer.runtime.base.Backend`.

Registered lazily in ``edgefer.runtime.loader`` as ``"torch"`` (a ``.safetensors`` checkpoint opens on
it), so the parity gate, the bench's reference and its torch runner call PyTorch like any other runtime
and one comparator (``edgefer.convert.parity``) compares any two backends. The device runtime never
imports this module unless the torch backend is asked for.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgefer.errors import BackendUnavailable, InputError, ModelError, one_line
from edgefer.runtime.base import Backend, GraphIO, check_graph
from edgefer.spec import ModelSpec
from edgefer.train.models.weights import load_weights

#: precision -> the dtype the model and its input are cast to.
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.float32}
#: precision -> autocast dtype: bf16 is PyTorch's autocast over float32 weights (convolutions and matrix
#: products in bf16), as the bench times it.
AUTOCAST = {"bf16": torch.bfloat16}


class TorchBackend(Backend):
    """A PyTorch model on the CPU (or a CUDA device); logits always come back as float32."""

    name = "torch"

    def __init__(self, model: str | os.PathLike | nn.Module, *, spec: ModelSpec | None = None,
                 threads: int | None = None, device: str = "cpu", precision: str = "fp32"):
        """``model``: a ``.safetensors`` checkpoint written by edgefer (its spec from the header unless ``spec``
        is given), or a torch module with its ``spec``. ``precision`` casts the model (in place) and each
        input; ``threads`` sets torch's intra-op thread count, which is process-wide."""
        if isinstance(model, nn.Module):
            if spec is None:
                raise InputError("TorchBackend: a torch module needs its spec (spec=)")
            module, path = model, spec.model
        else:
            module, stored = load_weights(model)
            spec, path = spec or stored, Path(model)
        if precision not in DTYPES:
            raise BackendUnavailable(f"{path}: the torch backend runs {', '.join(DTYPES)}, not {precision!r}")
        self.path = path
        self._device = _torch_device(device)
        self._dtype = DTYPES[precision]
        self._autocast = AUTOCAST.get(precision)
        if threads:
            torch.set_num_threads(threads)
        self.model = module.eval().to(self._device, self._dtype)
        self._check_against_model(spec, path)
        super().__init__(spec, device=str(self._device), precision=precision, threads=threads)

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        model = self.model
        if model is None:  # closed by another thread meanwhile
            self._raise_closed()
        with torch.inference_mode(), self._autocasting():
            inputs = torch.from_numpy(pixels)
            if self._dtype is not torch.float32 or self._device.type != "cpu":
                inputs = inputs.to(self._device, self._dtype)
            return model(inputs).float().cpu().numpy()

    def _autocasting(self):
        if self._autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self._device.type, dtype=self._autocast)

    def _release(self) -> None:
        self.model = None

    def _check_against_model(self, spec: ModelSpec, path) -> None:
        """The module has no static graph to read: run one zero image through it and check the spec against
        what comes out (one score per label)."""
        probe = torch.zeros((1, *spec.input_shape), dtype=self._dtype, device=self._device)
        try:
            with torch.inference_mode(), self._autocasting():
                out = self.model(probe)
        except Exception as err:  # noqa: BLE001 - any failure means the spec's input does not fit the model
            raise ModelError(f"{path}: the PyTorch model fails on {spec.input_shape} inputs "
                             f"({one_line(err, typed=True)})") from None
        check_graph(spec, GraphIO({spec.input_name: (None, *spec.input_shape)},
                                  {spec.output_name: tuple(out.shape)}), path)


def _torch_device(device: str) -> torch.device:
    try:
        found = torch.device(device)
    except RuntimeError as err:
        raise BackendUnavailable(f"torch device {device!r} unknown ({one_line(err)})") from None
    if found.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable(f"torch device {device!r}: torch sees no CUDA GPU here")
    if found.type not in ("cpu", "cuda"):
        raise BackendUnavailable(f"torch device {device!r}: edgefer runs torch on cpu or cuda")
    return found
