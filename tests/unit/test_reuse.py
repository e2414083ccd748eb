"""Outputs reused from the last run (makeflux.reuse): a reusing render always writes exactly what
a render from scratch writes, whatever changed (a value deep in the data, an included template,
a file a plugin filter reads, the environment, a template that changes shared data), and it
does reuse what nothing changed."""

from __future__ import annotations

import pickle
import random
import sys
from pathlib import Path

import pytest
import yaml

from makeflux import reuse
from tests.conftest import REPO_ROOT, run_cli

sys.path.insert(0, str(REPO_ROOT / "bench"))
from generate import generate

SETTINGS = """\
[makeflux]
inputs = ["templates"]
output = "out"
data = ["cluster.yaml"]
import_paths = ["scripts"]
loaders = ["plugin:Plugin"]
exclude_patterns = ["*.partial.j2"]
"""

PLUGIN = """\
from pathlib import Path


class Plugin:
    def __init__(self, data):
        pass

    def filters(self):
        return [from_file]


def from_file(name):
    return Path(name).read_text().strip()
"""

TEMPLATES = {
    "plain.yaml.j2": "name: {{ cluster.name }}\n",
    "deep.yaml.j2": "replicas: {{ apps.web.replicas }}\nimage: {{ apps['web'].image }}\n",
    "loop.yaml.j2": "{% for app, spec in apps | dictsort %}{{ app }}: {{ spec.replicas }}\n"
    "{% endfor %}",
    "include.yaml.j2": "{% include 'part.partial.j2' %}",
    "part.partial.j2": "domain: {{ cluster.domain }}\n",
    "macro.yaml.j2": "{% import 'macros.partial.j2' as m %}{{ m.line(cluster.name) }}\n",
    "macros.partial.j2": "{% macro line(x) %}{{ x }}-{{ suffix }}{% endmacro %}",
    "plugin.yaml.j2": "secret: {{ 'token.txt' | from_file }}\n",
    "env.yaml.j2": "user: {{ env.REUSE_TEST_VALUE }}\n",
    "dynamic.yaml.j2": "{% include which %}",
    "one.partial.j2": "one {{ cluster.name }}\n",
    "two.partial.j2": "two\n",
    "byname.yaml.j2": "{{ apps | dictsort | map('first') | join(',') }}\n"
    "{{ ['token.txt'] | map('from_file') | join }}\n",
    "absent.yaml.j2": "{{ 'set' if apps.cache is defined else 'unset' }}\n",
}

DATA = {
    "cluster": {"name": "home", "domain": "example.com"},
    "apps": {"web": {"replicas": 1, "image": "nginx"}, "db": {"replicas": 2, "image": "pg"}},
    "suffix": "a",
    "which": "one.partial.j2",
}


def _delimited(text: str) -> str:
    """Written above in Jinja's usual delimiters, for reading; makeflux's are cluster-template's."""
    for jinja, ours in (("{{", "#{"), ("}}", "}#"), ("{%", "#%"), ("%}", "%#")):
        text = text.replace(jinja, ours)
    return text


def _project(root: Path, templates: dict[str, str] = TEMPLATES) -> Path:
    (root / "templates").mkdir(parents=True)
    for name, text in templates.items():
        (root / "templates" / name).write_text(_delimited(text))
    (root / "scripts").mkdir()
    (root / "scripts" / "plugin.py").write_text(PLUGIN)
    (root / "token.txt").write_text("first\n")
    (root / "makeflux.toml").write_text(SETTINGS)
    (root / "cluster.yaml").write_text(yaml.safe_dump(DATA))
    return root


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


def _render(project: Path, *args: str) -> str:
    result = run_cli(["-v", "render", "--no-lint", "--force", *args], project)
    assert result.exit_code == 0, result.output
    return result.stderr


def _reused(stderr: str) -> int:
    line = next(line for line in stderr.splitlines() if "template(s) rendered" in line)
    return int(line.split(", ")[1].split()[0])


def _from_scratch(project: Path, tmp_path: Path, *args: str) -> dict[str, str]:
    """What a render without any cache writes, into a directory of its own."""
    fresh = tmp_path / "fresh"
    result = run_cli(["--no-cache", "render", "--no-lint", "-o", str(fresh), *args], project)
    assert result.exit_code == 0, result.output
    return _tree(fresh)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAKEFLUX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("REUSE_TEST_VALUE", "alice")
    monkeypatch.delenv("MAKEFLUX_JOBS", raising=False)
    return _project(tmp_path / "project")


def _set(project: Path, change: dict) -> None:
    data = yaml.safe_load((project / "cluster.yaml").read_text())
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        target = data
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    (project / "cluster.yaml").write_text(yaml.safe_dump(data))


def test_an_unchanged_run_reuses_what_it_can_and_renders_the_rest(project: Path) -> None:
    _render(project)
    stderr = _render(project)
    # plugin.yaml (a plugin filter), env.yaml (the environment), dynamic.yaml (an include
    # named at render time) and byname.yaml (map names a plugin filter) always render.
    assert "4 template(s) rendered, 6 unchanged" in stderr


@pytest.mark.parametrize(
    ("change", "rendered"),
    [
        ({"apps.web.replicas": 5}, {"deep", "loop"}),
        ({"apps.db.image": "mariadb"}, {"loop"}),  # deep.yaml reads only apps.web
        ({"cluster.domain": "example.org"}, {"include"}),
        ({"cluster.name": "lab"}, {"plain", "macro"}),
        ({"suffix": "b"}, {"macro"}),  # read by the imported macro
        ({"apps.cache": {"replicas": 1}}, {"loop", "absent"}),
    ],
)
def test_a_changed_value_renders_exactly_the_templates_that_read_it(
    project: Path, tmp_path: Path, change: dict, rendered: set[str]
) -> None:
    _render(project)
    _render(project)
    _set(project, change)
    stderr = _render(project)
    always = 4  # see the test above
    assert f"{len(rendered) + always} template(s) rendered" in stderr
    assert _tree(project / "out") == _from_scratch(project, tmp_path)


def test_edited_partials_plugin_files_and_environment_are_followed(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _render(project)
    _render(project)
    (project / "templates/part.partial.j2").write_text("domain: changed\n")
    (project / "templates/macros.partial.j2").write_text(
        _delimited("{% macro line(x) %}{{ x }}+{{ suffix }}{% endmacro %}")
    )
    (project / "token.txt").write_text("second\n")
    monkeypatch.setenv("REUSE_TEST_VALUE", "bob")
    _set(project, {"which": "two.partial.j2"})
    _render(project)
    out = _tree(project / "out")
    assert out["include.yaml"] == "domain: changed\n"
    assert out["macro.yaml"] == "home+a\n"
    assert out["plugin.yaml"] == "secret: second\n"
    assert out["env.yaml"] == "user: bob\n"
    assert out["dynamic.yaml"] == "two\n"
    assert out == _from_scratch(project, tmp_path)


def test_set_overrides_are_values_like_any_other(project: Path, tmp_path: Path) -> None:
    _render(project)
    _render(project, "--set", "apps.web.replicas=9")
    assert _tree(project / "out")["deep.yaml"].startswith("replicas: 9\n")
    _render(project)
    assert _tree(project / "out")["deep.yaml"].startswith("replicas: 1\n")


def test_a_template_that_changes_shared_data_turns_reuse_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`append` changes a list other templates read: what they print depends on the order
    templates render in, so nothing is reused in such a project."""
    monkeypatch.setenv("MAKEFLUX_CACHE_DIR", str(tmp_path / "cache"))
    templates = {
        "a.yaml.j2": "{% set _ = items.append('x') %}a\n",
        "b.yaml.j2": "{{ items | length }}\n",
        "c.yaml.j2": "{{ other }}\n",
    }
    project = _project(tmp_path / "project", templates)
    (project / "cluster.yaml").write_text("items: [1]\nother: 1\n")
    _render(project)
    stderr = _render(project)
    assert "3 template(s) rendered, 0 unchanged" in stderr


def test_a_damaged_store_is_ignored(project: Path, tmp_path: Path) -> None:
    _render(project)
    (store,) = (tmp_path / "cache" / "outputs").iterdir()
    blob = bytearray(store.read_bytes())
    blob[40] ^= 0xFF
    store.write_bytes(bytes(blob))
    _set(project, {"apps.web.replicas": 3})
    stderr = _render(project)
    assert "10 template(s) rendered, 0 unchanged" in stderr
    assert _tree(project / "out") == _from_scratch(project, tmp_path)
    assert _reused(_render(project)) == 6


def test_random_value_changes_on_a_home_ops_shaped_tree_match_a_render_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bench's home-ops tree (macros, partials, loops, a plugin, two data files), with
    values changed at random between reusing renders, forked workers included."""
    monkeypatch.setenv("MAKEFLUX_CACHE_DIR", str(tmp_path / "cache"))
    # Workers from the first template on (where there are two cores): what they compiled and
    # loaded reaches the parent only through the records they append after every chunk.
    monkeypatch.setenv("MAKEFLUX_JOBS", "2")
    project = tmp_path / "tree"
    generate(project, 0.3, seed=11, shape="home-ops")
    rng = random.Random(5)
    first = run_cli(["render"], project)
    assert first.exit_code == 0, first.output
    unchanged = run_cli(["-v", "render"], project)
    # Only the four templates that call the plugin's filters render again.
    assert "makeflux: 4 template(s) rendered" in unchanged.stderr, unchanged.stderr
    for _ in range(4):
        data = yaml.safe_load((project / "cluster.yaml").read_text())
        apps = sorted(data["apps"])
        for _ in range(3):
            app = data["apps"][rng.choice(apps)]
            app["replicas"] = rng.randint(1, 9)
            app["memory"] = rng.choice(["64Mi", "128Mi", "2Gi"])
        data[f"feature_{rng.randrange(20)}_enabled"] = rng.random() < 0.5
        data[f"{rng.choice(apps)}_enabled"] = rng.random() < 0.5
        (project / "cluster.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        result = run_cli(["render", "--force"], project)
        assert result.exit_code == 0, result.output
        fresh = tmp_path / "fresh"
        scratch = run_cli(["--no-cache", "render", "-o", str(fresh)], project)
        assert scratch.exit_code == 0, scratch.output
        assert _tree(project / "kubernetes") == _tree(fresh)


def test_a_jinja_whose_internals_differ_renders_everything(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from makeflux import jinja_internals

    assert jinja_internals.REUSE_HOOKS_FIT  # the pinned Jinja: the hooks fit
    monkeypatch.setattr(jinja_internals, "REUSE_HOOKS_FIT", False)
    _render(project)
    result = run_cli(["-v", "render", "--no-lint"], project)
    assert result.exit_code == 0
    assert "template(s) rendered" not in result.stderr  # no reuse at all
    assert _tree(project / "out") == _from_scratch(project, tmp_path)


def test_an_output_rendered_from_other_text_than_its_key_is_not_kept(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template edited between makeflux reading it for the key and a worker rendering it:
    the worker reports the text it rendered from, and the output is not kept under the key."""
    from makeflux import reuse
    from makeflux.data import load_data
    from makeflux.environment import build_environment
    from makeflux.settings import load_settings

    monkeypatch.chdir(project)
    settings = load_settings(project)
    setup = build_environment(settings, load_data(settings).values)
    kept = reuse.for_run(setup.env, settings, "scope")
    assert kept is not None
    kept.parse_allowed = True
    assert kept.key_for("deep.yaml.j2", {}) is not None
    text = (project / "templates/deep.yaml.j2").read_text()
    kept.learn(({}, {"deep.yaml.j2": reuse._checksum(text)}))
    assert kept.rendered_as_keyed("deep.yaml.j2")
    kept.learn(({}, {"deep.yaml.j2": reuse._checksum(text + "edited\n")}))
    assert not kept.rendered_as_keyed("deep.yaml.j2")


def test_a_scalar_digest_is_kept_only_for_that_very_object():
    """Reuse keeps each data scalar's digest by id for the run; an entry left by another object
    (ids are reused once an object is freed) is never taken for it."""
    scalars: dict[int, tuple[object, bytes]] = {}
    value = "x" * 50
    plain = reuse._path_digest(value, (), {})
    assert reuse._path_digest(value, (), {}, scalars) == plain
    assert scalars[id(value)][0] is value
    other = "y" * 50
    scalars[id(other)] = ("another object that had this id", b"stale")
    assert reuse._path_digest(other, (), {}, scalars) == reuse._path_digest(other, (), {})


def _stored(project: Path) -> dict:
    """The project's kept-outputs store as written: a pickle followed by its sha256."""
    (store,) = (project.parent / "cache" / "outputs").iterdir()
    blob = store.read_bytes()
    return pickle.loads(blob[:-32])


def test_the_store_drops_what_was_edited_or_removed(project: Path) -> None:
    """Only today's templates keep an output, and only today's text of each its analysis: the
    store would otherwise grow with every edit."""
    _render(project)
    before = _stored(project)
    assert "plain.yaml.j2" in before["entries"] and "loop.yaml.j2" in before["entries"]
    (project / "templates" / "loop.yaml.j2").unlink()
    (project / "templates" / "plain.yaml.j2").write_text(_delimited("edited: {{ suffix }}\n"))
    _render(project)
    after = _stored(project)
    assert "loop.yaml.j2" not in after["entries"]
    assert not any(name == "loop.yaml.j2" for name, _ in after["analyses"])
    plain = [checksum for name, checksum in after["analyses"] if name == "plain.yaml.j2"]
    text = (project / "templates" / "plain.yaml.j2").read_text()
    assert plain == [reuse._checksum(text)], "the analysis of the old text is gone"
    assert len(after["analyses"]) == len(before["analyses"]) - 1


def test_records_are_appended_as_a_worker_goes_and_a_cut_short_one_is_dropped(
    tmp_path: Path,
) -> None:
    """dump() appends what was recorded since its last call; dumped() reads every record back,
    and a file whose worker died while writing gives the records before the cut."""
    reuse.drain()  # whatever earlier tests in this process recorded
    analysis = reuse.Analysis.of([("apps", "grafana")], ["upper"], [], ["base.j2"])
    reuse._captured[("a.yaml.j2", b"1" * 32)] = analysis
    reuse._loaded["a.yaml.j2"] = b"1" * 32
    reuse.dump(tmp_path)
    reuse.dump(tmp_path)  # nothing new: nothing written
    reuse._loaded["b.yaml.j2"] = b"2" * 32
    reuse.dump(tmp_path)
    (records,) = tmp_path.iterdir()
    whole = records.read_bytes()
    assert list(reuse.dumped(tmp_path)) == [
        ({("a.yaml.j2", b"1" * 32): analysis}, {"a.yaml.j2": b"1" * 32}),
        ({}, {"b.yaml.j2": b"2" * 32}),
    ]
    records.write_bytes(whole[:-3])  # the second record cut short
    assert list(reuse.dumped(tmp_path)) == [
        ({("a.yaml.j2", b"1" * 32): analysis}, {"a.yaml.j2": b"1" * 32})
    ]
    assert reuse.drain() == ({}, {})
