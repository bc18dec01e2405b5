"""Plugin discovery (pluggy, entry-point group) and fail-open hook calls."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import pluggy

from ptychodus_pinn_torch.host import hookspecs

logger = logging.getLogger(__name__)

__all__ = [
    "collect_libraries",
    "collect_view_controller_factories",
    "get_plugin_manager",
    "load_plugin",
    "reset_plugin_manager",
]

_manager: pluggy.PluginManager | None = None


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return manager


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager with every plugin of :data:`hookspecs.ENTRY_POINT_GROUP`.

    Entry points are loaded one by one: a plugin that fails to import or register is logged
    and skipped (fail open), the others still load.
    """
    global _manager
    if _manager is None:
        manager = _new_manager()
        for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP):
            if manager.get_plugin(ep.name) is not None or manager.is_blocked(ep.name):
                continue
            try:
                manager.register(ep.load(), name=ep.name)
            except Exception:
                logger.exception(
                    "ptychodus-pinn-torch: plugin %r (%s) could not be loaded; skipped",
                    ep.name, ep.value,
                )
        _manager = manager
    return _manager


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests): the next call rediscovers the entry points."""
    global _manager
    _manager = None


def load_plugin(name: str) -> pluggy.PluginManager:
    """A fresh manager holding only the entry point ``name`` of the plugin group.

    Raises ValueError naming the plugin and listing the registered ones when there is none.
    Used by the conformance suite to test one plugin in isolation.
    """
    found = [ep for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        known = sorted(ep.name for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP))
        raise ValueError(
            f"backend {name!r} is not registered in entry-point group "
            f"{hookspecs.ENTRY_POINT_GROUP!r}; registered: {known or 'none'}. Install the "
            "plugin's package (non-editable or editable) or pick one of those."
        )
    manager = _new_manager()
    manager.register(found[0].load(), name=name)
    return manager


def _call_each(
    manager: pluggy.PluginManager, hook_name: str, kwargs: dict[str, Any]
) -> list[tuple[str, Any]]:
    """Call ``hook_name`` on every plugin separately; returns ``[(plugin name, result)]``.

    A plugin that raises is logged and left out (fail open). None results are dropped.
    """
    hook_caller = getattr(manager.hook, hook_name)
    results: list[tuple[str, Any]] = []
    for impl in reversed(hook_caller.get_hookimpls()):  # registration order
        plugin_name = manager.get_name(impl.plugin) or repr(impl.plugin)
        try:
            result = impl.function(**{k: kwargs[k] for k in impl.argnames})
        except Exception:
            logger.exception(
                "ptychodus-pinn-torch: hook %s of plugin %r failed; its contribution is skipped",
                hook_name, plugin_name,
            )
            continue
        if result is not None:
            results.append((plugin_name, result))
    return results


def collect_libraries(
    settings_registry: Any,
    is_developer_mode_enabled: bool,
    *,
    manager: pluggy.PluginManager | None = None,
    existing_names: set[str] | None = None,
) -> list[tuple[str, Any]]:
    """Libraries from every plugin's ``reconstructor_libraries`` hook, checked.

    Returns ``[(plugin name, library)]``. A result that is not a ``ReconstructorLibrary``, a
    name containing ``_`` or a name already taken (casefolded, also against
    ``existing_names``) is logged as an error and skipped.
    """
    from ptychodus.api.reconstruct import ReconstructorLibrary

    manager = get_plugin_manager() if manager is None else manager
    taken = {n.casefold() for n in (existing_names or set())}
    accepted: list[tuple[str, Any]] = []
    kwargs = {
        "settings_registry": settings_registry,
        "is_developer_mode_enabled": is_developer_mode_enabled,
    }
    for plugin_name, result in _call_each(manager, "reconstructor_libraries", kwargs):
        try:
            libraries = [result] if isinstance(result, ReconstructorLibrary) else list(result)
        except TypeError:  # neither a library nor a sequence: skip this plugin only
            logger.error("ptychodus-pinn-torch: plugin %r returned %r, not a sequence of "
                         "ReconstructorLibrary; skipped", plugin_name, result)
            continue
        for library in libraries:
            problem = _library_problem(library, taken, ReconstructorLibrary)
            if problem:
                logger.error("ptychodus-pinn-torch: plugin %r: %s; skipped", plugin_name, problem)
                continue
            taken.add(library.name.casefold())
            accepted.append((plugin_name, library))
    return accepted


def _library_problem(library: Any, taken: set[str], base: type) -> str:
    if not isinstance(library, base):
        return f"{library!r} is not a ptychodus ReconstructorLibrary"
    name = library.name
    if not isinstance(name, str) or not name:
        return f"library name {name!r} is empty"
    if "_" in name:
        return f"library name {name!r} contains '_' (ptychodus splits algorithm keys at '_')"
    if name.casefold() in taken:
        return f"library name {name!r} is already taken"
    return ""


def collect_view_controller_factories(
    libraries: list[tuple[str, Any]],
    file_dialog_factory: Any,
    *,
    manager: pluggy.PluginManager | None = None,
) -> list[Any]:
    """GUI panel factories for ``libraries`` from the ``reconstructor_view_controller_factories``
    hook; each plugin is asked only about the libraries it contributed. Fail open."""
    manager = get_plugin_manager() if manager is None else manager
    factories: list[Any] = []
    for plugin_name, library in libraries:
        plugin = manager.get_plugin(plugin_name)
        if plugin is None:
            continue
        impl = getattr(plugin, "reconstructor_view_controller_factories", None)
        if not callable(impl):
            continue
        factory = _guarded(
            impl, plugin_name, library=library, file_dialog_factory=file_dialog_factory
        )
        if factory is not None:
            factories.append(factory)
    return factories


def _guarded(fn: Callable[..., Any], plugin_name: str, **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except Exception:
        logger.exception(
            "ptychodus-pinn-torch: GUI hook of plugin %r failed; ptychodus shows no panel for it",
            plugin_name,
        )
        return None
