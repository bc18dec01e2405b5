"""The spec conformance suite.

Every normative rule in ``specs/*.md`` is a heading ``### PREFIX-NNN: title``; every test in
this package that proves one carries ``@pytest.mark.spec("PREFIX-NNN", ...)``. Run it with
``pinn-torch conformance`` (a table rule -> pass/fail; non-zero exit on a failing rule or on a
rule with no test) or ``pytest --pyargs ptychodus_pinn_torch.conformance``.

The HOST rules take the reconstructor library under test as a parameter (``--backend NAME``
or ``$PINN_TORCH_BACKEND``: an entry point of the ``ptychodus_pinn_torch.plugins`` group,
default ``ptychodus-pinn-torch``), so the suite can be pointed at any plugin registered through
our hook.
"""

from ptychodus_pinn_torch.conformance.rules import Rule, find_specs_dir, load_rules

#: entry point (group ``ptychodus_pinn_torch.plugins``) whose library the HOST rules test
DEFAULT_BACKEND = "ptychodus-pinn-torch"
#: environment variable naming another backend; works also where ``--backend`` cannot be
#: registered (``pytest --pyargs ptychodus_pinn_torch.conformance`` loads the suite's conftest
#: too late for command-line options)
BACKEND_ENV = "PINN_TORCH_BACKEND"

__all__ = ["BACKEND_ENV", "DEFAULT_BACKEND", "Rule", "find_specs_dir", "load_rules"]
