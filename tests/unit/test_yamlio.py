"""YAML reading: duplicate keys are refused with both lines, syntax errors name the line."""

from __future__ import annotations

import pytest

from primage import yamlio
from primage.errors import PrimageError


def test_duplicate_keys_are_refused_with_both_lines():
    with pytest.raises(PrimageError) as caught:
        yamlio.load_text("a: 1\nb:\n  c: 1\n  c: 2\n", "x.yaml")
    problem = caught.value.problem
    assert (problem.file, problem.line, problem.field) == ("x.yaml", 4, "c")
    assert problem.message.startswith("duplicate key 'c' (first defined on line 3)")


def test_syntax_errors_name_the_line():
    with pytest.raises(PrimageError) as caught:
        yamlio.load_text("a: 1\nb: [1, 2\nc: 3\n", "x.yaml")
    assert caught.value.problem.line == 3
    assert "YAML syntax error" in caught.value.problem.message


def test_line_index_points_at_keys_and_list_items():
    _, lines = yamlio.load_text("top:\n  items:\n    - name: a\n    - name: b\n", "x.yaml")
    assert lines.line_of("top", "items", 1, "name") == 4
    assert lines.line_of("top", "missing", "deeper") == 1  # the closest existing ancestor
