"""The README's and the docs' code blocks of the integration tiers (directives ``integration`` and ``slow``,
docs/contributing.md: the real default model, its vector set, or seconds of work), and the strict build of the
site.

Each page's blocks of a tier run in document order in one fresh folder holding ``runs/demo``: a small real vector
set of the default model (the emotions below, layers 8 and 16), made once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emovec import Corpus, load_corpus
from emovec.vectors import extract_emotion_vectors
from tests.doc_blocks import ROOT, Tier, collect, copy_tree, prepare, run_page

pytestmark = pytest.mark.integration

PAGES = collect()

# The emotions of the docs' `runs/demo`: the integration tests' sixteen and the studies' key vectors.
DOC_EMOTIONS = ("afraid", "angry", "calm", "desperate", "happy", "sad", "proud", "nervous", "grateful", "lonely",
                "disgusted", "surprised", "guilty", "jealous", "bored", "hopeful", "worried", "eager", "self-critical",
                "enthusiastic")


def _pages(tier: Tier) -> list[str]:
    return [p for p, blocks in PAGES.items() if any(b.runs and b.directives.tier == tier for b in blocks)]


@pytest.fixture(scope="session")
def docs_vectors(real_model, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """A small real emotion vector set (20 emotions on the shipped corpus's first 3 topics, layers 8 and 16,
    recommended 16): what the docs call `runs/demo`."""
    full = load_corpus()
    topics = set(full.topics()[:3])
    keep = [r for r in full.records if r.kind == "story" and r.emotion in DOC_EMOTIONS and r.topic in topics]
    corpus = Corpus((*keep, *full.neutral[:30]), full.source)
    ext = extract_emotion_vectors(real_model, corpus, layers=[8, 16], token_start=50, max_length=128, skip_short=True,
                                  show_progress=False)
    out = tmp_path_factory.mktemp("docs-vectors") / "demo"
    ext.vectors.with_recommended_layer(16).save(out)
    return out


def _run(page: str, tier: Tier, workdir: Path, vectors: Path) -> None:
    blocks = PAGES[page]
    prepare(blocks, workdir)
    copy_tree(vectors, workdir / "runs" / "demo")
    run_page(blocks, tier, workdir, timeout=1800)


# Every page's blocks together take minutes on 2 cores: make test-all runs them, make test leaves them out.
@pytest.mark.slow
@pytest.mark.parametrize("page", _pages("integration"))
def test_integration_blocks_run(page: str, docs_vectors: Path, tmp_path: Path) -> None:
    _run(page, "integration", tmp_path, docs_vectors)


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages("slow"))
def test_slow_blocks_run(page: str, docs_vectors: Path, tmp_path: Path) -> None:
    _run(page, "slow", tmp_path, docs_vectors)


@pytest.mark.slow
def test_docs_build_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict`, as `make docs` and CI run it: a broken link, anchor or API reference fails."""
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([mkdocs, "build", "--strict", "-d", str(tmp_path / "site")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "reference" / "emovec" / "index.html").exists()
