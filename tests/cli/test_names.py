"""Names without packaging: ``names.canonical`` is PEP 503's normalisation, exactly as
``packaging.utils.canonicalize_name`` spells it, so that a command that parses no requirement
(uninstall, rollback, gc) never imports packaging."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from txtool.names import canonical

_NAMEISH = st.text(alphabet=st.sampled_from("aZ09._-~ İß"), max_size=24)


@given(st.one_of(_NAMEISH, st.text(max_size=24)))
def test_canonical_is_packagings_canonicalize_name(name: str) -> None:
    assert canonical(name) == canonicalize_name(name)


def test_a_tool_name_is_checked_without_packaging() -> None:
    code = (
        "import sys; from txtool import names; print(names.tool_name('Foo.Bar_baz'),"
        " sorted(m for m in sys.modules if m.split('.')[0] == 'packaging'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["foo-bar-baz", "[]"]
    # A requirement is parsed by packaging, imported when one is.
    code = "from txtool import names; print(names.requirement('Foo[x]>=1').name)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Foo"
