"""Put this package's plugin hooks into ptychodus 1.7.

ptychodus 1.7 builds its reconstructor libraries as a literal list inside ``ModelCore`` and its
GUI panels as a literal list inside ``ControllerCore``. :func:`install` wraps the two
constructors that receive those lists:

- ``ptychodus.model.processing.core.ProcessingCore.__init__``: appends the libraries of every
  plugin's ``reconstructor_libraries`` hook to ``algorithm_libraries`` (before ptychodus reads
  ``settings.ini``, so settings created by plugins are loaded and saved like built-in ones);
- ``ptychodus.model.core.ModelCore._batch_mode_reconstruct``: a missing model file of one of
  our reconstructors is one clear line instead of a traceback (:mod:`.batch_checks`);
- ``ptychodus.controller.processing.core.ProcessingController.__init__`` (GUI only): appends
  each plugin's panel factory to ``view_controller_factories``. The controller module imports
  PyQt5, so it is wrapped lazily: at once if it is already imported, otherwise by an import hook
  the moment ptychodus imports it. Batch mode therefore never imports Qt on our account.

Both wrappers are idempotent (installing twice wraps once) and fail open: if ptychodus changes
a signature, or a plugin raises, the error is logged and ptychodus starts without that plugin.
It must run before ``ModelCore(...)``; the autoload module that a normal install places in
``ptychodus/plugins`` calls it from the first step of ``ModelCore.__init__``.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import inspect
import logging
import sys
import weakref
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from ptychodus_pinn_torch.host import batch_checks, plugins

logger = logging.getLogger(__name__)

__all__ = ["install", "is_installed", "libraries_of", "uninstall"]

MODEL_MODULE = "ptychodus.model.processing.core"
MODEL_CLASS = "ProcessingCore"
GUI_MODULE = "ptychodus.controller.processing.core"
GUI_CLASS = "ProcessingController"
_MARK = "__ptychodus_pinn_torch_wrapped__"

# processing_api -> [(plugin name, library)] for the GUI hook and for tests
_LIBRARIES: weakref.WeakKeyDictionary[Any, list[tuple[str, Any]]] = weakref.WeakKeyDictionary()
_finder: _ControllerImportHook | None = None


def libraries_of(processing_api: Any) -> list[Any]:
    """The plugin libraries that :func:`install` added to the ProcessingCore owning
    ``processing_api`` (empty if none)."""
    return [library for _, library in _LIBRARIES.get(processing_api, [])]


def _developer_mode() -> bool:
    return logging.getLogger("ptychodus.model.core").getEffectiveLevel() <= logging.DEBUG


def _wrap_processing_core(original: Callable[..., None]) -> Callable[..., None]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(*args: Any, **kwargs: Any) -> None:
        added: list[tuple[str, Any]] = []
        try:
            bound = signature.bind(*args, **kwargs)
            existing: Sequence[Any] = bound.arguments["algorithm_libraries"]
            added = plugins.collect_libraries(
                bound.arguments["settings_registry"],
                _developer_mode(),
                existing_names={lib.name for lib in existing},
            )
            if added:
                bound.arguments["algorithm_libraries"] = [*existing, *(lib for _, lib in added)]
                args, kwargs = bound.args, bound.kwargs
            for plugin_name, library in added:
                names = ", ".join(f"{library.name} / {r.name}" for r in library)
                logger.info("ptychodus-pinn-torch: plugin %r added %s", plugin_name,
                            names or f"{library.name} (no reconstructors)")
        except Exception:
            logger.exception("ptychodus-pinn-torch: could not add plugin reconstructors; "
                             "ptychodus continues without them")
            added = []
        original(*args, **kwargs)
        if added:
            try:
                _LIBRARIES[args[0].processing_api] = added
                product_api = signature.bind(*args, **kwargs).arguments.get("product_api")
                for _, library in added:  # HOST-170: the probe for importing a TF model
                    if product_api is not None and hasattr(library, "set_product_api"):
                        library.set_product_api(product_api)
            except Exception:
                logger.exception("ptychodus-pinn-torch: could not record plugin libraries")

    setattr(__init__, _MARK, original)
    return __init__


def _wrap_processing_controller(original: Callable[..., None]) -> Callable[..., None]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(*args: Any, **kwargs: Any) -> None:
        try:
            bound = signature.bind(*args, **kwargs)
            added = _LIBRARIES.get(bound.arguments["processing_api"], [])
            if added:
                factories = plugins.collect_view_controller_factories(
                    added, bound.arguments["file_dialog_factory"]
                )
                if factories:
                    bound.arguments["view_controller_factories"] = [
                        *bound.arguments["view_controller_factories"], *factories
                    ]
                    args, kwargs = bound.args, bound.kwargs
                    logger.info("ptychodus-pinn-torch: added %d reconstructor panel(s)",
                                len(factories))
        except Exception:
            logger.exception("ptychodus-pinn-torch: could not add plugin panels; "
                             "ptychodus continues without them")
        original(*args, **kwargs)

    setattr(__init__, _MARK, original)
    return __init__


def _wrap_class(module: ModuleType, class_name: str,
                wrapper: Callable[[Callable[..., None]], Callable[..., None]],
                required: tuple[str, ...]) -> bool:
    """Wrap ``module.class_name.__init__`` once. Returns True when wrapped (now or before)."""
    cls = getattr(module, class_name, None)
    if cls is None:
        logger.error("ptychodus-pinn-torch: %s.%s not found; hook not installed",
                     module.__name__, class_name)
        return False
    current = cls.__init__
    if hasattr(current, _MARK):
        return True
    params = inspect.signature(current).parameters
    missing = [p for p in required if p not in params]
    if missing:
        logger.error("ptychodus-pinn-torch: %s.__init__ has no parameter(s) %s (unsupported "
                     "ptychodus version?); hook not installed", class_name, missing)
        return False
    cls.__init__ = wrapper(current)
    logger.debug("ptychodus-pinn-torch: wrapped %s.%s.__init__", module.__name__, class_name)
    return True


def _unwrap_class(module_name: str, class_name: str) -> None:
    module = sys.modules.get(module_name)
    cls = getattr(module, class_name, None) if module is not None else None
    if cls is not None and hasattr(cls.__init__, _MARK):
        cls.__init__ = getattr(cls.__init__, _MARK)


def _install_gui_now(module: ModuleType) -> bool:
    return _wrap_class(module, GUI_CLASS, _wrap_processing_controller,
                       ("processing_api", "file_dialog_factory", "view_controller_factories"))


class _ControllerImportHook(importlib.abc.MetaPathFinder):
    """Wraps ProcessingController right after ptychodus imports its module."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != GUI_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original_exec(module)
            try:
                _install_gui_now(module)
            except Exception:
                logger.exception("ptychodus-pinn-torch: GUI hook not installed")

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _pyqt5_available() -> bool:
    from importlib.util import find_spec

    try:
        return find_spec("PyQt5") is not None
    except (ImportError, ValueError):
        return False


def install(*, gui: bool | None = None) -> bool:
    """Add the plugin hooks to ptychodus. Idempotent; never raises.

    :param gui: also hook the GUI's panel list; None (default) = when PyQt5 is importable.
    :return: True when the model-side hook is in place.
    """
    global _finder
    already = is_installed()
    try:
        module = importlib.import_module(MODEL_MODULE)
        ok = _wrap_class(module, MODEL_CLASS, _wrap_processing_core,
                         ("settings_registry", "algorithm_libraries"))
    except Exception:
        logger.exception("ptychodus-pinn-torch: model hook not installed; ptychodus continues")
        return False
    batch_checks.install()  # fail-open: logs and returns False on its own
    try:
        if gui is None:
            gui = _pyqt5_available()
        if gui:
            if GUI_MODULE in sys.modules:
                _install_gui_now(sys.modules[GUI_MODULE])
            elif _finder is None:
                _finder = _ControllerImportHook()
                sys.meta_path.insert(0, _finder)
    except Exception:
        logger.exception("ptychodus-pinn-torch: GUI hook not installed; ptychodus continues")
    if ok and not already:
        logger.info("ptychodus-pinn-torch: plugin hooks installed into ptychodus")
    elif ok:
        logger.debug("ptychodus-pinn-torch: plugin hooks already installed")
    return ok


def is_installed() -> bool:
    """True when ``ProcessingCore.__init__`` carries our wrapper."""
    module = sys.modules.get(MODEL_MODULE)
    cls = getattr(module, MODEL_CLASS, None) if module is not None else None
    return cls is not None and hasattr(cls.__init__, _MARK)


def uninstall() -> None:
    """Undo :func:`install` (for tests): restore both constructors and drop the import hook."""
    global _finder
    _unwrap_class(MODEL_MODULE, MODEL_CLASS)
    _unwrap_class(GUI_MODULE, GUI_CLASS)
    batch_checks.uninstall()
    if _finder is not None:
        try:
            sys.meta_path.remove(_finder)
        except ValueError:
            pass
        _finder = None
