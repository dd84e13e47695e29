"""Build dist/contactlake.zip for `spark-submit --py-files`: the contactlake and jobs
packages at the zip root (importable), plus conf/. Python's zipfile, so no `zip` binary."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    sources = [(ROOT / "libs", "contactlake"), (ROOT, "jobs"), (ROOT, "conf")]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for base, folder in sources:
            for path in sorted((base / folder).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    archive.write(path, path.relative_to(base).as_posix())
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist" / "contactlake.zip"))
