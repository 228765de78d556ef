"""``codeq auth login --token-path``: where in the login answer the token is found."""

from __future__ import annotations

import pytest

from codeq.cli.login import dig

ANSWER = {"data": {"tokens": ["first", "second"]}}


def test_names_and_list_indexes_lead_to_the_value() -> None:
    assert dig(ANSWER, "data.tokens.1") == "second"


@pytest.mark.parametrize("path", ["data.missing", "data.tokens.2", "data.tokens.-1",
                                  "data.tokens.\u00b2"])  # a digit to str.isdigit, no index
def test_a_path_that_leads_nowhere_is_a_key_error_naming_it(path: str) -> None:
    with pytest.raises(KeyError) as raised:
        dig(ANSWER, path)
    assert raised.value.args == (path,)
