"""Example third-party ports, checked by ``trivd conform --port conformance.examples.<module>``.

* :mod:`conformance.examples.torch_port` - an independent plain-PyTorch (``torch.nn.Module``,
  NCHW inside) implementation of ``pixelwise_warp``, ``factorized_kernels`` and
  ``cell_step`` for ``tsru_c``/``tsru_p``/``tsru_s``; passes every record it provides.
* :mod:`conformance.examples.torch_port_broken` - the same with the classic porting bug
  of reading the warp taps as ``q = n*k + m`` (transposed); the runner must report it.

Neither imports ``trivd_core``: they are written from the documented conventions only.
"""
