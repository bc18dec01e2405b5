"""The ptychodus side of ptychodus-pinn-torch.

- :mod:`.hookspecs`: the pluggy hooks a third-party reconstructor plugin implements;
- :mod:`.plugins`: discovery of plugins through the ``ptychodus_pinn_torch.plugins`` entry-point
  group and fail-open hook calls;
- :mod:`.install`: :func:`~.install.install` puts those hooks into ptychodus 1.7;
- :mod:`.plugin`: this package's own hook implementations (the ``PtychoPINN-PyTorch`` library);
- :mod:`.library`, :mod:`.reconstructor`, :mod:`.settings`, :mod:`.export`, :mod:`.conversion`,
  :mod:`.worker`: the reconstructor library itself.

Importing this package imports nothing heavy; the submodules import ptychodus (and torch only
where they run the engine).
"""
