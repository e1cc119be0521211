"""defaults/main.yml, meta/argument_specs.yml and the role README agree, for every role, and
the checker catches each way they can drift (on a scratch role)."""

from __future__ import annotations

import shutil
import textwrap

import pytest

from primage import roles

ROLES = roles.discover()


def test_the_collection_has_its_roles():
    assert {"kubernetes", "oneclient", "registry", "htc_batch", "jupyter"} <= {r.name for r in ROLES}


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_role_defaults_specs_and_readme_agree(role):
    assert roles.agreement_problems(role) == []
    assert role.scenarios(), f"{role.name} has no Molecule scenario"


@pytest.fixture
def scratch_role(tmp_path):
    path = tmp_path / "demo"
    (path / "tasks").mkdir(parents=True)
    (path / "defaults").mkdir()
    (path / "meta").mkdir()
    (path / "tasks" / "main.yml").write_text("---\n[]\n")
    (path / "defaults" / "main.yml").write_text("---\ndemo_port: 8080\n")
    (path / "meta" / "argument_specs.yml").write_text(
        textwrap.dedent("""\
        ---
        argument_specs:
          main:
            short_description: Demo.
            options:
              demo_port:
                type: int
                default: 8080
                description: Port.
              demo_token:
                type: str
                required: true
                no_log: true
                description: Secret.
        """)
    )
    role = roles.Role("demo", path)
    (path / "README.md").write_text(f"# demo\n\n{roles.BEGIN_MARK}\n{roles.END_MARK}\n")
    (path / "README.md").write_text(roles.readme_with_options(role))
    assert roles.agreement_problems(role) == []
    return role


def messages(role):
    return [p.message for p in roles.agreement_problems(role)]


def test_a_default_that_differs_from_its_spec_is_caught(scratch_role):
    (scratch_role.path / "defaults" / "main.yml").write_text("---\ndemo_port: 9090\n")
    assert messages(scratch_role) == ["default of 'demo_port' is 8080 here but 9090 in defaults/main.yml"]


def test_a_misspelled_variable_is_caught(scratch_role):
    (scratch_role.path / "defaults" / "main.yml").write_text("---\ndemo_port: 8080\ndemo_prot: 1\n")
    assert messages(scratch_role) == ["'demo_prot' has a default but is not in meta/argument_specs.yml"]


def test_an_unprefixed_variable_is_caught(scratch_role):
    (scratch_role.path / "defaults" / "main.yml").write_text("---\ndemo_port: 8080\nport: 1\n")
    assert "variable 'port' lacks the role prefix 'demo_'" in messages(scratch_role)


def test_a_required_secret_with_a_default_is_caught(scratch_role):
    (scratch_role.path / "defaults" / "main.yml").write_text("---\ndemo_port: 8080\ndemo_token: changeme\n")
    assert "'demo_token' is required, so it must have no default" in messages(scratch_role)


def test_a_stale_readme_is_caught(scratch_role):
    specs = scratch_role.specs_file.read_text().replace("description: Port.", "description: Listening port.")
    scratch_role.specs_file.write_text(specs)
    assert messages(scratch_role) == ["options section is out of date with meta/argument_specs.yml; run `primage docs`"]
    shutil.rmtree(scratch_role.path / "defaults")
    assert "option 'demo_port' is not required but has no value in defaults/main.yml" in messages(scratch_role)
