"""Steering commands of the ``emovec`` CLI (steer, export, monitor, chat): thin shells over ``emovec.steer``,
``emovec.generation``, ``emovec.export`` and ``emovec.transcripts``. Registered on the shared app when
``emovec.cli`` imports this module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from emovec._progress import stage
from emovec.cli.shared import DeviceOpt, DtypeOpt, LayersOpt, _load_for, app, err, friendly, out
from emovec.parsing import parse_layers, parse_terms


@app.command()
@friendly
def steer(
    vectors_dir: Annotated[Path, typer.Argument(help="a vector set directory")],
    prompt: Annotated[str, typer.Option(help="the user message")],
    steer_terms: Annotated[list[str], typer.Option("--steer", help="NAME=STRENGTH (fraction of residual norm)")] = [],  # noqa: B006
    clamp: Annotated[list[str], typer.Option(help="NAME=VALUE: clamp the component")] = [],  # noqa: B006
    ablate: Annotated[list[str], typer.Option(help="NAME: remove the component")] = [],  # noqa: B006
    layers: LayersOpt = None,
    scope: Annotated[str, typer.Option(help="all, prompt or generated")] = "all",
    max_new_tokens: int = 80,
    temperature: float = 0.0,
    seed: int = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print {unsteered, steered, settings} as JSON")] = False,
    force: bool = False,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Generate a reply with and without steering, side by side."""
    from rich.table import Table

    from emovec.generation import generate
    from emovec.steer import SteeringError, SteeringSpec

    terms = parse_terms(steer_terms, clamp, ablate)
    if not terms:
        raise SteeringError("nothing to steer: give --steer NAME=STRENGTH, --clamp NAME=VALUE or --ablate NAME")
    if scope not in ("all", "prompt", "generated"):
        raise SteeringError(f"--scope {scope!r}: use all, prompt or generated")
    lm, vs = _load_for(vectors_dir, force, device, dtype)
    chosen = parse_layers(layers) or [vs.default_layer]
    spec = SteeringSpec(terms, layers=chosen, scope=scope)  # type: ignore[arg-type]
    common = dict(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    with stage("steer", 2, unit="replies", detail=f"up to {max_new_tokens} tokens each") as advance:
        plain = generate(lm, [prompt], **common)  # type: ignore[arg-type]
        advance()
        steered = generate(lm, [prompt], vectors=vs, spec=spec, **common)  # type: ignore[arg-type]
        advance()
    settings = {"model": lm.name, "vectors": str(vectors_dir), "layers": chosen, "scope": scope,
                "terms": [{"name": t.label, "strength": t.strength, "op": t.op} for t in terms],
                "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed,
                "strength_unit": "fraction of the mean residual-stream norm at the layer"}
    if as_json:
        print(json.dumps({"unsteered": plain.replies[0], "steered": steered.replies[0], "settings": settings},
                         indent=1))
        return
    label = ", ".join(f"{t.label} {t.op} {t.strength:+g}" if t.op != "ablate" else f"{t.label} ablated" for t in terms)
    table = Table(title=f"{prompt!r} at layers {chosen}", show_lines=True)
    table.add_column("unsteered", ratio=1)
    table.add_column(f"steered: {label}", ratio=1)
    table.add_row(plain.replies[0], steered.replies[0])
    out.print(table)


@app.command()
@friendly
def export(
    vectors_dir: Annotated[Path, typer.Argument(help="a vector set directory")],
    out_file: Annotated[Path, typer.Option("--out", help="file to write")],
    steer_terms: Annotated[list[str], typer.Option("--steer", help="NAME=STRENGTH (fraction of residual norm)")],
    fmt: Annotated[str, typer.Option("--format", help="gguf (llama.cpp control vector) or lm-eval (.pt)")] = "gguf",
    layers: LayersOpt = None,
    overwrite: bool = False,
) -> None:
    """Export a steering as a llama.cpp control vector or an lm-evaluation-harness steer file."""
    from emovec.errors import ArtifactExistsError
    from emovec.export import export_gguf, export_lm_eval
    from emovec.steer import SteeringError, SteeringSpec
    from emovec.vectors import VectorSet

    if out_file.exists() and not overwrite:
        raise ArtifactExistsError(f"{out_file} exists; pass --overwrite or choose another --out")
    writers = {"gguf": export_gguf, "lm-eval": export_lm_eval}
    if fmt not in writers:
        raise SteeringError(f"--format {fmt!r}: use gguf or lm-eval")
    vs = VectorSet.load(vectors_dir)
    spec = SteeringSpec(parse_terms(steer_terms, [], []), layers=parse_layers(layers) or [vs.default_layer])
    path = writers[fmt](spec, vs, out_file)
    err.print(f"wrote {fmt} steering ({', '.join(steer_terms)} at layers {list(spec.layer_weights())}) to {path}")


@app.command()
@friendly
def monitor(
    vectors_dir: Annotated[Path, typer.Argument(help="a vector set directory")],
    transcript: Annotated[Path, typer.Argument(help="chat JSONL: {messages: [...]} or one message a line")],
    html_out: Annotated[Path | None, typer.Option("--html", help="write the emotion trace view here")] = None,
    layer: Annotated[int | None, typer.Option(help="layer to read (default: the set's recommended layer)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print per-role summaries as JSON")] = False,
    force: bool = False,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Score every token of existing transcripts on the emotion vectors; summarise per role."""
    from emovec.reports.trace import render_trace, write_trace
    from emovec.transcripts import read_transcripts, score_conversation

    conversations = read_transcripts(transcript)
    lm, vs = _load_for(vectors_dir, force, device, dtype)
    scored = []
    with stage("monitor", len(conversations), unit="conversations", detail=transcript.name) as advance:
        for conv in conversations:
            scored.append(score_conversation(lm, vs, conv, layer=layer))
            advance()
    summaries = [c.role_summary() for c in scored]
    if html_out is not None:
        pages = [render_trace(c.tokens, c.scores, c.names, f"{transcript.name}: conversation {i + 1} "
                              f"(layer {c.layer})", roles=c.roles) for i, c in enumerate(scored)]
        write_trace(html_out, pages)
        err.print(f"trace view: {html_out}")
    if as_json:
        compact = [{role: {"tokens": v["tokens"], "top": v["top"]} for role, v in summ.items()} for summ in summaries]
        print(json.dumps({"layer": scored[0].layer, "conversations": compact}, indent=1))
        return
    for i, summ in enumerate(summaries):
        for role, v in summ.items():
            top = ", ".join(f"{n} {x:+.3f}" for n, x in v["top"])  # type: ignore[attr-defined]
            out.print(f"conversation {i + 1} {role} ({v['tokens']} tokens): {top}", highlight=False)


@app.command()
@friendly
def chat(
    vectors_dir: Annotated[Path, typer.Argument(help="a vector set directory")],
    steer_terms: Annotated[list[str], typer.Option("--steer", help="NAME=STRENGTH, changeable in the chat")] = [],  # noqa: B006
    layers: LayersOpt = None,
    max_new_tokens: int = 120,
    force: bool = False,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
) -> None:
    """Chat with the model under live steering; shows the top emotions of each reply.

    Commands: `/steer NAME=STRENGTH` adds or changes a steer, `/clear` removes all, `/quit` ends.
    """
    from emovec.generation import generate
    from emovec.steer import SteeringSpec

    lm, vs = _load_for(vectors_dir, force, device, dtype)
    chosen = parse_layers(layers) or [vs.default_layer]
    steers = dict(item.partition("=")[::2] for item in steer_terms)
    history: list[str] = []
    out.print("chat: /steer NAME=STRENGTH, /clear, /quit", highlight=False)
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            break
        if line in ("/quit", "/exit"):
            break
        if line.startswith("/steer "):
            name, _, value = line[7:].partition("=")
            parse_terms([f"{name}={value}"], [], [])
            vs.index(name.strip())
            steers[name.strip()] = value
            out.print(f"steering: {steers}", highlight=False)
            continue
        if line == "/clear":
            steers.clear()
            continue
        if not line:
            continue
        terms = parse_terms([f"{k}={v}" for k, v in steers.items()], [], [])
        spec = SteeringSpec(terms, layers=chosen) if terms else None
        prompt = "\n".join([*history[-6:], line])
        result = generate(lm, [prompt], vectors=vs, spec=spec, monitor=True, max_new_tokens=max_new_tokens)
        reply = result.replies[0]
        history += [line, reply]
        assert result.trace is not None
        mask = result.attention_mask.clone()
        mask[:, : result.prompt_length] = 0
        top = result.trace.summary(mask)[0]["top"]
        out.print(f"model> {reply}", highlight=False)
        shown = ", ".join(f"{n} {x:+.3f}" for n, x in top) if top else "none (the reply has no tokens)"
        out.print("  top emotions: " + shown, highlight=False)
