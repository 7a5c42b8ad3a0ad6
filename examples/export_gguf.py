"""Export an emotion steering as a llama.cpp control vector (GGUF) and read it back.

Extracts a small vector set (8 emotions, 3 topics, layers 8 and 12 of the default model; or pass ``--vectors``
from ``extract_and_validate.py``), writes ``calm + 0.08, desperate - 0.05`` at both layers as ``steer.gguf``,
and checks that the file holds exactly the vectors emovec adds when it steers. Use the file with llama.cpp:
``llama-cli -m model.gguf --control-vector steer.gguf``.

    python examples/export_gguf.py --out runs/example-gguf
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

import emovec
from emovec.export import additions, import_gguf

EMOTIONS = ("afraid", "angry", "calm", "desperate", "happy", "lonely", "proud", "sad")


def small_vectors(lm: emovec.LoadedModel) -> emovec.VectorSet:
    """Vectors of ``EMOTIONS`` from the shipped corpus's first 3 topics at layers 8 and 12 (12 recommended)."""
    corpus = emovec.load_corpus().subset(None, 24, topics=3, emotions=EMOTIONS)
    ext = emovec.extract_emotion_vectors(lm, corpus, layers=[8, 12], token_start=10, max_length=64, skip_short=True,
                                         show_progress=True)
    return ext.vectors.with_recommended_layer(12)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for steer.gguf (default: a temp dir)")
    parser.add_argument("--vectors", type=Path, default=None, help="a vector set folder (default: extract one)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="emovec-gguf-"))
    out.mkdir(parents=True, exist_ok=True)

    vs = emovec.VectorSet.load(args.vectors) if args.vectors else small_vectors(emovec.load_model())
    layers = [layer for layer in vs.layers if layer > 0][-2:]  # llama.cpp never steers block 0
    spec = emovec.SteeringSpec([emovec.SteerTerm("calm", 0.08), emovec.SteerTerm("desperate", -0.05)], layers=layers)
    path = emovec.export_gguf(spec, vs, out / "steer.gguf")

    written, expected = import_gguf(path, vs), additions(spec, vs)
    print(f"wrote {path} ({path.stat().st_size} bytes) for {vs.provenance.model.name}: calm +0.08, "
          f"desperate -0.05 at layers {layers}")
    for layer in sorted(written):
        print(f"  direction.{layer}: norm {written[layer].norm():.3f} "
              f"(layer mean residual norm {float(vs.mean_norm[vs.layer_index(layer)]):.2f})")
    print(f"llama.cpp: llama-cli -m <the model as GGUF> --control-vector {path}")
    same = sorted(written) == sorted(expected) and all(
        torch.allclose(written[layer], expected[layer].float(), atol=1e-6) for layer in expected)
    if not same:
        print("FAILED: the GGUF file does not hold the vectors emovec's steering adds", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
